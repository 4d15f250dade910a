"""Rounding to decimal places, exactly as ``round(value, digits)`` does, faster.

Python's ``round(x, digits)`` goes through the decimal digits of ``x`` (correctly rounded,
halves to even) and back; the score, its contributions and the stored signals round
several numbers on every evaluation. :func:`round_to` scales by ``10**digits`` instead and
rounds to an integer, which gives the same integer whenever the scaled value is not
within the multiplication's error of a half; it then divides by the same power of ten,
which is what reading the decimal digits back gives. The rare value near a half, and
every value too large or not finite, goes to ``round`` itself.
"""

from __future__ import annotations

import math
from typing import Final

#: The powers of ten, exact (a tuple of any length: mypyc keeps it as one object).
_SCALES: Final[tuple[float, ...]] = (
    1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15)
#: Scaled values at or beyond this (2**52) are whole numbers or close to: left to round.
_LIMIT: Final = 4503599627370496.0
#: A scaled value whose fraction lies this close to a half (relative to its size: ten
#: thousand times a multiplication's rounding error, 2**-53) may round either way: left
#: to round.
_NEAR_HALF: Final = 1e-12


def round_to(value: float, digits: int) -> float:
    """``round(value, digits)`` for a float and 0 <= ``digits`` <= 15, bit for bit (the
    sign of a zero included)."""
    scale = _SCALES[digits]
    scaled = value * scale
    if not -_LIMIT < scaled < _LIMIT:
        return round(value, digits)
    whole = math.floor(scaled)
    fraction = scaled - whole
    if abs(fraction - 0.5) <= _NEAR_HALF * (1.0 + abs(scaled)):
        return round(value, digits)
    if fraction > 0.5:
        whole += 1
    return math.copysign(whole / scale, value)
