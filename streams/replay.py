"""In-process replay: the workers' per-record steps run over a sequence of records with
plain dicts as tables and the event-time clock. No broker needed; used by the backtest
and to prove parity with the Kafka workers.
"""

from __future__ import annotations

from collections import defaultdict
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
from streams.domain.health import Output
from streams.domain.scoring import ScoringConfig, load_config
from streams.pipeline import (
    FAMILIES,
    HEALTH_TABLE,
    PROFILE_TABLE,
    feature_step,
    score_step,
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
        self.tables: defaultdict[str, dict[bytes, bytes]] = defaultdict(dict)
        self.rejections: list[Rejection] = []
        self.due = DueIndex()

    def process(self, type_name: str, record: Mapping[str, Any]) -> list[Output]:
        """Run one decoded input record through the pipeline; return its outputs."""
        try:
            event = parse_event(type_name, record)
            erasure = isinstance(event, ErasureRequest)  # never too late, not in the future
            wall_now = datetime.now(UTC)
            check_event_time(event.occurred_at, now=wall_now,
                             lower_bound=None if erasure else self.clock.lower_bound(wall_now),
                             max_future=self.max_future)
        except InvalidEvent as exc:
            self.rejections.append(Rejection(exc.reason, str(exc),
                                             record.get("event_id"), record.get("customer_id")))
            return []
        if isinstance(event, ErasureRequest):
            for table in self.tables.values():
                table.pop(event.customer_id.encode(), None)
            self.due.forget(event.customer_id)
            return []
        self.clock.observe(event.occurred_at)
        family = FAMILIES[type_name]
        result = feature_step(family, self.tables[family.table], event, self.settings)
        if not result.changed or not result.signals:
            return []
        return self._score(signal_update(event, family.family, result.signals))

    def _score(self, update: dict[str, Any]) -> list[Output]:
        result = score_step(self.tables[HEALTH_TABLE], self.tables[PROFILE_TABLE], update,
                            self.scoring, self.settings)
        if result.due_ms is not None:
            self.due.schedule(update["customer_id"], result.due_ms, 0)
        return result.outputs

    def tick(self, now: datetime | None = None) -> list[Output]:
        """Run the silence checks due at ``now`` (default: the event-time watermark)."""
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
