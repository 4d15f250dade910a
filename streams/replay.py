"""In-process replay: the workers' per-record steps run over a sequence of records with
the customers' state kept as objects in memory and the event-time clock. No broker
needed; used by the backtest and to prove parity with the Kafka workers.

A worker keeps each state serialised in a table with a changelog; here the same state
objects stay in dicts (``tables`` serialises them on demand, for inspection), so a replay
spends its time on the domain code, not on encoding state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.domain.buckets import to_ms
from streams.domain.clock import EventTimeClock
from streams.domain.due import DueIndex
from streams.domain.events import (
    ErasureRequest,
    InvalidEvent,
    Rejection,
    check_event_time,
    parse_event,
)
from streams.domain.features import dumps
from streams.domain.health import CustomerHealth, Output
from streams.domain.scoring import ScoringConfig, load_config
from streams.pipeline import (
    FAMILIES,
    HEALTH_TABLE,
    FeatureState,
    apply_event,
    score_update,
    signal_update,
    tick_update,
)
from streams.settings import Settings


class LocalPipeline:
    """Feature steps and the scorer, chained in process, one record at a time."""

    def __init__(self, settings: Settings, scoring: ScoringConfig | None = None) -> None:
        self.settings = settings
        self.scoring = scoring if scoring is not None else load_config(settings.scoring_config)
        self.lateness = timedelta(seconds=settings.allowed_lateness_s)
        self.max_future = timedelta(seconds=settings.max_future_s)
        self.clock = EventTimeClock(self.lateness)
        self.features: dict[str, dict[str, FeatureState]] = {
            f.table: {} for f in FAMILIES.values()}
        self.health: dict[str, CustomerHealth] = {}
        self.rejections: list[Rejection] = []
        self.due = DueIndex()
        self._wall_now = datetime.now(UTC)

    def latest_plausible(self) -> datetime:
        """The latest event time the time checks accept (later ones are in the future)."""
        return self._wall_now + self.max_future

    @property
    def tables(self) -> dict[str, dict[bytes, bytes]]:
        """Every state table as a worker would hold it (customer id bytes -> JSON bytes)."""
        out = {name: {c.encode(): dumps(s.to_json()) for c, s in states.items()}
               for name, states in self.features.items()}
        out[HEALTH_TABLE] = {c.encode(): dumps(h.to_json()) for c, h in self.health.items()}
        return out

    def process(self, type_name: str, record: Mapping[str, Any]) -> list[Output]:
        """Run one decoded input record through the pipeline; return its outputs."""
        try:
            event = parse_event(type_name, record)
            erasure = isinstance(event, ErasureRequest)  # never too late, not in the future
            check_event_time(event.occurred_at, now=self._wall_now,
                             lower_bound=None if erasure else self.clock.lower_bound(
                                 self._wall_now),
                             max_future=self.max_future)
        except InvalidEvent as exc:
            self.rejections.append(Rejection(exc.reason, str(exc),
                                             record.get("event_id"), record.get("customer_id")))
            return []
        customer = event.customer_id
        if isinstance(event, ErasureRequest):
            for states in self.features.values():
                states.pop(customer, None)
            self.health.pop(customer, None)
            self.due.forget(customer)
            return []
        self.clock.observe(event.occurred_at)
        family = FAMILIES[type_name]
        states = self.features[family.table]
        state, result = apply_event(family, states.get(customer), event, self.settings)
        states[customer] = state
        if not result.changed or not result.signals:
            return []
        return self._score(signal_update(event, family.family, result.signals,
                                         result.profile))

    def _score(self, update: dict[str, Any]) -> list[Output]:
        customer = update["customer_id"]
        health, outputs = score_update(self.health.get(customer), update, self.scoring,
                                       self.settings)
        if health is not None:
            self.health[customer] = health
            if health.due_ms is not None:
                self.due.schedule(customer, health.due_ms, 0)
        return outputs

    def tick(self, now: datetime | None = None) -> list[Output]:
        """Run the silence checks due by ``now`` (default: the event-time watermark)."""
        now = now if now is not None else self.clock.now()
        if now is None:
            return []
        outputs: list[Output] = []
        for customer_id, _ in self.due.pop_due(to_ms(now), limit=len(self.due)):
            outputs.extend(self._score(tick_update(customer_id, now)))
        return outputs

    def run(self, records: Iterable[tuple[str, Mapping[str, Any]]], *,
            ticks: bool = False) -> list[Output]:
        """Process records in order; with ``ticks``, run due silence checks after each."""
        outputs: list[Output] = []
        for type_name, record in records:
            outputs.extend(self.process(type_name, record))
            if ticks:
                outputs.extend(self.tick())
        return outputs
