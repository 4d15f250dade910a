"""Intake of one input record: decode, validate, check event time. No Faust, no I/O.

Returns the typed event, or a :class:`Rejection` that becomes a dead-letter record.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Any

from streams.codec import Codec, DecodeError
from streams.domain.clock import Clock
from streams.domain.events import (
    ErasureRequest,
    Event,
    InvalidEvent,
    Rejection,
    check_event_time,
    parse_event,
)


def _field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) else None


def intake(
    raw: bytes | None, expected: str, *, codec: Codec, clock: Clock, max_future: timedelta,
    wall_now: datetime, stream: Hashable = None,
) -> Event | Rejection:
    """Turn raw bytes from an input topic into an accepted event or a rejection."""
    if not raw:
        return Rejection("malformed", "empty record value")
    try:
        type_name, record = codec.decode(raw, expected)
    except DecodeError as exc:
        return Rejection(exc.reason, str(exc))
    try:
        event = parse_event(type_name, record)
        erasure = isinstance(event, ErasureRequest)  # never too late, but not in the future
        check_event_time(event.occurred_at, now=wall_now,
                         lower_bound=None if erasure else clock.lower_bound(wall_now, stream),
                         max_future=max_future)
    except InvalidEvent as exc:
        return Rejection(exc.reason, str(exc), _field(record, "event_id"),
                         _field(record, "customer_id"))
    if not erasure:
        clock.observe(event.occurred_at, stream)
    return event


def dead_letter_record(
    rejection: Rejection, *, topic: str, partition: int, offset: int, key: bytes | None,
    payload: bytes | None, step: str, failed_at: datetime,
) -> dict[str, Any]:
    """The DeadLetter record for a rejected input record."""
    return {
        "event_id": rejection.event_id,
        "customer_id": rejection.customer_id,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": key,
        "payload": payload or b"",
        "reason": rejection.reason,
        "error": rejection.error,
        "step": step,
        "failed_at": failed_at,
    }
