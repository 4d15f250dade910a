"""A scoring config compiled for scoring: curves, and each profile's plan of weights.

:class:`_Compiled` holds what scoring reads on every evaluation as plain attributes, and
per profile a :class:`_ProfilePlan` of its groups and measures, whose weights for each set
of present measures are worked out once (:class:`_Layout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from streams.domain.scoring.config import (
        Group,
        Link,
        Measure,
        Reason,
        ScoringConfig,
        Segment,
    )

#: The name of a group's critical cap among the contributions (its group's name + this).
CRITICAL_SUFFIX: Final = ".critical"


def interpolate(curve: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear lookup, flat beyond the first and last points."""
    return _Curve.of(curve)(x)


@dataclass(frozen=True, slots=True)
class _Curve:
    """A curve split into its x and y values (compiled once per measure when scoring)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @classmethod
    def of(cls, curve: list[tuple[float, float]]) -> _Curve:
        return cls(tuple(x for x, _ in curve), tuple(y for _, y in curve))

    def __call__(self, x: float) -> float:
        return curve_points(self.xs, self.ys, x)


def curve_points(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    """The points of the piecewise-linear curve through (xs, ys) at ``x``, flat before the
    first point and past the last. (A curve has a few points: walking them is faster,
    compiled, than calling bisect; the segment found is bisect_left's.)"""
    if x <= xs[0]:
        return ys[0]
    n = len(xs)
    i = 1
    while i < n and xs[i] < x:
        i += 1
    if i == n:
        return ys[-1]
    x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def index_right(xs: tuple[float, ...], x: float) -> int:
    """``bisect.bisect_right(xs, x)`` for the few points of a curve: the first point
    beyond ``x``."""
    n = len(xs)
    i = 0
    while i < n and not x < xs[i]:
        i += 1
    return i


class _MeasurePlan:
    """One measure of a profile, with what scoring reads of it as plain attributes."""

    __slots__ = ("age", "bit", "curve", "direct", "kind", "measure", "min_tenure_d", "name",
                 "per", "per_default", "per_min_d", "signal", "spread", "spread_k", "weight",
                 "xs", "ys")

    def __init__(self, name: str, weight: float, measure: Measure, bit: int) -> None:
        self.name = name
        self.weight = weight
        self.measure = measure
        self.curve = _Curve.of(measure.curve)
        self.xs, self.ys = self.curve.xs, self.curve.ys
        self.bit = bit
        self.signal = measure.signal
        self.kind = measure.kind
        self.min_tenure_d = measure.min_tenure_d
        #: the signal is the value: no time, tenure or model in between
        self.direct = measure.kind == "value" and measure.min_tenure_d is None
        # what the expected gap of an elapsed measure reads (see expected_gap)
        self.age = measure.kind == "age"
        self.per = measure.per
        self.spread = measure.spread
        self.spread_k = measure.spread_k
        self.per_default = measure.per_default
        self.per_min_d = measure.per_min_d

    def gap(self, signals: dict[str, float], norms: dict[str, float]) -> float:
        """:func:`~streams.domain.scoring.score.expected_gap` of this measure, with the
        segment's norms by name (:meth:`_Compiled.norms`)."""
        if self.age:
            return 1.0
        per = signals.get(self.per) if self.per else None
        if per is not None and self.spread:
            per += self.spread_k * signals.get(self.spread, 0.0)
        if per is None and self.per_default:
            per = norms[self.per_default]
        if per is None or per <= 0:
            per = 1.0
        if per < self.per_min_d:
            per = self.per_min_d
        return per


class _GroupPlan:
    """One group of a profile, with its measures' plans."""

    __slots__ = ("critical_below", "critical_cap", "group", "measures", "name", "weight")

    def __init__(self, name: str, weight: float, group: Group,
                 measures: tuple[_MeasurePlan, ...]) -> None:
        self.name = name
        self.weight = weight
        self.group = group
        self.measures = measures
        self.critical_below = group.critical_below
        self.critical_cap = group.critical_cap


class _Layout:
    """The weights of one set of present measures (they depend on nothing else): per
    group with a measure present, in order, the group, how many measures it has present,
    the position of its capping measure among them (or -1) and their weights in the score."""

    __slots__ = ("groups",)

    def __init__(self,
                 groups: tuple[tuple[_GroupPlan, int, int, tuple[float, ...], float], ...]
                 ) -> None:
        self.groups = groups


class _ProfilePlan:
    """A profile's groups and measures as scoring reads them (plain attributes)."""

    __slots__ = ("elapsed", "elapsed_by_name", "falling", "groups", "layouts", "link",
                 "measures", "tenures")

    def __init__(self, groups: tuple[_GroupPlan, ...], elapsed: tuple[_MeasurePlan, ...],
                 tenures: tuple[float, ...], falling: bool = True, link: Link | None = None,
                 measures: tuple[_MeasurePlan, ...] = (),
                 elapsed_by_name: dict[str, _MeasurePlan] | None = None) -> None:
        self.groups = groups
        self.elapsed = elapsed  # the measures that move with time (not ``value``)
        self.tenures = tenures  # tenure thresholds of the whole config, in days
        #: every measure that moves with time can only lose points: between updates the
        #: score never rises
        self.falling = falling
        self.link = link
        self.measures = measures  # every measure, group by group
        self.elapsed_by_name = elapsed_by_name if elapsed_by_name is not None else {}
        #: set of present measures (a bit mask) -> its weights; None: no behavioural group
        self.layouts: dict[int, _Layout | None] = {}

    def layout(self, mask: int) -> _Layout | None:
        try:
            return self.layouts[mask]
        except KeyError:
            layout = self.layouts[mask] = self._layout(mask)
            return layout

    def _layout(self, mask: int) -> _Layout | None:
        present = [(g, [m for m in g.measures if m.bit & mask]) for g in self.groups]
        present = [(g, found) for g, found in present if found]
        if not any(not g.group.context for g, _ in present):
            return None
        total_group = 0.0
        for gplan, _ in present:
            total_group += gplan.weight
        groups = []
        for gplan, found in present:
            total_measure = 0.0
            cap = -1
            for i, mplan in enumerate(found):
                total_measure += mplan.weight
                if mplan.name == gplan.group.capped_by:
                    cap = i
            share = gplan.weight / total_group
            weights = tuple(share * (m.weight / total_measure) for m in found)
            groups.append((gplan, len(found), cap, weights, total_measure))
        return _Layout(tuple(groups))


def _compile(config: ScoringConfig, profile: str) -> _ProfilePlan:
    groups = []
    bit = 1
    for gname, gweight in config.profiles[profile].groups.items():
        if gweight <= 0:
            continue
        group = config.groups[gname]
        measures = []
        for mname, mweight in group.measures.items():
            if mweight > 0:
                measures.append(_MeasurePlan(mname, mweight, config.measures[mname], bit))
                bit <<= 1
        groups.append(_GroupPlan(gname, gweight, group, tuple(measures)))
    elapsed = tuple(m for g in groups for m in g.measures if m.measure.moves_with_time)
    tenures = {p.when_tenure_below_d for p in config.profiles.values()}
    tenures |= {m.min_tenure_d for m in config.measures.values()}
    falling = all(m.measure.falls_with_time for m in elapsed)
    return _ProfilePlan(tuple(groups), elapsed, tuple(sorted(t for t in tenures if t)),
                        falling, config.link, tuple(m for g in groups for m in g.measures),
                        {m.name: m for m in elapsed})


class _Compiled:
    """A scoring config as scoring reads it on every evaluation: plain attributes and
    the profiles' plans, built once per config object."""

    __slots__ = ("btyd", "capping", "champion_rules", "check_every_d", "cooldown_days",
                 "curves", "default_profile", "enter_after", "enter_below", "healthy_min",
                 "link", "max_quiet_d", "min_history_d", "owner", "plans",
                 "profiles_by_segment", "reasons", "segment_norms", "segments",
                 "tenure_profiles", "version", "watch_min")

    def __init__(self, config: ScoringConfig) -> None:
        self.owner = config
        self.version = config.version
        self.link = config.link
        self.btyd = config.btyd
        self.healthy_min = config.bands.healthy_min
        self.watch_min = config.bands.watch_min
        # what the silence checks read of [lapse] and [alerts]
        self.check_every_d = config.lapse.check_every_d
        self.max_quiet_d = config.lapse.max_quiet_d
        self.enter_below = config.alerts.enter_below
        self.enter_after = config.alerts.enter_after
        self.min_history_d = config.alerts.min_history_d
        self.cooldown_days = config.alerts.cooldown_days
        self.segments = config.segments
        #: each segment's norms that measures fall back on, by name
        names = {m.per_default for m in config.measures.values() if m.per_default}
        self.segment_norms = {
            segment: {name: float(getattr(norms, name)) for name in names}
            for segment, norms in config.segments.items()}
        self.default_profile = config.default_profile
        self.tenure_profiles = tuple(
            (name, p.when_tenure_below_d) for name, p in config.profiles.items()
            if p.when_tenure_below_d is not None)
        self.profiles_by_segment: dict[str, str] = {}
        for name, p in config.profiles.items():
            for segment in p.segments:
                self.profiles_by_segment.setdefault(segment, name)
        self.plans = {name: _compile(config, name) for name in config.profiles}
        self.curves = {name: _Curve.of(m.curve) for name, m in config.measures.items()}
        #: what each measure and each group's critical cap are called in an at-risk record
        #: (ScoringConfig.describe), by the measure's name or the cap's
        self.reasons: dict[str, Reason] = {name: config.describe(name)
                                           for name in config.measures}
        self.reasons.update({name + CRITICAL_SUFFIX: config.describe(name + CRITICAL_SUFFIX)
                             for name in config.groups})
        #: measure -> the measure that caps it in its group
        self.capping = {m: g.capped_by for g in config.groups.values() if g.capped_by
                        for m in g.measures if m != g.capped_by}
        #: the champion rules: signal, threshold, segments (None: every one), as text
        self.champion_rules = tuple(
            (r.signal, r.at_least, frozenset(r.segments) if r.segments else None,
             f"{r.signal} >= {r.at_least:g}") for r in config.champion.rules)

    def plan(self, profile: str) -> _ProfilePlan:
        return self.plans[profile]

    def profile_for(self, segment: str, tenure_d: float | None) -> str:
        if tenure_d is not None:
            for name, below in self.tenure_profiles:
                if tenure_d < below:
                    return name
        return self.profiles_by_segment.get(segment, self.default_profile)

    def segment(self, name: str) -> Segment:
        segment = self.segments.get(name)
        return segment if segment is not None else self.segments["default"]

    def norms(self, segment: str) -> dict[str, float]:
        """The norms of :meth:`segment`, by name."""
        norms = self.segment_norms.get(segment)
        return norms if norms is not None else self.segment_norms["default"]

    def band(self, score: float) -> str:
        if score >= self.healthy_min:
            return "healthy"
        if score >= self.watch_min:
            return "watch"
        return "at_risk"
