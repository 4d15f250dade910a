"""The per-record step of the pipeline, free of Faust: the worker's ingest agent and the
in-process replay (backtest, tests) call the same functions.

One accepted input event goes through its family's feature state and straight on to the
customer's health, in one step (:func:`step_event`); a silence check is the same step with
no event (:func:`step_silence`). The states live in a :class:`CustomerStates`: objects in
memory, read from the tables once and written back once per batch. A table is any mutable
mapping of customer-id bytes to serialised state bytes: a Faust table in a worker; the
replay keeps no tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streams.domain.buckets import to_ms
from streams.domain.features import ProfileState, finite
from streams.domain.health import CustomerHealth, Output, evaluate
from streams.domain.scoring import ScoringConfig
from streams.domain.stored import dumps, loads
from streams.families import BY_RECORD_TYPE, REGISTRY, Family, FamilyEvent, FeatureState
from streams.settings import Settings

Table = MutableMapping[bytes, bytes]
HEALTH_TABLE: Final = "customer-health"
#: The latest event time of each input partition, kept so that a restarted worker goes on
#: with the same watermarks (key ``topic/partition``, value milliseconds as text).
WATERMARK_TABLE: Final = "watermarks"


def id_window(settings: Settings) -> int:
    """How long (ms of event time) each family remembers event ids: the allowed lateness
    plus the allowed future, the span of event times the intake accepts at once."""
    return (settings.allowed_lateness_s + settings.max_future_s) * 1000


#: Every feature family, by the Avro record type it reads (see streams.families).
FAMILIES: Final = BY_RECORD_TYPE
#: Every per-customer table a worker keeps (each has a changelog topic).
TABLES: Final = (*(f.table for f in REGISTRY), HEALTH_TABLE, WATERMARK_TABLE)


@dataclass(frozen=True, slots=True, init=False)
class FeatureResult:
    changed: bool  # False for a duplicate event id
    signals: dict[str, float]
    #: for the profile family: the profile as of this event (ProfileState.snapshot)
    profile: dict[str, Any] | None = None

    def __init__(self, changed: bool, signals: dict[str, float],
                 profile: dict[str, Any] | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        object.__setattr__(self, "changed", changed)
        object.__setattr__(self, "signals", signals)
        object.__setattr__(self, "profile", profile)


def apply_event(family: Family, state: FeatureState | None, event: FamilyEvent,
                settings: Settings) -> tuple[FeatureState, FeatureResult]:
    """Apply one accepted event to a customer's feature state (a new one when None)."""
    if state is None:
        state = family.new_state(id_window(settings), settings.history_weeks)
    if not state.apply(event):
        return state, FeatureResult(False, {})
    profile = state.snapshot() if isinstance(state, ProfileState) else None
    return state, FeatureResult(True, finite(state.signals()), profile)


def signal_update(event: FamilyEvent, family: str, signals: dict[str, float],
                  profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """What one feature step tells the scorer: the family's signals as of the event and,
    for a profile change, the profile itself (the scorer keeps its own copy, so it always
    scores with the profile its updates describe)."""
    return {"event_id": event.event_id, "customer_id": event.customer_id,
            "occurred_at": event.occurred_at, "family": family, "signals": signals,
            "profile": profile}


CLOCK_FAMILY: Final = "clock"


def tick_update(customer_id: str, now: datetime) -> dict[str, Any]:
    """The update of a silence check: no signals, just "run the silence checks due by
    ``now``" (see :func:`score_update`)."""
    return {"event_id": f"timer:{to_ms(now)}", "customer_id": customer_id,
            "occurred_at": now, "family": CLOCK_FAMILY, "signals": {}, "profile": None}


def score_update(health: CustomerHealth | None, update: dict[str, Any],
                 scoring: ScoringConfig, settings: Settings,
                 partition: int = 0) -> tuple[CustomerHealth | None, list[Output]]:
    """Merge one signal update (or a silence check) into a customer's health and evaluate it.

    Silence checks that fell due before the update's time run first, one per due time in
    order, each as of its own due time. So a customer's evaluations depend only on its own
    updates, never on when a timer happened to fire: a worker and a backtest that see the
    same updates publish the same outputs. A tick itself only runs the checks due by then.
    The profile (segment, tenure, consent, fit) is the one the customer's profile updates
    brought, kept in its health. Returns the new health (None when there is none to keep)
    and the outputs.
    """
    timer = update["family"] == CLOCK_FAMILY
    return _merge(health, update["customer_id"], to_ms(update["occurred_at"]),
                  None if timer else update["family"],
                  {} if timer else finite(dict(update["signals"])), update.get("profile"),
                  update["event_id"], scoring, settings.score_step, partition)


def _merge(health: CustomerHealth | None, customer_id: str, at_ms: int, family: str | None,
           signals: dict[str, float], profile: dict[str, Any] | None, event_id: str,
           scoring: ScoringConfig, score_step: float,
           partition: int) -> tuple[CustomerHealth | None, list[Output]]:
    """:func:`score_update` of an update read out: ``family`` None for a silence check,
    ``signals`` finite."""
    timer = family is None
    if timer and health is None:
        return None, []  # erased since it was scheduled
    health = CustomerHealth() if health is None else health
    outputs: list[Output] = []
    while health.due_ms is not None and (health.due_ms <= at_ms if timer
                                         else health.due_ms < at_ms):
        due = health.due_ms
        health.partition = partition
        outputs.extend(evaluate(
            health, scoring, customer_id=customer_id, at_ms=due, profile=health.profile,
            trigger="timer", trigger_id=f"timer:{due}", score_step=score_step))
        if health.due_ms is not None and health.due_ms <= due:
            break  # never loops: a check is always scheduled after its evaluation
    if family is not None:
        health.update_signals(family, at_ms, signals)
        if profile is not None:
            health.profile = ProfileState.from_json(profile, 0)
        health.partition = partition
        outputs.extend(evaluate(
            health, scoring, customer_id=customer_id, at_ms=at_ms, profile=health.profile,
            trigger="event", trigger_id=event_id, score_step=score_step))
    return health, outputs


_UNREAD: Final[Any] = object()


class CustomerStates:
    """Each customer's state objects (one per family, and its health), read from the
    tables at first use and kept in memory; :meth:`changed` lists what to write back.

    ``tables`` None keeps everything in memory only (the replay). With tables (a worker),
    at most ``keep`` customers stay in memory between batches, and the worker clears it
    all after a rebalance: another worker may have changed them since.
    """

    def __init__(self, settings: Settings, tables: Mapping[str, Table] | None = None,
                 keep: int | None = None) -> None:
        self.settings = settings
        self._tables = tables
        self._keep = keep
        self.features: dict[str, dict[str, FeatureState | None]] = {
            f.table: {} for f in REGISTRY}
        self.health: dict[str, CustomerHealth | None] = {}
        self._changed: dict[str, tuple[int, set[str]]] = {}  # customer -> partition, tables

    def _read(self, table: str, customer: str) -> dict[str, Any] | None:
        assert self._tables is not None
        raw = self._tables[table].get(customer.encode())
        return None if raw is None else loads(raw)

    def feature(self, family: Family, customer: str) -> FeatureState | None:
        states = self.features[family.table]
        if self._tables is None:
            return states.get(customer)
        state = states.get(customer, _UNREAD)
        if state is _UNREAD:
            data = self._read(family.table, customer)
            state = states[customer] = (None if data is None else family.load_state(
                data, id_window(self.settings), self.settings.history_weeks))
        return state  # type: ignore[no-any-return]

    def customer_health(self, customer: str) -> CustomerHealth | None:
        if self._tables is None:
            return self.health.get(customer)
        health = self.health.get(customer, _UNREAD)
        if health is _UNREAD:
            data = self._read(HEALTH_TABLE, customer)
            health = self.health[customer] = (None if data is None
                                              else CustomerHealth.from_json(data))
        return health  # type: ignore[no-any-return]

    def _mark(self, customer: str, partition: int, table: str) -> None:
        if self._tables is None:
            return
        entry = self._changed.get(customer)
        if entry is None:
            self._changed[customer] = (partition, {table})
        else:
            entry[1].add(table)

    def set_feature(self, family: Family, customer: str, state: FeatureState,
                    partition: int) -> None:
        self.features[family.table][customer] = state
        self._mark(customer, partition, family.table)

    def set_health(self, customer: str, health: CustomerHealth, partition: int) -> None:
        self.health[customer] = health
        self._mark(customer, partition, HEALTH_TABLE)

    def erase(self, customer: str, partition: int) -> None:
        """Forget everything about a customer (its table entries are deleted on write)."""
        for table, states in self.features.items():
            states[customer] = None
            self._mark(customer, partition, table)
        self.health[customer] = None
        self._mark(customer, partition, HEALTH_TABLE)

    def changed(self) -> dict[int, list[str]]:
        """The customers changed since the last :meth:`write`, by partition."""
        out: dict[int, list[str]] = {}
        for customer, (partition, _) in self._changed.items():
            out.setdefault(partition, []).append(customer)
        return out

    def write(self, customers: Iterable[str]) -> None:
        """Write these changed customers to the tables (a worker calls it in the stream
        context of their partition): each table entry once, or its deletion."""
        if self._tables is None:
            return
        for customer in customers:
            _, tables = self._changed.pop(customer)
            key = customer.encode()
            for table in tables:
                state: Any = (self.health[customer] if table == HEALTH_TABLE
                              else self.features[table][customer])
                if state is None:
                    self._tables[table].pop(key, None)
                else:
                    self._tables[table][key] = dumps(state.to_json())

    def trim(self) -> None:
        """Keep at most ``keep`` customers in memory (the oldest read go first)."""
        if self._keep is None or len(self.health) <= self._keep:
            return
        drop = [c for c in self.health if c not in self._changed][: len(self.health) - self._keep]
        for customer in drop:
            del self.health[customer]
            for states in self.features.values():
                states.pop(customer, None)

    def clear(self) -> None:
        """Forget every state held in memory (after a rebalance); unwritten changes too."""
        for states in self.features.values():
            states.clear()
        self.health.clear()
        self._changed.clear()


@dataclass(frozen=True, slots=True, init=False)
class StepResult:
    changed: bool  # False for a duplicate event id
    outputs: list[Output]
    due_ms: int | None  # when to check this customer's silence next, None for never

    def __init__(self, changed: bool, outputs: list[Output], due_ms: int | None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        object.__setattr__(self, "changed", changed)
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "due_ms", due_ms)


UNCHANGED: Final = StepResult(False, [], None)


def step_event(states: CustomerStates, family: Family, event: FamilyEvent,
               scoring: ScoringConfig, partition: int = 0) -> StepResult:
    """Apply one accepted event to its customer's feature state, then score the customer
    with the family's new signals: the whole pipeline for one input record."""
    customer = event.customer_id
    settings = states.settings
    state, result = apply_event(family, states.feature(family, customer), event, settings)
    if not result.changed:
        return UNCHANGED
    states.set_feature(family, customer, state, partition)
    if not result.signals:
        return StepResult(True, [], None)
    # score_update(signal_update(...)) without the update's dict: the signals are finite
    health, outputs = _merge(states.customer_health(customer), customer,
                             to_ms(event.occurred_at), family.name, result.signals,
                             result.profile, event.event_id, scoring, settings.score_step,
                             partition)
    assert health is not None  # an event always leaves a health behind
    states.set_health(customer, health, partition)
    return StepResult(True, outputs, health.due_ms)


def step_silence(states: CustomerStates, customer: str, now: datetime,
                 scoring: ScoringConfig, partition: int = 0) -> StepResult:
    """Run a customer's silence checks due by ``now``."""
    health, outputs = score_update(states.customer_health(customer),
                                   tick_update(customer, now), scoring, states.settings,
                                   partition)
    if health is None:
        return UNCHANGED
    states.set_health(customer, health, partition)
    return StepResult(True, outputs, health.due_ms)
