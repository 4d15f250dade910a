"""The per-record steps of the pipeline, free of Faust: agents and in-process replay
(backtest, tests) call the same functions with different tables.

A table is any mutable mapping of customer-id bytes to serialised state bytes: a Faust
table in a worker, a dict in process.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from streams.domain.buckets import to_ms
from streams.domain.events import Event
from streams.domain.features import (
    EngagementState,
    ProfileState,
    PurchaseState,
    RecentIds,
    SupportState,
    dumps,
    finite,
    loads,
)
from streams.domain.health import CustomerHealth, Output, evaluate
from streams.domain.scoring import ScoringConfig
from streams.settings import (
    TOPIC_ENGAGEMENT,
    TOPIC_PROFILE,
    TOPIC_PURCHASES,
    TOPIC_SUPPORT,
    Settings,
)

Table = MutableMapping[bytes, bytes]
PROFILE_TABLE = "profile-features"
HEALTH_TABLE = "customer-health"
#: The latest event time of each input partition, kept so that a restarted worker goes on
#: with the same watermarks (key ``topic/partition``, value milliseconds as text).
WATERMARK_TABLE = "watermarks"


class FeatureState(Protocol):
    def apply(self, event: Any) -> bool: ...
    def signals(self) -> dict[str, float]: ...
    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class FeatureFamily:
    """One event family: where it comes from and how its state is kept."""

    family: str  # signal name prefix, e.g. "purchase"
    step: str  # stable processing step name (log field and metric label)
    topic: str  # logical input topic
    record_type: str  # Avro record type expected on the topic
    table: str  # state table name
    new_state: Callable[[Settings], FeatureState]
    load_state: Callable[[dict[str, Any], Settings], FeatureState]


def id_window(settings: Settings) -> int:
    """How long (ms of event time) each family remembers event ids: the allowed lateness
    plus the allowed future, the span of event times the intake accepts at once."""
    return (settings.allowed_lateness_s + settings.max_future_s) * 1000


PURCHASES = FeatureFamily(
    "purchase", "purchases", TOPIC_PURCHASES, "Purchase", "purchase-features",
    new_state=lambda s: PurchaseState(RecentIds(id_window(s)), s.history_weeks),
    load_state=lambda d, s: PurchaseState.from_json(d, id_window(s), s.history_weeks))
ENGAGEMENT = FeatureFamily(
    "engagement", "engagement", TOPIC_ENGAGEMENT, "Engagement", "engagement-features",
    new_state=lambda s: EngagementState(RecentIds(id_window(s)), s.history_weeks),
    load_state=lambda d, s: EngagementState.from_json(d, id_window(s), s.history_weeks))
SUPPORT = FeatureFamily(
    "support", "support", TOPIC_SUPPORT, "SupportEvent", "support-features",
    new_state=lambda s: SupportState(RecentIds(id_window(s)), s.history_weeks),
    load_state=lambda d, s: SupportState.from_json(d, id_window(s), s.history_weeks))
PROFILE = FeatureFamily(
    "profile", "profile", TOPIC_PROFILE, "ProfileChange", PROFILE_TABLE,
    new_state=lambda s: ProfileState(RecentIds(id_window(s))),
    load_state=lambda d, s: ProfileState.from_json(d, id_window(s)))

#: Every feature family, by the Avro record type it reads.
FAMILIES = {f.record_type: f for f in (PURCHASES, ENGAGEMENT, SUPPORT, PROFILE)}
#: Every per-customer table a worker keeps (each has a changelog topic).
TABLES = (*(f.table for f in FAMILIES.values()), HEALTH_TABLE, WATERMARK_TABLE)


@dataclass(frozen=True, slots=True)
class FeatureResult:
    changed: bool  # False for a duplicate event id
    signals: dict[str, float]
    #: for the profile family: the profile as of this event (ProfileState.snapshot)
    profile: dict[str, Any] | None = None


def apply_event(family: FeatureFamily, state: FeatureState | None, event: Event,
                settings: Settings) -> tuple[FeatureState, FeatureResult]:
    """Apply one accepted event to a customer's feature state (a new one when None)."""
    if state is None:
        state = family.new_state(settings)
    if not state.apply(event):
        return state, FeatureResult(False, {})
    profile = state.snapshot() if isinstance(state, ProfileState) else None
    return state, FeatureResult(True, finite(state.signals()), profile)


def feature_step(family: FeatureFamily, table: Table, event: Event,
                 settings: Settings) -> FeatureResult:
    """Apply one accepted event to its customer's feature state in ``table``."""
    key = event.customer_id.encode()
    raw = table.get(key)
    current = None if raw is None else family.load_state(loads(raw), settings)
    state, result = apply_event(family, current, event, settings)
    if result.changed:
        table[key] = dumps(state.to_json())
    return result


def signal_update(event: Event, family: str, signals: dict[str, float],
                  profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """The SignalUpdate record a feature step publishes for the scorer. A profile update
    carries the profile itself: the scorer keeps its own copy, so it always scores with
    the profile its updates describe, never with one another agent has already moved on."""
    return {"event_id": event.event_id, "customer_id": event.customer_id,
            "occurred_at": event.occurred_at, "family": family, "signals": signals,
            "profile": dumps(profile).decode() if profile is not None else None}


CLOCK_FAMILY = "clock"
ERASURE_FAMILY = "erasure"


def tick_update(customer_id: str, now: datetime) -> dict[str, Any]:
    """The SignalUpdate a silence timer sends: no signals, just "run the silence checks
    due by ``now``" (see :func:`score_update`)."""
    return {"event_id": f"timer:{to_ms(now)}", "customer_id": customer_id,
            "occurred_at": now, "family": CLOCK_FAMILY, "signals": {}, "profile": None}


def erasure_marker(event: Event) -> dict[str, Any]:
    """The SignalUpdate that tells the scorer, in order, to forget a customer."""
    return {"event_id": event.event_id, "customer_id": event.customer_id,
            "occurred_at": event.occurred_at, "family": ERASURE_FAMILY, "signals": {},
            "profile": None}


@dataclass(frozen=True, slots=True)
class ScoreResult:
    outputs: list[Output]
    due_ms: int | None  # when to check this customer again, None for never
    erased: bool = False  # the customer was forgotten: send tombstones


def score_update(health: CustomerHealth | None, update: dict[str, Any],
                 scoring: ScoringConfig, settings: Settings,
                 partition: int = 0) -> tuple[CustomerHealth | None, list[Output]]:
    """Merge one SignalUpdate (or a timer tick) into a customer's health and evaluate it.

    Silence checks that fell due before the update's time run first, one per due time in
    order, each as of its own due time. So a customer's evaluations depend only on its own
    updates, never on when a timer happened to fire: a worker and a backtest that see the
    same updates publish the same outputs. A tick itself only runs the checks due by then.
    The profile (segment, tenure, consent, fit) is the one the customer's profile updates
    brought, kept in its health. Returns the new health (None when there is none to keep)
    and the outputs.
    """
    customer_id: str = update["customer_id"]
    timer = update["family"] == CLOCK_FAMILY
    if timer and health is None:
        return None, []  # erased since it was scheduled
    health = CustomerHealth() if health is None else health
    at_ms = to_ms(update["occurred_at"])
    outputs: list[Output] = []
    while health.due_ms is not None and (health.due_ms <= at_ms if timer
                                         else health.due_ms < at_ms):
        due = health.due_ms
        health.partition = partition
        outputs.extend(evaluate(
            health, scoring, customer_id=customer_id, at_ms=due, profile=health.profile,
            trigger="timer", trigger_id=f"timer:{due}", score_step=settings.score_step))
        if health.due_ms is not None and health.due_ms <= due:
            break  # never loops: a check is always scheduled after its evaluation
    if not timer:
        health.update_signals(update["family"], at_ms, finite(dict(update["signals"])))
        profile = update.get("profile")
        if profile is not None:
            health.profile = ProfileState.from_json(loads(profile.encode()), 0)
        health.partition = partition
        outputs.extend(evaluate(
            health, scoring, customer_id=customer_id, at_ms=at_ms, profile=health.profile,
            trigger="event", trigger_id=update["event_id"], score_step=settings.score_step))
    return health, outputs


def score_step(health_table: Table, update: dict[str, Any], scoring: ScoringConfig,
               settings: Settings, partition: int = 0) -> ScoreResult:
    """:func:`score_update` on a customer's state kept in tables (a worker's scorer)."""
    customer_id: str = update["customer_id"]
    key = customer_id.encode()
    if update["family"] == ERASURE_FAMILY:
        health_table.pop(key, None)
        return ScoreResult([], None, erased=True)
    raw = health_table.get(key)
    health, outputs = score_update(
        None if raw is None else CustomerHealth.from_json(loads(raw)),
        update, scoring, settings, partition)
    if health is None:
        return ScoreResult([], None)
    health_table[key] = dumps(health.to_json())
    return ScoreResult(outputs, health.due_ms)
