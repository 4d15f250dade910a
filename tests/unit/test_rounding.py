"""round_to: Python's round to decimal places, bit for bit."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from streams.domain.rounding import round_to

#: numbers near halves and ties at every scale, the cases a shortcut gets wrong
_NEAR_HALVES = st.builds(lambda k, digits, nudge: (k + 0.5) / 10**digits + nudge,
                         st.integers(-10**9, 10**9), st.integers(0, 8),
                         st.sampled_from([0.0, 1e-12, -1e-12, 5e-17, -5e-17]))


#: times as day numbers (milliseconds over a day), the signals most rounded
_DAYS = st.builds(lambda ms: ms / 86_400_000, st.integers(0, 4 * 10**12))


@given(st.one_of(st.floats(), st.floats(-1e6, 1e6), st.floats(-1e-3, 1e-3), _NEAR_HALVES,
                 _DAYS), st.integers(0, 15))
@example(0.125, 2)
@example(2.675, 2)
@example(-0.0001, 2)
@example(-0.0, 3)
@example(0.5, 0)
@example(1.5, 0)
@example(-2.5, 0)
@example(4503599627370495.5, 0)
@example(1e300, 5)
@example(18456.38273148148, 5)
@example(20447.756785, 5)
def test_round_to_is_round(value: float, digits: int):
    assert repr(round_to(value, digits)) == repr(round(value, digits))
