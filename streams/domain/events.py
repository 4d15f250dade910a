"""Input events as typed values, and the checks every event passes before it counts.

Records arrive as dicts decoded from Avro (see ``streams.codec``); ``parse_event`` turns
one into a frozen dataclass or raises :class:`InvalidEvent` with a stable reason code that
ends up in the dead-letter record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

#: Reason codes of records that are decoded but not acceptable.
INVALID_FIELD: Final = "invalid_field"
TOO_LATE: Final = "too_late"
IN_FUTURE: Final = "in_future"
#: An event far ahead of every input, refuted by the next record of its partition (see
#: streams.domain.clock): it would have moved the event clock past everything else.
CLOCK_OUTLIER: Final = "clock_outlier"

MAX_ID_LENGTH: Final = 200
MAX_AMOUNT_MINOR: Final = 10**12  # ten billion in major units: beyond any single order
MAX_COUNT: Final = 1_000_000
MAX_DURATION_S: Final = 7 * 86400
# Older times are broken clocks (the Unix epoch, year 1), not history: a shop's export
# from the 1990s still replays.
EARLIEST: Final = datetime(1980, 1, 1, tzinfo=UTC)


class InvalidEvent(ValueError):
    """A record that decoded but cannot be used; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str, *, field_name: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field_name = field_name


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was not used: becomes a dead-letter record."""

    reason: str
    error: str
    event_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True, init=False)
class Consent:
    """Channels on which the customer agreed to be contacted."""

    email: bool = False
    sms: bool = False
    phone: bool = False
    push: bool = False

    def __init__(self, email: bool = False, sms: bool = False, phone: bool = False,
                 push: bool = False) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "sms", sms)
        object.__setattr__(self, "phone", phone)
        object.__setattr__(self, "push", push)

    def channels(self) -> list[str]:
        return [name for name in ("email", "sms", "phone", "push") if getattr(self, name)]


#: No consent on any channel (the default of a profile).
NO_CONSENT: Final = Consent()


# The events' __init__ are written out: compiled (mypyc), a dataclass's own __init__ runs
# as Python, and every record makes one.
@dataclass(frozen=True, slots=True, init=False)
class Purchase:
    event_id: str
    customer_id: str
    occurred_at: datetime
    order_id: str
    amount_minor: int
    currency: str
    items: int = 1
    channel: str = "other"
    family: str = field(default="purchase", init=False)

    def __init__(self, event_id: str, customer_id: str, occurred_at: datetime, order_id: str,
                 amount_minor: int, currency: str, items: int = 1, channel: str = "other") -> None:
        object.__setattr__(self, "event_id", event_id)
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "occurred_at", occurred_at)
        object.__setattr__(self, "order_id", order_id)
        object.__setattr__(self, "amount_minor", amount_minor)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "family", "purchase")


@dataclass(frozen=True, slots=True, init=False)
class Engagement:
    event_id: str
    customer_id: str
    occurred_at: datetime
    kind: str
    count: int = 1
    duration_s: int | None = None
    feature: str | None = None
    family: str = field(default="engagement", init=False)

    def __init__(self, event_id: str, customer_id: str, occurred_at: datetime, kind: str,
                 count: int = 1, duration_s: int | None = None, feature: str | None = None) -> None:
        object.__setattr__(self, "event_id", event_id)
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "occurred_at", occurred_at)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "duration_s", duration_s)
        object.__setattr__(self, "feature", feature)
        object.__setattr__(self, "family", "engagement")


@dataclass(frozen=True, slots=True, init=False)
class SupportEvent:
    event_id: str
    customer_id: str
    occurred_at: datetime
    kind: str
    ticket_id: str | None = None
    csat: int | None = None
    nps: int | None = None
    sentiment: float | None = None
    category: str | None = None
    family: str = field(default="support", init=False)

    def __init__(self, event_id: str, customer_id: str, occurred_at: datetime, kind: str,
                 ticket_id: str | None = None, csat: int | None = None, nps: int | None = None,
                 sentiment: float | None = None, category: str | None = None) -> None:
        object.__setattr__(self, "event_id", event_id)
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "occurred_at", occurred_at)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "ticket_id", ticket_id)
        object.__setattr__(self, "csat", csat)
        object.__setattr__(self, "nps", nps)
        object.__setattr__(self, "sentiment", sentiment)
        object.__setattr__(self, "category", category)
        object.__setattr__(self, "family", "support")


@dataclass(frozen=True, slots=True, init=False)
class ProfileChange:
    event_id: str
    customer_id: str
    occurred_at: datetime
    segment: str
    signup_at: datetime
    plan: str | None = None
    mrr_minor: int | None = None
    cost_to_serve_minor: int | None = None
    currency: str | None = None
    products: int = 1
    referrals: int = 0
    consent: Consent = NO_CONSENT
    family: str = field(default="profile", init=False)

    def __init__(self, event_id: str, customer_id: str, occurred_at: datetime, segment: str,
                 signup_at: datetime, plan: str | None = None, mrr_minor: int | None = None,
                 cost_to_serve_minor: int | None = None, currency: str | None = None,
                 products: int = 1, referrals: int = 0, consent: Consent = NO_CONSENT) -> None:
        object.__setattr__(self, "event_id", event_id)
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "occurred_at", occurred_at)
        object.__setattr__(self, "segment", segment)
        object.__setattr__(self, "signup_at", signup_at)
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "mrr_minor", mrr_minor)
        object.__setattr__(self, "cost_to_serve_minor", cost_to_serve_minor)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "products", products)
        object.__setattr__(self, "referrals", referrals)
        object.__setattr__(self, "consent", consent)
        object.__setattr__(self, "family", "profile")


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    event_id: str
    customer_id: str
    occurred_at: datetime
    family: str = field(default="erasure", init=False)


Event = Purchase | Engagement | SupportEvent | ProfileChange | ErasureRequest


def _bad(field_name: str, message: str) -> InvalidEvent:
    return InvalidEvent(INVALID_FIELD, f"{field_name}: {message}", field_name=field_name)


def _text(record: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = record.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, "must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise _bad(name, f"longer than {MAX_ID_LENGTH} characters")
    return value


def _int(record: Mapping[str, Any], name: str, low: int, high: int, *, optional: bool = False,
         default: int | None = None) -> int | None:
    value = record.get(name, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "must be an integer")
    if not low <= value <= high:
        raise _bad(name, f"{value} is outside {low}..{high}")
    return value


def _time(record: Mapping[str, Any], name: str) -> datetime:
    value = record.get(name)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _bad(name, "must be a timezone-aware timestamp")
    value = value.astimezone(UTC)
    if value < EARLIEST:
        raise _bad(name, f"{value.isoformat()} is before {EARLIEST.date().isoformat()}")
    return value


def _common(record: Mapping[str, Any]) -> tuple[str, str, datetime]:
    event_id = _text(record, "event_id")
    customer_id = _text(record, "customer_id")
    assert event_id is not None and customer_id is not None
    return event_id, customer_id, _time(record, "occurred_at")


def bad_field(field_name: str, message: str) -> InvalidEvent:
    """The error of one field out of its contract."""
    return _bad(field_name, message)


text_field = _text
int_field = _int
time_field = _time
common_fields = _common


def finite_in(record: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    """An optional number field within ``low..high``."""
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or not low <= value <= high:
        raise _bad(name, f"{value} is outside {low:g}..{high:g}")
    return float(value)


def parse_erasure(record: Mapping[str, Any]) -> ErasureRequest:
    return ErasureRequest(*_common(record))


def check_event_time(
    occurred_at: datetime,
    *,
    now: datetime,
    lower_bound: datetime | None,
    max_future: timedelta,
) -> None:
    """Reject an event time too far ahead of the wall clock ``now`` or behind ``lower_bound``.

    The lower bound comes from the clock: the wall clock minus the allowed lateness when
    live, the event-time watermark when replaying (None before the first event).
    """
    if occurred_at > now + max_future:
        raise InvalidEvent(
            IN_FUTURE,
            f"occurred_at {occurred_at.isoformat()} is more than {max_future} ahead of "
            f"{now.isoformat()}",
            field_name="occurred_at",
        )
    if lower_bound is not None and occurred_at < lower_bound:
        raise InvalidEvent(
            TOO_LATE,
            f"occurred_at {occurred_at.isoformat()} is behind the watermark "
            f"{lower_bound.isoformat()} (later than the allowed lateness)",
            field_name="occurred_at",
        )
