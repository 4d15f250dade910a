"""The score itself: a customer's signals at a time -> points per measure -> score and band.

Missing signals redistribute their weight: first among the measures present in the same
group, then among the groups that have any measure present. Every score keeps the
per-measure contributions and the config version that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from streams.domain.rounding import round_to
from streams.domain.scoring.compiled import (
    CRITICAL_SUFFIX,
    _Compiled,
    _GroupPlan,
    _MeasurePlan,
    curve_points,
)
from streams.domain.scoring.config import Btyd, Measure, ScoringConfig, Segment


@dataclass(frozen=True, slots=True, init=False)
class Contribution:
    """What one measure adds to the score; a critical-group cap is an entry whose
    ``adjustment`` (negative) takes the score down to the cap. (Its __init__ is written
    out: compiled, a dataclass's own runs as Python, and a score makes one per measure.)"""

    measure: str
    signal: str
    value: float
    points: float
    weight: float
    adjustment: float = 0.0

    def __init__(self, measure: str, signal: str, value: float, points: float, weight: float,
                 adjustment: float = 0.0) -> None:
        object.__setattr__(self, "measure", measure)
        object.__setattr__(self, "signal", signal)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "adjustment", adjustment)

    @property
    def contribution(self) -> float:
        return self.points * self.weight + self.adjustment

    @property
    def shortfall(self) -> float:
        """Points lost to the score by this measure (what a reason is ranked by)."""
        return (100.0 - self.points) * self.weight - self.adjustment


@dataclass(frozen=True, slots=True, init=False)
class Score:
    score: float
    band: str
    profile: str
    contributions: tuple[Contribution, ...]
    config_version: str
    #: the measures' weighted points before a calibrated link (equal to ``score`` without
    #: one, critical caps aside)
    points: float = 0.0

    def __init__(self, score: float, band: str, profile: str,
                 contributions: tuple[Contribution, ...], config_version: str,
                 points: float = 0.0) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "band", band)
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "contributions", contributions)
        object.__setattr__(self, "config_version", config_version)
        object.__setattr__(self, "points", points)


def measure_value(
    measure: Measure, signals: dict[str, float], now_d: float, segment: Segment,
    tenure_d: float | None = None, btyd: Btyd | None = None,
) -> float | None:
    """The measure's value for these signals at day ``now_d``, or None if unavailable."""
    base = signals.get(measure.signal)
    if base is None:
        return None
    if measure.min_tenure_d is not None and (tenure_d is None or tenure_d < measure.min_tenure_d):
        return None
    kind = measure.kind
    if kind == "value":
        return base
    if kind == "btyd":
        return btyd_value(btyd if btyd is not None else Btyd(), signals, now_d)
    return max(0.0, now_d - base) / expected_gap(measure, signals, segment)


def btyd_value(btyd: Btyd, signals: dict[str, float], now_d: float) -> float | None:
    """Purchases the BG/NBD model expects in ``btyd.horizon_d`` days from ``now_d``, from
    the order count and the first and last purchase times; None without them."""
    customer = btyd.summary(signals, now_d)
    if customer is None:
        return None
    x, t_x, big_t = customer
    return btyd.model().expected(x, t_x, big_t, btyd.horizon_d)


def expected_gap(measure: Measure, signals: dict[str, float], segment: Segment) -> float:
    """The days an elapsed measure divides the time since its signal by: the customer's
    own gap (plus ``spread_k`` spreads), else the segment norm, never below ``per_min_d``;
    1 for an ``age`` measure (plain days)."""
    if measure.kind == "age":
        return 1.0
    per = signals.get(measure.per) if measure.per else None
    if per is not None and measure.spread:
        per += measure.spread_k * signals.get(measure.spread, 0.0)
    if per is None and measure.per_default:
        per = float(getattr(segment, measure.per_default))
    if per is None or per <= 0:
        per = 1.0
    if per < measure.per_min_d:
        per = measure.per_min_d
    return per



def compute_score(
    config: ScoringConfig,
    signals: dict[str, float],
    *,
    now_d: float,
    segment: str,
    tenure_d: float | None,
) -> Score | None:
    """Score a customer from its signals at day ``now_d``; None when no measure applies."""
    compiled = config.compiled()
    contributions: list[Contribution] = []
    scored = _score(compiled, signals, now_d, segment, tenure_d, contributions)
    if scored is None:
        return None
    score, profile_name, points = scored
    return Score(score, compiled.band(score), profile_name, tuple(contributions),
                 compiled.version, points)


def score_with(compiled: _Compiled, signals: dict[str, float], now_d: float, segment: str,
               tenure_d: float | None) -> float | None:
    """The score alone, as :func:`compute_score` gives it (``compiled.band`` gives its
    band), made faster: no contributions. For looking ahead at a score."""
    scored = _score(compiled, signals, now_d, segment, tenure_d, None)
    return None if scored is None else scored[0]


def _score(compiled: _Compiled, signals: dict[str, float], now_d: float, segment: str,
           tenure_d: float | None,
           contributions: list[Contribution] | None) -> tuple[float, str, float] | None:
    """:func:`compute_score` as (score, profile, points before a link), filling
    ``contributions`` when given (None: the score alone, faster)."""
    profile_name = compiled.profile_for(segment, tenure_d)
    plan = compiled.plans[profile_name]
    present: list[_MeasurePlan] = []
    values: list[float] = []
    mask = 0
    norms = None
    for mplan in plan.measures:
        value = signals.get(mplan.signal)
        if value is None:
            continue
        if not mplan.direct:
            below = mplan.min_tenure_d
            if below is not None and (tenure_d is None or tenure_d < below):
                continue
            kind = mplan.kind
            if kind == "btyd":
                value = btyd_value(compiled.btyd, signals, now_d)
                if value is None:
                    continue
            elif kind != "value":
                if norms is None:
                    norms = compiled.norms(segment)
                value = max(0.0, now_d - value) / mplan.gap(signals, norms)
        mask |= mplan.bit
        present.append(mplan)
        values.append(value)
    layout = plan.layout(mask)
    if layout is None:
        return None
    products: list[float] = []
    critical: list[tuple[_GroupPlan, float]] = []  # critical groups and their points
    pos = 0
    for gplan, count, cap_at, weights, total_measure in layout.groups:
        cap = None
        if cap_at >= 0:
            capping = present[pos + cap_at]
            cap = curve_points(capping.xs, capping.ys, values[pos + cap_at])
        critical_below = gplan.critical_below
        group_points = 0.0
        for j in range(count):
            mplan = present[pos + j]
            value = values[pos + j]
            points = curve_points(mplan.xs, mplan.ys, value)
            if cap is not None and cap < points:
                points = cap
            if critical_below is not None:
                group_points += points * mplan.weight
            weight = weights[j]
            products.append(points * weight)
            if contributions is not None:
                contributions.append(Contribution(mplan.name, mplan.signal, value, points,
                                                  weight))
        pos += count
        if critical_below is not None:
            group_points /= total_measure
            if group_points < critical_below:
                critical.append((gplan, group_points))
    points = min(100.0, max(0.0, _SUM(products)))
    score = points
    link = compiled.link
    if link is not None:
        score = 100.0 * link.probability(points)
        if contributions is not None:
            contributions[:] = _scaled(contributions, score, points)
    for gplan, group_points in critical:
        cap_to = gplan.critical_cap
        if score > cap_to:
            if contributions is not None:
                contributions.append(Contribution(
                    measure=gplan.name + CRITICAL_SUFFIX, signal=gplan.name,
                    value=round_to(group_points, 2), points=0.0, weight=0.0,
                    adjustment=cap_to - score))
            score = cap_to
    return round_to(score, 2), profile_name, points


# Compiled, a module's globals other than its functions and native classes are looked up
# by name on every use, a Final one is not: the builtin sum, which every score uses.
_SUM: Final = sum


def _scaled(contributions: list[Contribution], score: float,
            points: float) -> list[Contribution]:
    """Contributions that add up to a calibrated ``score`` instead of to ``points``: each
    weight scaled by score / points (so the reasons keep their order); when no measure
    gave any point, the score is shared by weight."""
    if points > 0:
        k = score / points
        return [Contribution(c.measure, c.signal, c.value, c.points, c.weight * k,
                             c.adjustment) for c in contributions]
    total = sum(c.weight for c in contributions) or 1.0
    return [Contribution(c.measure, c.signal, c.value, c.points, c.weight,
                         score * c.weight / total) for c in contributions]
