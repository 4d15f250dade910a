"""Intake of one input record: decode, validate, check event time. No Faust, no I/O.
The caller tells the clock about an accepted event (``Clock.observe``).

Returns the typed event, or a :class:`Rejection` that becomes a dead-letter record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Any

from streams.codec import Codec, DecodeError
from streams.domain.clock import Clock
from streams.domain.events import (
    ErasureRequest,
    InvalidEvent,
    Rejection,
    check_event_time,
)
from streams.families import FamilyEvent, parse_event

#: Reason of an input record larger than :data:`MAX_RECORD_BYTES`.
TOO_LARGE = "too_large"
#: An input value larger than this is dead-lettered as ``too_large`` without being
#: decoded: no churnwatch event comes near it (its ids are at most 200 characters), and
#: one could not be re-sent under its customer's key within a producer's message limit.
MAX_RECORD_BYTES = 64 * 1024
#: A dead letter keeps at most :data:`MAX_RECORD_BYTES` of the original value (so every
#: record the intake would decode is kept whole), this many bytes of its key and this
#: many characters of each text: it stays far under any producer's message limit (1 MB
#: by default) whatever the size of the record it reports.
DEAD_LETTER_KEY_BYTES = 1024
DEAD_LETTER_TEXT = 1024


def _field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) else None


def intake(
    raw: bytes | None, expected: str, *, codec: Codec, clock: Clock, max_future: timedelta,
    wall_now: datetime, stream: Hashable = None, read_before: bool = False,
) -> FamilyEvent | Rejection:
    """Turn raw bytes from an input topic into an accepted event or a rejection.
    ``read_before``: the record was taken before a restart (it is read again from the
    committed offset); it was judged then, so it is never too late now."""
    if not raw:
        return Rejection("malformed", "empty record value")
    if len(raw) > MAX_RECORD_BYTES:
        return Rejection(TOO_LARGE, f"{len(raw)} bytes is more than the {MAX_RECORD_BYTES} "
                                    "an input record may have")
    try:
        type_name, record = codec.decode(raw, expected)
    except DecodeError as exc:
        return Rejection(exc.reason, str(exc))
    try:
        event = parse_event(type_name, record)
        erasure = isinstance(event, ErasureRequest)  # never too late, but not in the future
        unbound = erasure or read_before
        check_event_time(event.occurred_at, now=wall_now,
                         lower_bound=None if unbound else clock.lower_bound(wall_now, stream),
                         max_future=max_future)
    except InvalidEvent as exc:
        return Rejection(exc.reason, str(exc), _field(record, "event_id"),
                         _field(record, "customer_id"))
    return event


def clip(text: str | None, limit: int = DEAD_LETTER_TEXT) -> str | None:
    """``text`` cut to at most ``limit`` characters (the cut marked with an ellipsis)."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


def dead_letter_record(
    rejection: Rejection, *, topic: str, partition: int, offset: int, key: bytes | None,
    payload: bytes | None, step: str, failed_at: datetime,
) -> dict[str, Any]:
    """The DeadLetter record for a rejected input record, bounded in size: the payload is
    the original value cut to :data:`MAX_RECORD_BYTES`, with the original's length and
    SHA-256 to tell a cut copy and to find the original (at its source offset)."""
    value = payload or b""
    return {
        "event_id": clip(rejection.event_id),
        "customer_id": clip(rejection.customer_id),
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "key": None if key is None else key[:DEAD_LETTER_KEY_BYTES],
        "payload": value[:MAX_RECORD_BYTES],
        "reason": rejection.reason,
        "error": clip(rejection.error),
        "step": step,
        "failed_at": failed_at,
        "payload_size": len(value),
        "payload_sha256": hashlib.sha256(value).hexdigest(),
    }
