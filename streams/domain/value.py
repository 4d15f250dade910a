"""Value at stake: the revenue a customer is expected to bring over the horizon if it
stays, so that teams rescue the valuable customers first.

Expected purchases come from the BG/NBD model of the scoring config (``[btyd]``), given
that the customer is still active (what its leaving would cost); the order value is the
customer's average shrunk toward the population's (``mean_order_minor``) by
``shrink_orders`` pseudo-orders: a customer with one large order is not taken at its word
(the Gamma-Gamma idea). Money is in integer minor units of the customer's currency, which
the purchase signals carry as a number (:func:`currency_code`).
"""

from __future__ import annotations

from typing import Final

from streams.domain.scoring import Btyd

CURRENCY_SIGNAL: Final = "purchase.currency"


def currency_code(currency: str) -> float | None:
    """A three-letter currency code as a number (base 26), for a numeric signal."""
    letters = currency.upper()
    if len(letters) != 3 or not all("A" <= c <= "Z" for c in letters):
        return None
    return float(sum((ord(c) - 65) * 26 ** (2 - i) for i, c in enumerate(letters)))


def currency_of(code: float | None) -> str | None:
    if code is None or not 0 <= code < 26 ** 3 or code != int(code):
        return None
    n = int(code)
    return "".join(chr(65 + (n // 26 ** (2 - i)) % 26) for i in range(3))


def value_at_stake(btyd: Btyd, signals: dict[str, float], now_d: float) -> int | None:
    """Revenue expected within ``btyd.horizon_d`` days if the customer stays (minor units),
    or None for a customer with no purchase."""
    customer = btyd.summary(signals, now_d)
    if customer is None:
        return None
    x, t_x, big_t = customer
    orders = x + 1.0
    model = btyd.model()
    alive = model.p_alive(x, t_x, big_t)
    expected = model.expected(x, t_x, big_t, btyd.horizon_d) / alive if alive > 0 else 0.0
    aov = max(0.0, signals.get("purchase.aov", 0.0))
    k = btyd.shrink_orders
    order_value = (orders * aov + k * btyd.mean_order_minor) / (orders + k)
    return round(expected * order_value)
