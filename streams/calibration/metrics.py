"""Ranking and calibration figures (pure Python: the backtest uses them too).

``risk`` is any number that should be higher for customers who leave (e.g. ``-score``, or
days since the last purchase); ``left`` says who did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def auc(risk: Sequence[float], left: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random leaver ranks above a random
    stayer, ties counting a half. None unless both classes occur."""
    pairs = sorted(zip(risk, left, strict=True))
    positives = sum(1 for _, y in pairs if y)
    negatives = len(pairs) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2
        rank_sum += mid_rank * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def precision_at(risk: Sequence[float], left: Sequence[bool], share: float = 0.1) -> float | None:
    """Share of leavers among the ``share`` of customers ranked riskiest (ties at the
    boundary count by their average)."""
    n = len(risk)
    k = max(1, round(n * share)) if n else 0
    if k == 0:
        return None
    order = sorted(zip(risk, left, strict=True), key=lambda p: p[0], reverse=True)
    boundary = order[k - 1][0]
    above = [y for r, y in order if r > boundary]
    tied = [y for r, y in order if r == boundary]
    hits = sum(above) + (k - len(above)) * (sum(tied) / len(tied))
    return hits / k


def lift_at(risk: Sequence[float], left: Sequence[bool], share: float = 0.1) -> float | None:
    """Precision in the riskiest ``share`` over the leavers' share overall."""
    top = precision_at(risk, left, share)
    base = sum(left) / len(left) if left else 0.0
    return None if top is None or base == 0 else top / base


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    low: float
    high: float
    customers: int
    predicted: float  # mean predicted probability of being active
    observed: float  # share that was active


def calibration_table(prob_active: Sequence[float], active: Sequence[bool],
                      bins: int = 10) -> list[CalibrationBin]:
    """Predicted against observed activity, in equal-width probability bins."""
    groups: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for p, y in zip(prob_active, active, strict=True):
        groups[min(bins - 1, max(0, int(p * bins)))].append((p, y))
    return [CalibrationBin(i / bins, (i + 1) / bins, len(g),
                           sum(p for p, _ in g) / len(g), sum(1 for _, y in g if y) / len(g))
            for i, g in enumerate(groups) if g]


def calibration_error(table: Sequence[CalibrationBin]) -> float | None:
    """Mean absolute gap between predicted and observed, weighted by customers."""
    total = sum(b.customers for b in table)
    if total == 0:
        return None
    return sum(b.customers * abs(b.predicted - b.observed) for b in table) / total
