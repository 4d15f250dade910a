"""Value at stake: expected purchases while active x a shrunk order value, in the
customer's currency."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.scoring import Btyd
from streams.domain.value import currency_code, currency_of, value_at_stake

BTYD = Btyd(r=0.25, alpha=30.0, a=0.8, b=3.0, horizon_d=90.0, mean_order_minor=5000.0,
            shrink_orders=2.0)


def signals(orders: float, aov: float, first: float = 0.0, last: float = 100.0):
    return {"purchase.orders_total": orders, "purchase.aov": aov,
            "purchase.first_at_d": first, "purchase.last_at_d": last}


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3))
def test_a_currency_code_survives_the_numeric_signal(code):
    assert currency_of(currency_code(code)) == code


def test_odd_currencies_are_not_coded():
    assert currency_code("EURO") is None and currency_code("E1R") is None
    assert currency_of(None) is None and currency_of(-1.0) is None and currency_of(0.5) is None


def test_a_frequent_big_spender_is_worth_more_than_a_rare_small_one():
    frequent = value_at_stake(BTYD, signals(20, 20_000), now_d=110)
    rare = value_at_stake(BTYD, signals(2, 2_000), now_d=110)
    assert frequent is not None and rare is not None and frequent > 10 * rare > 0


def test_one_large_order_is_shrunk_toward_the_population_average():
    one = value_at_stake(BTYD, signals(1, 500_000, 100.0, 100.0), now_d=110)
    many = value_at_stake(BTYD, signals(30, 500_000, 0.0, 100.0), now_d=110)
    assert one is not None and many is not None
    expected_one = BTYD.model().expected(0, 0, 10, 90)  # alive by assumption
    assert one == pytest.approx(expected_one * (500_000 + 2 * 5000) / 3, abs=1)


def test_no_purchase_no_value():
    assert value_at_stake(BTYD, {}, now_d=10) is None
