"""The scoring config's model: measures, groups, profiles, bands, alerts and the rest.

Frozen pydantic models that refuse unknown keys; each validates its own values and
:class:`ScoringConfig` checks the references between them (a group's measures, a profile's
groups, the churn reasons). The config explains a measure (:meth:`ScoringConfig.describe`)
and picks a play; what scoring reads on every evaluation is compiled from it once
(:meth:`ScoringConfig.compiled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from streams.domain.btyd import BgNbd
from streams.domain.scoring.compiled import CRITICAL_SUFFIX, _Compiled, _ProfilePlan

BANDS = ("healthy", "watch", "at_risk")



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
