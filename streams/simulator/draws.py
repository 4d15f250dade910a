"""Random draws shared by the customer's behaviour and the delivery noise."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def between(rng: random.Random, low: float, high: float) -> float:
    return low if high <= low else rng.uniform(low, high)


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def pick(rng: random.Random, mix: Sequence[tuple[str, float]]) -> str:
    point = rng.random()
    for name, share in mix:
        point -= share
        if point < 0:
            return name
    return mix[-1][0]
