"""In-process replay: the workers' per-record steps run over a sequence of records with
the customers' state kept as objects in memory and the event-time clock. No broker
needed; used by the backtest and to prove parity with the Kafka workers.

A worker keeps each state serialised in a table with a changelog; here the same state
objects stay in dicts (``tables`` serialises them on demand, for inspection), so a replay
spends its time on the domain code, not on encoding state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from streams.domain.buckets import to_ms
from streams.domain.clock import EventTimeClock
from streams.domain.due import DueIndex
from streams.domain.events import (
    ErasureRequest,
    InvalidEvent,
    Rejection,
    check_event_time,
)
from streams.domain.health import CustomerHealth, Output
from streams.domain.scoring import ScoringConfig, load_config
from streams.domain.stored import dumps
from streams.families import FeatureState, parse_event
from streams.pipeline import (
    FAMILIES,
    HEALTH_TABLE,
    CustomerStates,
    step_event,
    step_silence,
)
from streams.settings import Settings


class LocalPipeline:
    """Feature steps and the scorer, chained in process, one record at a time."""

    def __init__(self, settings: Settings, scoring: ScoringConfig | None = None) -> None:
        self.settings = settings
        self.scoring = scoring if scoring is not None else load_config(settings.scoring_config)
        self.lateness = timedelta(seconds=settings.allowed_lateness_s)
        self.max_future = timedelta(seconds=settings.max_future_s)
        # one stream, read in order: nothing is out of order, and no record is an outlier
        self.clock = EventTimeClock(self.lateness, max_jump=None)
        self.states = CustomerStates(settings)
        # the replay keeps no tables, so it never holds a None state: its dicts are typed so
        self.features = cast(dict[str, dict[str, FeatureState]], self.states.features)
        self.health = cast(dict[str, CustomerHealth], self.states.health)
        self.rejections: list[Rejection] = []
        self.due = DueIndex()
        self._wall_now = datetime.now(UTC)

    def latest_plausible(self) -> datetime:
        """The latest event time the time checks accept (later ones are in the future)."""
        return self._wall_now + self.max_future

    @property
    def tables(self) -> dict[str, dict[bytes, bytes]]:
        """Every state table as a worker would hold it (customer id bytes -> JSON bytes)."""
        out = {name: {c.encode(): dumps(s.to_json()) for c, s in states.items()
                      if s is not None}
               for name, states in self.features.items()}
        out[HEALTH_TABLE] = {c.encode(): dumps(h.to_json()) for c, h in self.health.items()
                             if h is not None}
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
        result = step_event(self.states, FAMILIES[type_name], event, self.scoring)
        if result.due_ms is not None:
            self.due.schedule(customer, result.due_ms, 0)
        return result.outputs

    def tick(self, now: datetime | None = None) -> list[Output]:
        """Run the silence checks due by ``now`` (default: the event-time watermark)."""
        return [output for outputs in self.ticks(now) for output in outputs]

    def ticks(self, now: datetime | None = None) -> Iterator[list[Output]]:
        """:meth:`tick`, one customer's outputs at a time (a tick at the end of a long
        history checks most customers: its outputs need not all be held at once)."""
        now = now if now is not None else self.clock.now()
        if now is None:
            return
        for customer_id, _ in self.due.pop_due(to_ms(now), limit=len(self.due)):
            result = step_silence(self.states, customer_id, now, self.scoring)
            if result.due_ms is not None:
                self.due.schedule(customer_id, result.due_ms, 0)
            if result.outputs:
                yield result.outputs

    def run(self, records: Iterable[tuple[str, Mapping[str, Any]]], *,
            ticks: bool = False) -> list[Output]:
        """Process records in order; with ``ticks``, run due silence checks after each."""
        outputs: list[Output] = []
        for type_name, record in records:
            outputs.extend(self.process(type_name, record))
            if ticks:
                outputs.extend(self.tick())
        return outputs
