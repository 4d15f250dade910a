"""The customer health score: a declarative, versioned config and its evaluation.

measures (signal -> points 0..100 along a piecewise-linear curve)
  -> groups (weighted measures) -> profile (weighted groups) -> score 0..100 -> band.

Missing signals redistribute their weight: first among the measures present in the same
group, then among the groups that have any measure present. Every score keeps the
per-measure contributions and the config version that produced it.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from streams.domain.btyd import BgNbd

BANDS = ("healthy", "watch", "at_risk")


CRITICAL_SUFFIX = ".critical"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    churn_reason: str


class ScoringConfigError(ValueError):
    """The scoring config is invalid; the message names the bad key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Measure(_Strict):
    """One scored measure, read from a signal."""

    signal: str
    #: value: the signal itself; elapsed: the time since the signal's moment over the
    #: customer's own gap; age: the time since the signal's moment, in days; btyd: the
    #: purchases the BG/NBD model of ``[btyd]`` expects in its horizon (the signal is the
    #: order count; the first and last purchase times come from their own signals)
    kind: Literal["value", "elapsed", "age", "btyd"] = "value"
    #: for kind=elapsed: the signal giving the customer's own expected gap in days
    per: str | None = None
    #: for kind=elapsed: added to ``per`` as ``spread_k`` times this signal (its spread)
    spread: str | None = None
    spread_k: float = Field(1.0, ge=0)
    #: for kind=elapsed: the segment norm used when the customer has no rhythm yet
    per_default: str | None = None
    #: for kind=elapsed: the expected gap is never taken shorter than this many days (a
    #: customer active every day is not lapsing after two quiet days)
    per_min_d: float = Field(0.0, ge=0)
    curve: list[tuple[float, float]]
    #: the measure applies only to customers at least this many days old (e.g. day 90)
    min_tenure_d: float | None = None
    reason: str
    text: str
    churn_reason: str

    @model_validator(mode="after")
    def _check(self) -> Measure:
        xs = [x for x, _ in self.curve]
        if len(self.curve) < 2 or xs != sorted(xs) or len(set(xs)) != len(xs):
            raise ValueError("curve needs 2+ points with strictly increasing x")
        if any(not 0 <= y <= 100 for _, y in self.curve):
            raise ValueError("curve points must lie within 0..100")
        if self.kind == "elapsed" and not (self.per or self.per_default):
            raise ValueError("an elapsed measure needs 'per' or 'per_default'")
        return self

    @property
    def moves_with_time(self) -> bool:
        """Whether the measure's value changes as time passes with no new signal."""
        return self.kind != "value"

    @property
    def falls_with_time(self) -> bool:
        """Whether its points can only fall as time passes: the value grows with time
        (elapsed, age) on a non-increasing curve, or shrinks (btyd) on a non-decreasing one."""
        ys = [y for _, y in self.curve]
        pairs = list(zip(ys, ys[1:], strict=False))
        if self.kind == "btyd":
            return all(a <= b for a, b in pairs)
        return all(a >= b for a, b in pairs)


class Group(_Strict):
    measures: dict[str, float]
    #: a context group (e.g. products held) adjusts a score but never makes one alone
    context: bool = False
    #: a measure of this group whose points cap the others' (a trend measured as of the
    #: last purchase cannot look better than the silence since that purchase)
    capped_by: str | None = None
    #: a group this bad (the weighted mean of its measures' points below critical_below)
    #: holds the whole score at critical_cap: such feedback is a red flag on its own
    critical_below: float | None = Field(None, ge=0, le=100)
    critical_cap: float = Field(40.0, ge=0, le=100)
    critical_reason: str = "critical_group"
    critical_text: str = "A group of measures is critical"
    critical_churn_reason: str | None = None


class Profile(_Strict):
    """Group weights of a segment or life stage."""

    groups: dict[str, float]
    #: a customer whose tenure is below this many days uses this profile (onboarding)
    when_tenure_below_d: float | None = None
    #: segments that use this profile
    segments: list[str] = []


class Segment(_Strict):
    """Norms for customers who have no rhythm of their own yet."""

    expected_purchase_gap_d: float = Field(gt=0)
    expected_engagement_gap_d: float = Field(gt=0)


class Bands(_Strict):
    healthy_min: float = Field(ge=0, le=100)
    watch_min: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> Bands:
        if self.watch_min > self.healthy_min:
            raise ValueError("watch_min must not exceed healthy_min")
        return self


class Alerts(_Strict):
    enter_below: float = Field(ge=0, le=100)
    exit_above: float = Field(ge=0, le=100)
    enter_after: int = Field(1, ge=1)
    exit_after: int = Field(1, ge=1)
    cooldown_days: float = Field(0, ge=0)
    #: no episode starts before a customer has been seen for this many days: until then
    #: its own rhythm is unknown and a score rests on segment norms and little evidence
    min_history_d: float = Field(0, ge=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> Alerts:
        if self.exit_above <= self.enter_below:
            raise ValueError("exit_above must be higher than enter_below (hysteresis)")
        return self


class Lapse(_Strict):
    """Silence detection: how long after its last evaluation a customer is checked again."""

    check_every_d: float = Field(1.0, gt=0)
    #: A customer whose score cannot change before its next event (every elapsed measure
    #: on a flat stretch of its curve) is checked when it next can, but at least this often
    #: (so a new scoring config reaches it).
    max_quiet_d: float = Field(28.0, gt=0)


class Btyd(_Strict):
    """BG/NBD population parameters for measures of kind ``btyd`` (fitted by
    ``churnwatch calibrate``; the packaged values are a prior for a retail business)."""

    r: float = Field(0.25, gt=0, allow_inf_nan=False)
    alpha: float = Field(30.0, gt=0, allow_inf_nan=False)
    a: float = Field(0.8, gt=0, allow_inf_nan=False)
    b: float = Field(3.0, gt=0, allow_inf_nan=False)
    #: the purchases expected within this many days are the measure's value
    horizon_d: float = Field(90.0, gt=0, allow_inf_nan=False)
    first_signal: str = "purchase.first_at_d"
    last_signal: str = "purchase.last_at_d"
    #: value at stake: the population's average order value (minor units) and how many
    #: pseudo-orders a customer's own average is shrunk toward it by
    mean_order_minor: float = Field(5000.0, ge=0, allow_inf_nan=False)
    shrink_orders: float = Field(2.0, ge=0, allow_inf_nan=False)

    def model(self) -> BgNbd:
        return BgNbd(self.r, self.alpha, self.a, self.b)

    def summary(self, signals: dict[str, float],
                now_d: float) -> tuple[float, float, float] | None:
        """The customer as BG/NBD sees it at ``now_d``: repeat purchases ``x``, days from
        the first to the last purchase ``t_x`` and from the first to now ``T``; None
        without a purchase."""
        orders = signals.get("purchase.orders_total")
        first = signals.get(self.first_signal)
        last = signals.get(self.last_signal)
        if not orders or first is None or last is None:
            return None
        big_t = max(0.0, now_d - first)
        return max(0.0, orders - 1.0), min(max(0.0, last - first), big_t), big_t


class Link(_Strict):
    """A calibrated score: ``100 * P`` with ``P = 1 / (1 + exp(-(intercept + slope *
    points / 100)))``, where ``points`` is the weighted points the measures give (0..100).
    Each contribution is then scaled so that the contributions still add up to the score.
    Written by ``churnwatch calibrate``; absent, the score is the points themselves."""

    intercept: float = Field(allow_inf_nan=False)
    slope: float = Field(gt=0, allow_inf_nan=False)
    #: what P is the probability of, e.g. "active within 90 days" (for the docs and reports)
    meaning: str = ""

    def probability(self, points: float) -> float:
        z = self.intercept + self.slope * points / 100.0
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


class ChampionRule(_Strict):
    signal: str
    at_least: float
    #: segments the rule applies to; empty means every segment
    segments: list[str] = []


class Champion(_Strict):
    """Top tier: any rule holding (and a healthy score) makes a customer a champion."""

    rules: list[ChampionRule] = []
    min_score: float = Field(70.0, ge=0, le=100)
    reward: str = "Loyalty reward"


class ChurnReason(_Strict):
    label: str
    team: str


class Fit(_Strict):
    profitability_threshold: float = 0.30
    depart_below: float = 0.0
    grow_below_products: int = 3


class ActivityRules(BaseModel):
    """When a customer counts as active or churned (see ``classify``).

    ``active_within_d``: active at T when the latest activity is at most this many days
    before T. ``churned_after_d``: churned at T when there has been no activity for at
    least this many days. ``churned_after_d >= active_within_d > 0``. ``nps_window_d``:
    the NPS counts answers given within that many days. Set in ``[retention]`` of the
    scoring config.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    active_within_d: float = Field(30.0, gt=0, allow_inf_nan=False)
    churned_after_d: float = Field(90.0, gt=0, allow_inf_nan=False)
    #: NPS over the answers given within this many days (a rolling window)
    nps_window_d: float = Field(90.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> ActivityRules:
        if self.churned_after_d < self.active_within_d:
            raise ValueError("churned_after_d must be at least active_within_d")
        return self


class ScoringConfig(_Strict):
    version: str
    default_profile: str
    bands: Bands
    alerts: Alerts
    segments: dict[str, Segment]
    measures: dict[str, Measure]
    groups: dict[str, Group]
    profiles: dict[str, Profile]
    churn_reasons: dict[str, ChurnReason]
    plays: dict[str, str]
    fit: Fit = Fit()
    lapse: Lapse = Lapse()
    champion: Champion = Champion()
    retention: ActivityRules = ActivityRules()
    btyd: Btyd = Btyd()
    link: Link | None = None
    _compiled: _Compiled | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _references(self) -> ScoringConfig:
        for gname, group in self.groups.items():
            if group.capped_by is not None and group.capped_by not in group.measures:
                raise ValueError(f"groups.{gname}.capped_by: '{group.capped_by}' is not a "
                                 "measure of this group")
            if group.critical_churn_reason is not None and (
                    group.critical_churn_reason not in self.churn_reasons):
                raise ValueError(f"groups.{gname}.critical_churn_reason: unknown reason "
                                 f"'{group.critical_churn_reason}'")
            if group.critical_below is not None and group.critical_churn_reason is None:
                raise ValueError(f"groups.{gname}: critical_below needs critical_churn_reason")
            for mname, weight in group.measures.items():
                if mname not in self.measures:
                    raise ValueError(f"groups.{gname}.measures: unknown measure '{mname}'")
                if weight < 0:
                    raise ValueError(f"groups.{gname}.measures.{mname}: weight below 0")
        for pname, profile in self.profiles.items():
            for gname, weight in profile.groups.items():
                if gname not in self.groups:
                    raise ValueError(f"profiles.{pname}.groups: unknown group '{gname}'")
                if weight < 0:
                    raise ValueError(f"profiles.{pname}.groups.{gname}: weight below 0")
        if self.default_profile not in self.profiles:
            raise ValueError(f"default_profile: unknown profile '{self.default_profile}'")
        if "default" not in self.segments:
            raise ValueError("segments: a 'default' segment is required")
        for mname, measure in self.measures.items():
            if measure.churn_reason not in self.churn_reasons:
                raise ValueError(
                    f"measures.{mname}.churn_reason: unknown reason '{measure.churn_reason}'")
            if measure.per_default and measure.per_default not in Segment.model_fields:
                raise ValueError(f"measures.{mname}.per_default: unknown segment norm")
        if "default" not in self.plays:
            raise ValueError("plays: a 'default' play is required")
        return self

    def describe(self, name: str) -> Reason:
        """Reason code, sentence and churn reason of a measure or a critical group cap."""
        if name in self.measures:
            m = self.measures[name]
            return Reason(m.reason, m.text, m.churn_reason)
        group = self.groups[name.removesuffix(CRITICAL_SUFFIX)]
        return Reason(group.critical_reason, group.critical_text,
                      group.critical_churn_reason or "")

    def compiled(self) -> _Compiled:
        """What scoring reads on every evaluation, as plain attributes (compiled once per
        config object: a copy made with other values compiles its own)."""
        private = self.__pydantic_private__
        assert private is not None
        compiled: _Compiled | None = private.get("_compiled")
        if compiled is None or compiled.owner is not self:
            compiled = private["_compiled"] = _Compiled(self)
        return compiled

    def plan(self, profile: str) -> _ProfilePlan:
        """The profile's groups and measures, compiled once for fast scoring."""
        return self.compiled().plan(profile)

    def segment(self, name: str) -> Segment:
        return self.segments.get(name, self.segments["default"])

    def band(self, score: float) -> str:
        if score >= self.bands.healthy_min:
            return "healthy"
        if score >= self.bands.watch_min:
            return "watch"
        return "at_risk"

    def profile_for(self, segment: str, tenure_d: float | None) -> str:
        return self.compiled().profile_for(segment, tenure_d)

    def play(self, segment: str, churn_reason: str, *, contactable: bool = True) -> str:
        """The playbook entry for a segment and churn reason; a customer who gave no
        contact consent gets the ``no_consent`` play (no outbound message) if configured."""
        if not contactable and "no_consent" in self.plays:
            return self.plays["no_consent"]
        for key in (f"{segment}.{churn_reason}", churn_reason, segment, "default"):
            if key in self.plays:
                return self.plays[key]
        return self.plays["default"]


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def parse_config(text: str, source: str = "<string>") -> ScoringConfig:
    """Parse and validate a scoring config; the version gets the content hash appended."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScoringConfigError(f"{source}: not valid TOML: {exc}") from exc
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    if isinstance(raw.get("version"), str):
        raw["version"] = f"{raw['version']}+{digest}"
    try:
        return ScoringConfig.model_validate(raw)
    except ValidationError as exc:
        raise ScoringConfigError(f"{source}: {_format_errors(exc)}") from exc


def load_config(path: Path | None = None) -> ScoringConfig:
    """Load a scoring config file, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("streams").joinpath("config/scoring.toml").read_text("utf-8")
        return parse_config(text, "default scoring.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScoringConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, str(path))


def interpolate(curve: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear lookup, flat beyond the first and last points."""
    return _Curve.of(curve)(x)


@dataclass(frozen=True, slots=True)
class _Curve:
    """A curve split into its x and y values, for a bisecting lookup (compiled once per
    measure when scoring)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @classmethod
    def of(cls, curve: list[tuple[float, float]]) -> _Curve:
        return cls(tuple(x for x, _ in curve), tuple(y for _, y in curve))

    def __call__(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            return ys[0]
        i = bisect.bisect_left(xs, x)
        if i == len(xs):
            return ys[-1]
        x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class _MeasurePlan:
    """One measure of a profile, with what scoring reads of it as plain attributes."""

    __slots__ = ("bit", "curve", "direct", "kind", "measure", "min_tenure_d", "name",
                 "signal", "weight", "xs", "ys")

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


@dataclass(frozen=True, slots=True)
class _GroupPlan:
    name: str
    weight: float
    group: Group
    measures: tuple[_MeasurePlan, ...]


@dataclass(frozen=True, slots=True)
class _Layout:
    """The weights of one set of present measures (they depend on nothing else): per
    group with a measure present, in order, the group, how many measures it has present,
    the position of its capping measure among them (or -1) and their weights in the score."""

    groups: tuple[tuple[_GroupPlan, int, int, tuple[float, ...], float], ...]


@dataclass(frozen=True, slots=True)
class _ProfilePlan:
    groups: tuple[_GroupPlan, ...]
    elapsed: tuple[_MeasurePlan, ...]  # the measures that move with time (not ``value``)
    tenures: tuple[float, ...]  # tenure thresholds of the whole config, in days
    #: every measure that moves with time can only lose points: between updates the score
    #: never rises
    falling: bool = True
    link: Link | None = None
    measures: tuple[_MeasurePlan, ...] = ()  # every measure, group by group
    elapsed_by_name: dict[str, _MeasurePlan] = field(default_factory=dict)
    #: set of present measures (a bit mask) -> its weights; None: no behavioural group
    layouts: dict[int, _Layout | None] = field(default_factory=dict)

    def layout(self, mask: int) -> _Layout | None:
        layout = self.layouts.get(mask, self)
        if layout is self:
            layout = self.layouts[mask] = self._layout(mask)
        return layout  # type: ignore[return-value]

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

    __slots__ = ("btyd", "champion_rules", "curves", "default_profile", "healthy_min", "link",
                 "owner", "plans", "profiles_by_segment", "segments", "tenure_profiles",
                 "version", "watch_min")

    def __init__(self, config: ScoringConfig) -> None:
        self.owner = config
        self.version = config.version
        self.link = config.link
        self.btyd = config.btyd
        self.healthy_min = config.bands.healthy_min
        self.watch_min = config.bands.watch_min
        self.segments = config.segments
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

    def band(self, score: float) -> str:
        if score >= self.healthy_min:
            return "healthy"
        if score >= self.watch_min:
            return "watch"
        return "at_risk"


def fall_per_day(config: ScoringConfig, score: Score, signals: dict[str, float],
                 segment: str, now_d: float) -> float | None:
    """How many points a day the score is falling now, from the slopes of the curves its
    time-moving measures are on (caps ignored): an estimate, to guess when it next matters.
    A measure not yet past its first point adds nothing (it is flat there); None when no
    measure moves but one is waiting so: a customer still inside its usual gap is likely
    to send an event before any guess comes due."""
    compiled = config.compiled()
    plan = compiled.plans[score.profile]
    elapsed = plan.elapsed_by_name
    seg = compiled.segment(segment)
    rate = 0.0
    waiting = moving = False
    for c in score.contributions:
        mplan = elapsed.get(c.measure)
        if mplan is None or c.weight <= 0:
            continue
        xs, ys = mplan.xs, mplan.ys
        if mplan.measure.kind == "btyd":
            later = btyd_value(config.btyd, signals, now_d + 1.0)
            if later is not None:
                rate += c.weight * (mplan.curve(c.value) - mplan.curve(later))
                moving = True
            continue
        if c.value < xs[0]:
            waiting = True
            continue
        if c.value >= xs[-1]:
            continue
        moving = True
        i = bisect.bisect_right(xs, c.value)
        rate += (c.weight * (ys[i - 1] - ys[i]) / (xs[i] - xs[i - 1])
                 / expected_gap(mplan.measure, signals, seg))
    if waiting and not moving:
        return None
    link = plan.link
    if link is not None:
        # the weights carry score / points: back to points a day, then through the link
        if score.points <= 0:
            return None
        p = score.score / 100.0
        rate *= score.points / score.score * link.slope * p * (1.0 - p) if p > 0 else 0.0
    return rate


def next_kink_d(config: ScoringConfig, score: Score, signals: dict[str, float],
                segment: str, now_d: float) -> float | None:
    """The first day after ``now_d`` at which a time-moving measure of the score reaches a
    point of its curve (where its slope changes), if any: up to then the score falls in a
    straight line (caps and a link aside)."""
    compiled = config.compiled()
    elapsed = compiled.plans[score.profile].elapsed_by_name
    seg = compiled.segment(segment)
    first: float | None = None
    for c in score.contributions:
        mplan = elapsed.get(c.measure)
        if mplan is None or mplan.kind == "btyd":
            continue
        value = c.value
        xs = mplan.xs
        i = bisect.bisect_right(xs, value)
        if i == len(xs):
            continue
        at = now_d + (xs[i] - value) * expected_gap(mplan.measure, signals, seg)
        if at > now_d and (first is None or at < first):
            first = at
    return first


def next_tenure_d(config: ScoringConfig, profile: str, tenure_d: float | None) -> float | None:
    """The next tenure threshold (a profile's or a measure's) above ``tenure_d``, if any."""
    if tenure_d is None:
        return None
    return next((t for t in config.plan(profile).tenures if tenure_d < t), None)


class Contribution(NamedTuple):
    """What one measure adds to the score; a critical-group cap is an entry whose
    ``adjustment`` (negative) takes the score down to the cap. (A named tuple: a score
    makes several of these on every evaluation.)"""

    measure: str
    signal: str
    value: float
    points: float
    weight: float
    adjustment: float = 0.0

    @property
    def contribution(self) -> float:
        return self.points * self.weight + self.adjustment

    @property
    def shortfall(self) -> float:
        """Points lost to the score by this measure (what a reason is ranked by)."""
        return (100.0 - self.points) * self.weight - self.adjustment


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    band: str
    profile: str
    contributions: tuple[Contribution, ...]
    config_version: str
    #: the measures' weighted points before a calibrated link (equal to ``score`` without
    #: one, critical caps aside)
    points: float = 0.0


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


def steady_until(
    config: ScoringConfig,
    signals: dict[str, float],
    *,
    now_d: float,
    segment: str,
    tenure_d: float | None,
    profile: str | None = None,
) -> float:
    """The day up to which, with no new signals, the score stays what it is at ``now_d``:
    ``now_d`` when it may change at once, ``inf`` when it never will.

    Only time moves a score between updates, through the elapsed measures and the tenure.
    The score holds while every elapsed measure of the customer's profile sits on a flat
    stretch of its curve (before its first point, past its last, or between two points of
    equal value) and no tenure threshold (a profile's ``when_tenure_below_d``, a measure's
    ``min_tenure_d``) is crossed."""
    compiled = config.compiled()
    name = profile if profile is not None else compiled.profile_for(segment, tenure_d)
    plan = compiled.plans[name]
    until = math.inf
    seg = None
    for mplan in plan.elapsed:
        base = signals.get(mplan.signal)
        if base is None:
            continue
        if mplan.kind == "btyd":
            return now_d  # expected purchases shrink continuously with time
        if seg is None:
            seg = compiled.segment(segment)
        per = expected_gap(mplan.measure, signals, seg)
        value = max(0.0, now_d - base) / per
        xs, ys = mplan.xs, mplan.ys
        if value >= xs[-1]:
            continue
        if value < xs[0]:
            end = xs[0]
        else:
            i = bisect.bisect_right(xs, value)
            if ys[i - 1] != ys[i]:
                return now_d
            end = xs[i]
        until = min(until, base + end * per)
    if tenure_d is not None:
        threshold = next((t for t in plan.tenures if tenure_d < t), None)
        if threshold is not None:
            until = min(until, now_d + threshold - tenure_d)
    return max(until, now_d)


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
    get = signals.get
    present: list[_MeasurePlan] = []
    values: list[float] = []
    mask = 0
    seg = None
    for mplan in plan.measures:
        value = get(mplan.signal)
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
                if seg is None:
                    seg = compiled.segment(segment)
                value = max(0.0, now_d - value) / expected_gap(mplan.measure, signals, seg)
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
            cap = _lookup(present[pos + cap_at], values[pos + cap_at])
        critical_below = gplan.group.critical_below
        group_points = 0.0
        for j in range(count):
            mplan = present[pos + j]
            value = values[pos + j]
            xs = mplan.xs  # the curve's points at value, as _lookup (inlined: hot)
            if value <= xs[0]:
                points = mplan.ys[0]
            else:
                i = bisect.bisect_left(xs, value)
                if i == len(xs):
                    points = mplan.ys[-1]
                else:
                    ys = mplan.ys
                    x0, y0 = xs[i - 1], ys[i - 1]
                    points = y0 + (ys[i] - y0) * (value - x0) / (xs[i] - x0)
            if cap is not None and cap < points:
                points = cap
            if critical_below is not None:
                group_points += points * mplan.weight
            weight = weights[j]
            products.append(points * weight)
            if contributions is not None:
                contributions.append(Contribution(
                    mplan.name, mplan.signal, value, points, weight))
        pos += count
        if critical_below is not None:
            group_points /= total_measure
            if group_points < critical_below:
                critical.append((gplan, group_points))
    points = min(100.0, max(0.0, sum(products)))
    score = points
    link = compiled.link
    if link is not None:
        score = 100.0 * link.probability(points)
        if contributions is not None:
            contributions[:] = _scaled(contributions, score, points)
    for gplan, group_points in critical:
        cap_to = gplan.group.critical_cap
        if score > cap_to:
            if contributions is not None:
                contributions.append(Contribution(
                    measure=gplan.name + CRITICAL_SUFFIX, signal=gplan.name,
                    value=round(group_points, 2), points=0.0, weight=0.0,
                    adjustment=cap_to - score))
            score = cap_to
    return round(score, 2), profile_name, points


def _lookup(mplan: _MeasurePlan, x: float) -> float:
    """The measure's points at ``x`` (:class:`_Curve`, inlined)."""
    xs = mplan.xs
    if x <= xs[0]:
        return mplan.ys[0]
    i = bisect.bisect_left(xs, x)
    if i == len(xs):
        return mplan.ys[-1]
    ys = mplan.ys
    x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _scaled(contributions: list[Contribution], score: float,
            points: float) -> list[Contribution]:
    """Contributions that add up to a calibrated ``score`` instead of to ``points``: each
    weight scaled by score / points (so the reasons keep their order); when no measure
    gave any point, the score is shared by weight."""
    if points > 0:
        k = score / points
        return [c._replace(weight=c.weight * k) for c in contributions]
    total = sum(c.weight for c in contributions) or 1.0
    return [c._replace(adjustment=score * c.weight / total) for c in contributions]
