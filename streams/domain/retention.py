"""Retention metrics the business reports: retention rate, churn rate, NPS, and the
activity rules that say which customers count as active, churned or new.

Pure functions: no I/O, no clock reads. Times are days since the Unix epoch as floats
(milliseconds / ``DAY_MS``), the unit the scorer uses. See docs/scoring.md, section
"Retention metrics", for the definitions in prose.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

from streams.domain.buckets import DAY_MS
from streams.domain.features import (
    EngagementState,
    ProfileState,
    PurchaseState,
    SupportState,
)
from streams.domain.health import CustomerHealth
from streams.domain.scoring import BANDS, ActivityRules, Btyd
from streams.domain.stored import loads
from streams.domain.value import CURRENCY_SIGNAL, currency_of, value_at_stake

Activity = Literal["new", "active", "inactive", "churned", "unknown"]
ACTIVITIES: tuple[Activity, ...] = ("new", "active", "inactive", "churned", "unknown")
#: Band reported for a customer the scorer has not published a score for.
UNSCORED = "unscored"

#: The pipeline's state tables read by ``snapshot_from_tables`` (names as in
#: streams/pipeline.py; the domain does not import the pipeline).
PURCHASE_TABLE = "purchase-features"
ENGAGEMENT_TABLE = "engagement-features"
SUPPORT_TABLE = "support-features"
PROFILE_TABLE = "profile-features"
HEALTH_TABLE = "customer-health"

# States are only read here, never updated: the id memory and history sizes they are
# decoded with (id window, weeks kept) do not change what is read.
_READ_WINDOW_MS = 1
_READ_WEEKS = 1


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def retention_rate(start_customers: int, end_customers: int, new_customers: int) -> float | None:
    """Customer retention rate of a period in percent: CRR = ((CE - CN) / CS) x 100.

    CS = customers at the period start, CE = customers at the period end, CN = new
    customers acquired during the period (and still there at the end). None when
    CS == 0 (no base to retain). ValueError for a negative count or CN > CE.

    The result lies within 0..100 whenever CE - CN <= CS, i.e. whenever the customers
    kept from before the period are a subset of those at its start (as counted by
    ``period_counts``); inconsistent counts can give more than 100.

    >>> retention_rate(1000, 800, 200)
    60.0
    """
    _check_counts(start_customers=start_customers, end_customers=end_customers,
                  new_customers=new_customers)
    if new_customers > end_customers:
        raise ValueError(f"new_customers ({new_customers}) cannot exceed end_customers "
                         f"({end_customers})")
    if start_customers == 0:
        return None
    return (end_customers - new_customers) * 100 / start_customers


def churn_rate(start_customers: int, churned: int) -> float | None:
    """Churn rate of a period in percent: churned / customers at the start x 100.

    ``churned`` counts customers of the starting base lost during the period, so it
    cannot exceed ``start_customers`` (ValueError, as for a negative count). None when
    there were no customers at the start. Within 0..100.
    """
    _check_counts(start_customers=start_customers, churned=churned)
    if churned > start_customers:
        raise ValueError(f"churned ({churned}) cannot exceed start_customers "
                         f"({start_customers})")
    if start_customers == 0:
        return None
    return churned * 100 / start_customers


def nps(answers: Iterable[int]) -> float | None:
    """Net Promoter Score: % promoters (answers 9-10) minus % detractors (0-6).

    Passives (7-8) count in the total only. Within -100..100; None for no answers;
    ValueError for an answer outside 0..10.
    """
    total = promoters = detractors = 0
    for answer in answers:
        if not 0 <= answer <= 10:
            raise ValueError(f"an NPS answer must lie within 0..10, got {answer}")
        total += 1
        if answer >= 9:
            promoters += 1
        elif answer <= 6:
            detractors += 1
    if total == 0:
        return None
    return (promoters - detractors) * 100 / total


def _finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of days, got {value}")


def classify(last_activity_d: float | None, signup_d: float | None, now_d: float,
             rules: ActivityRules) -> Activity:
    """A customer's activity state at ``now_d`` (all times in days since the epoch).

    Activity means a purchase or an engagement event. With ``age`` the days from the
    latest activity to ``now_d`` (0 when the activity lies after ``now_d``, as when a
    watermark trails the newest event), the first rule that holds wins:

    1. activity known and ``age <= active_within_d``: "active";
    2. activity known and ``age >= churned_after_d``: "churned";
    3. activity known: "inactive" (``active_within_d < age < churned_after_d``);
    4. no activity, signed up at or before ``now_d``, and ``now_d - signup_d``
       ``<= active_within_d``: "new";
    5. no activity, ``now_d - signup_d >= churned_after_d``: "churned" (never active
       since signing up that long ago);
    6. no activity, otherwise signed up before ``now_d``: "inactive";
    7. no activity and no sign-up at or before ``now_d``: "unknown".

    A sign-up date never makes a customer with activity "new": activity decides.
    ValueError for a non-finite time.
    """
    _finite("last_activity_d", last_activity_d)
    _finite("signup_d", signup_d)
    _finite("now_d", now_d)
    if last_activity_d is not None:
        age = max(0.0, now_d - last_activity_d)
        if age <= rules.active_within_d:
            return "active"
        return "churned" if age >= rules.churned_after_d else "inactive"
    if signup_d is None or signup_d > now_d:
        return "unknown"
    tenure = now_d - signup_d
    if tenure <= rules.active_within_d:
        return "new"
    return "churned" if tenure >= rules.churned_after_d else "inactive"


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """Customer counts of one period [start_d, end_d], ready for the rate functions.

    ``start_customers`` (CS): active at the start. ``end_customers`` (CE): active at the
    end. ``new_customers`` (CN): active at the end with their first activity inside the
    period (after the start). ``base_customers``: new, active or inactive at the start
    (known and not churned). ``churned``: of that base, churned at the end.
    """

    start_customers: int
    end_customers: int
    new_customers: int
    base_customers: int
    churned: int

    def retention_rate(self) -> float | None:
        return retention_rate(self.start_customers, self.end_customers, self.new_customers)

    def churn_rate(self) -> float | None:
        return churn_rate(self.base_customers, self.churned)


def _state_at(first_active_d: float | None, last_activity_d: float | None,
              signup_d: float | None, at_d: float, rules: ActivityRules) -> Activity:
    if last_activity_d is None or first_active_d is None or first_active_d > at_d:
        last_known = None  # no activity yet at ``at_d``
    else:
        last_known = min(last_activity_d, at_d)
    return classify(last_known, signup_d, at_d, rules)


def period_counts(customers: Iterable[tuple[float | None, float | None, float | None]],
                  start_d: float, end_d: float, rules: ActivityRules) -> PeriodCounts:
    """Count the customers of a period from their (first_seen_d, last_activity_d, signup_d).

    ``first_seen_d`` is a customer's first activity, ``last_activity_d`` its latest
    (None: never active; a missing first is taken to be the latest), ``signup_d`` its
    sign-up. Only those two activity dates are known, so a customer counts as having
    been active throughout from its first to its latest activity: at a time T between
    them its latest activity as of T is taken to be T. At any other T it is classified
    by ``classify`` on what was known at T (activity, then sign-up, at or before T).

    With that reading every customer active at the end and first active at or before
    the start was also active at the start, so CE - CN <= CS and the retention rate
    lies within 0..100. ValueError when ``end_d < start_d`` or a first activity lies
    after the latest.
    """
    _finite("start_d", start_d)
    _finite("end_d", end_d)
    if end_d < start_d:
        raise ValueError(f"end_d ({end_d}) is before start_d ({start_d})")
    cs = ce = cn = base = churned = 0
    for first_seen_d, last_activity_d, signup_d in customers:
        first = first_seen_d if first_seen_d is not None else last_activity_d
        if first is not None and last_activity_d is not None and first > last_activity_d:
            raise ValueError(f"first_seen_d ({first}) is after last_activity_d "
                             f"({last_activity_d})")
        at_start = _state_at(first, last_activity_d, signup_d, start_d, rules)
        at_end = _state_at(first, last_activity_d, signup_d, end_d, rules)
        cs += at_start == "active"
        if at_end == "active":
            ce += 1
            cn += first is not None and first > start_d
        if at_start in ("new", "active", "inactive"):
            base += 1
            churned += at_end == "churned"
    return PeriodCounts(cs, ce, cn, base, churned)


class Snapshot(TypedDict):
    """Counts over the customers present in the state tables (see snapshot_from_tables)."""

    customers: int
    bands: dict[str, int]
    segments: dict[str, int]
    activity: dict[str, int]
    nps: float | None
    nps_answers: int
    #: band -> currency -> revenue expected within the BG/NBD horizon if the customers stay
    #: (minor units; streams.domain.value)
    value_at_stake: dict[str, dict[str, int]]


def _days(ms: int | None) -> float | None:
    return None if ms is None else ms / DAY_MS


def customer_keys(tables: Mapping[str, Mapping[bytes, bytes]]) -> set[bytes]:
    """Every customer with a state in any of the pipeline's tables."""
    keys: set[bytes] = set()
    for name in (PURCHASE_TABLE, ENGAGEMENT_TABLE, SUPPORT_TABLE, PROFILE_TABLE, HEALTH_TABLE):
        keys.update(tables.get(name, {}))
    return keys


class SnapshotBuilder:
    """Builds a :class:`Snapshot` one customer at a time, so that a caller on an event
    loop can yield between customers."""

    def __init__(self, tables: Mapping[str, Mapping[bytes, bytes]], now_d: float,
                 rules: ActivityRules, btyd: Btyd | None = None) -> None:
        self.now_d, self.rules, self.btyd = now_d, rules, btyd if btyd is not None else Btyd()
        self.value: dict[str, Counter[str]] = {}
        self.purchases = tables.get(PURCHASE_TABLE, {})
        self.engagement = tables.get(ENGAGEMENT_TABLE, {})
        self.support = tables.get(SUPPORT_TABLE, {})
        self.profiles = tables.get(PROFILE_TABLE, {})
        self.health = tables.get(HEALTH_TABLE, {})
        self.customers = 0
        self.bands: Counter[str] = Counter({band: 0 for band in (*BANDS, UNSCORED)})
        self.activity: Counter[str] = Counter({state: 0 for state in ACTIVITIES})
        self.segments: Counter[str] = Counter()
        self.answers: list[int] = []

    def add(self, key: bytes) -> None:
        """Count one customer (one that has meanwhile been erased counts as nothing)."""
        raw = {name: table.get(key) for name, table in (
            ("p", self.purchases), ("e", self.engagement), ("s", self.support),
            ("f", self.profiles), ("h", self.health))}
        if all(value is None for value in raw.values()):
            return
        self.customers += 1
        last_ms: list[int] = []
        if raw["p"] is not None:
            state = PurchaseState.from_json(loads(raw["p"]), _READ_WINDOW_MS, _READ_WEEKS)
            last_ms += [state.last_ms] if state.last_ms is not None else []
        if raw["e"] is not None:
            use = EngagementState.from_json(loads(raw["e"]), _READ_WINDOW_MS, _READ_WEEKS)
            last_ms += [use.last_ms] if use.last_ms is not None else []
        profile = (ProfileState.from_json(loads(raw["f"]), _READ_WINDOW_MS)
                   if raw["f"] is not None else None)
        if raw["s"] is not None:
            answer = SupportState.from_json(loads(raw["s"]), _READ_WINDOW_MS, _READ_WEEKS).nps
            if answer is not None and self.now_d - answer[0] / DAY_MS <= self.rules.nps_window_d:
                self.answers.append(answer[1])
        health = CustomerHealth.from_json(loads(raw["h"])) if raw["h"] is not None else None
        band = health.published_band if health is not None else None
        self.bands[band or UNSCORED] += 1
        if health is not None:
            value = value_at_stake(self.btyd, health.signals, self.now_d)
            currency = currency_of(health.signals.get(CURRENCY_SIGNAL))
            if value is not None and currency is not None:
                self.value.setdefault(band or UNSCORED, Counter())[currency] += value
        self.segments[profile.segment if profile is not None else "unknown"] += 1
        self.activity[classify(_days(max(last_ms, default=None)),
                               _days(profile.signup_ms) if profile is not None else None,
                               self.now_d, self.rules)] += 1

    def result(self) -> Snapshot:
        return {"customers": self.customers, "bands": dict(self.bands),
                "segments": dict(sorted(self.segments.items())),
                "activity": dict(self.activity), "nps": nps(self.answers),
                "nps_answers": len(self.answers),
                "value_at_stake": {band: dict(sorted(by_currency.items()))
                                   for band, by_currency in sorted(self.value.items())}}


def snapshot_from_tables(tables: Mapping[str, Mapping[bytes, bytes]], now_d: float,
                         rules: ActivityRules, btyd: Btyd | None = None) -> Snapshot:
    """Counts per band, segment and activity state, and the NPS, at ``now_d``.

    Reads the pipeline's state tables (customer-id bytes -> JSON bytes; a missing table
    counts as empty). Customers are those with a state in any of the tables. Per customer:
    the band is the last one the scorer published (``"unscored"`` when none); the segment
    comes from the profile (``"unknown"`` without one); the activity state is
    ``classify`` of the latest purchase or engagement and the profile's sign-up; the NPS
    is taken over each customer's latest NPS answer given within the last
    ``rules.nps_window_d`` days (a rolling window; one answer per customer).
    Every band and activity state is present in the result, with 0 when no customer has
    it, so a gauge fed from it keeps a stable label set.
    """
    builder = SnapshotBuilder(tables, now_d, rules, btyd)
    for key in customer_keys(tables):
        builder.add(key)
    return builder.result()
