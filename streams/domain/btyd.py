"""BG/NBD ("buy till you die"): how many purchases a customer is expected to make next.

The model of Fader, Hardie and Lee (2005): while alive, a customer buys at a Poisson rate
drawn from a gamma distribution (shape ``r``, rate ``alpha``); after each purchase it dies
with a probability drawn from a beta distribution (``a``, ``b``). A customer is summarised
by ``x`` (repeat purchases), ``t_x`` (days from its first to its last purchase) and ``T``
(days from its first purchase to now). Pure Python: the worker scores with it, and
``churnwatch calibrate`` fits the four population parameters (:func:`log_likelihood`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

#: The hypergeometric series stops when a term falls below this share of the sum.
_SERIES_TOLERANCE: Final = 1e-10
_SERIES_MAX_TERMS: Final = 2000


@dataclass(frozen=True, slots=True, init=False)
class BgNbd:
    """Population parameters, all > 0 (``a`` = 1 exactly is nudged: the expectation's
    formula has its limit there, not its value)."""

    r: float
    alpha: float
    a: float
    b: float

    def __init__(self, r: float, alpha: float, a: float, b: float) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def p_alive(self, x: float, t_x: float, big_t: float) -> float:
        """Probability that the customer has not died by ``big_t``. One with no repeat
        purchase is alive by the model's assumption (it can only die after a purchase)."""
        if x <= 0:
            return 1.0
        return 1.0 / (1.0 + self._death_odds(x, t_x, big_t))

    def _death_odds(self, x: float, t_x: float, big_t: float) -> float:
        if x <= 0:
            return 0.0
        log_odds = (math.log(self.a) - math.log(self.b + x - 1)
                    + (self.r + x) * (math.log(self.alpha + big_t)
                                      - math.log(self.alpha + t_x)))
        return math.exp(min(log_odds, 700.0))

    def expected(self, x: float, t_x: float, big_t: float, horizon: float) -> float:
        """Expected purchases in the next ``horizon`` days (conditional expectation)."""
        a, b, r, alpha = self.a, self.b, self.r, self.alpha
        if horizon <= 0:
            return 0.0
        if abs(a - 1.0) < 1e-6:
            a = 1.0 + 1e-6
        z = horizon / (alpha + big_t + horizon)
        hyp = _hyp2f1(r + x, b + x, a + b + x - 1, z)
        ratio = math.exp((r + x) * (math.log(alpha + big_t)
                                    - math.log(alpha + big_t + horizon)))
        first = (a + b + x - 1) / (a - 1) * (1.0 - ratio * hyp)
        return max(0.0, first / (1.0 + self._death_odds(x, t_x, big_t)))

    def log_likelihood(self, x: float, t_x: float, big_t: float) -> float:
        """Log-likelihood of one customer's (x, t_x, T)."""
        a, b, r, alpha = self.a, self.b, self.r, self.alpha
        a1 = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
        a2 = (math.lgamma(a + b) + math.lgamma(b + x)
              - math.lgamma(b) - math.lgamma(a + b + x))
        a3 = -(r + x) * math.log(alpha + big_t)
        if x <= 0:
            return a1 + a2 + a3
        a4 = math.log(a) - math.log(b + x - 1) - (r + x) * math.log(alpha + t_x)
        top = max(a3, a4)
        return a1 + a2 + top + math.log(math.exp(a3 - top) + math.exp(a4 - top))


def _hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """Gauss's hypergeometric function for 0 <= z < 1, by its series."""
    total = term = 1.0
    for k in range(_SERIES_MAX_TERMS):
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total += term
        if abs(term) < _SERIES_TOLERANCE * abs(total):
            break
    return total
