"""The billing family: payments and subscription changes, the strongest signals of
subscription churn. Failed payments that are never recovered end many subscriptions
without the customer ever deciding to leave (involuntary churn); a cancellation or a
downgrade says it outright; a renewal coming up is when a customer who uses the product
less decides.

Events: ``payment_failed``, ``payment_recovered``, ``subscription_renewed``,
``subscription_downgraded``, ``subscription_cancelled``, each optionally with the next
renewal date as known at that event. Signals (``billing.``):

- ``failed_open``: payment failures since the latest renewal, less the recoveries;
- ``failed_90d``: payment failures in the 90 days up to the latest billing event;
- ``cancelled``: 1 while the latest subscription change is a cancellation, else 0;
  (the failures and recoveries kept are the latest few, so the signals are the same
  whatever order the events arrive in)
- ``downgraded_180d``: 1 when the latest downgrade lies within 180 days of the latest
  billing event, else 0;
- ``renewal_in_d``: days from the latest billing event to the next renewal date, when
  one is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.events import (
    MAX_AMOUNT_MINOR,
    bad_field,
    common_fields,
    int_field,
    text_field,
    time_field,
)
from streams.domain.recent_ids import RecentIds
from streams.families.base import Family

KINDS = ("payment_failed", "payment_recovered", "subscription_renewed",
         "subscription_downgraded", "subscription_cancelled")
#: failure times kept (the 90-day count needs no more on any real billing cycle)
MAX_FAILURES = 12
WINDOW_D = 90
DOWNGRADE_WINDOW_D = 180


@dataclass(frozen=True, slots=True)
class BillingEvent:
    event_id: str
    customer_id: str
    occurred_at: datetime
    kind: str
    amount_minor: int | None = None
    currency: str | None = None
    renewal_at: datetime | None = None
    family: str = field(default="billing", init=False)


def parse(record: Mapping[str, Any]) -> BillingEvent:
    event_id, customer_id, occurred_at = common_fields(record)
    kind = record.get("kind")
    if kind not in KINDS:
        raise bad_field("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    renewal_at = time_field(record, "renewal_at") if record.get("renewal_at") else None
    if renewal_at is not None and renewal_at - occurred_at > timedelta(days=800):
        raise bad_field("renewal_at", f"{renewal_at.isoformat()} is more than two years "
                                      "after the event")
    currency = text_field(record, "currency", optional=True)
    if currency is not None and (len(currency) != 3 or not currency.isalpha()):
        raise bad_field("currency", f"{currency!r} is not an ISO 4217 code")
    return BillingEvent(
        event_id, customer_id, occurred_at, kind,
        amount_minor=int_field(record, "amount_minor", 0, MAX_AMOUNT_MINOR, optional=True),
        currency=currency.upper() if currency else None, renewal_at=renewal_at)


def _keep(times: list[int], at: int) -> None:
    """Add ``at`` to a sorted list of recent times, keeping the newest MAX_FAILURES."""
    times.append(at)
    times.sort()
    del times[: max(0, len(times) - MAX_FAILURES)]


#: which subscription change wins when two share a timestamp (the later in this order)
STATUS_ORDER = {"subscription_renewed": 0, "subscription_downgraded": 1,
                "subscription_cancelled": 2}


@dataclass(slots=True)
class BillingState:
    """One customer's billing: recent failures and recoveries, subscription status. Its
    signals do not depend on the order its events arrive in."""

    ids: RecentIds
    failures: list[int] = field(default_factory=list)  # ms of recent failures, sorted
    recoveries: list[int] = field(default_factory=list)  # ms of recent recoveries, sorted
    last_ms: int | None = None
    status: tuple[int, int] | None = None  # (ms, STATUS_ORDER) of the latest change
    renewed_ms: int | None = None  # the latest renewal: failures before it are settled
    downgraded_ms: int | None = None
    renewal: tuple[int, int] | None = None  # (ms of the event, next renewal ms)

    def apply(self, event: BillingEvent) -> bool:
        if self.ids.seen(event.event_id, event.occurred_at):
            return False
        at = to_ms(event.occurred_at)
        self.last_ms = at if self.last_ms is None else max(self.last_ms, at)
        kind = event.kind
        if kind == "payment_failed":
            _keep(self.failures, at)
        elif kind == "payment_recovered":
            _keep(self.recoveries, at)
        else:
            change = (at, STATUS_ORDER[kind])
            if self.status is None or change > self.status:
                self.status = change
            if kind == "subscription_renewed":
                self.renewed_ms = max(at, self.renewed_ms or at)
            elif kind == "subscription_downgraded":
                self.downgraded_ms = max(at, self.downgraded_ms or at)
        if event.renewal_at is not None:
            given = (at, to_ms(event.renewal_at))
            if self.renewal is None or given > self.renewal:
                self.renewal = given
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None:
            return {}
        settled = self.renewed_ms if self.renewed_ms is not None else -1
        failed = sum(1 for t in self.failures if t > settled)
        recovered = sum(1 for t in self.recoveries if t > settled)
        since = self.last_ms - WINDOW_D * DAY_MS
        recent_downgrade = (self.downgraded_ms is not None and self.last_ms
                            - self.downgraded_ms <= DOWNGRADE_WINDOW_D * DAY_MS)
        cancelled = self.status is not None and self.status[1] == STATUS_ORDER[
            "subscription_cancelled"]
        out = {"billing.failed_open": float(max(0, failed - recovered)),
               "billing.failed_90d": float(sum(1 for t in self.failures if t > since)),
               "billing.cancelled": 1.0 if cancelled else 0.0,
               "billing.downgraded_180d": 1.0 if recent_downgrade else 0.0}
        if self.renewal is not None:
            out["billing.renewal_in_d"] = max(0.0, (self.renewal[1] - self.last_ms) / DAY_MS)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.to_json(), "f": self.failures, "v": self.recoveries,
                "l": self.last_ms, "s": self.status, "n": self.renewed_ms,
                "d": self.downgraded_ms, "r": self.renewal}

    @classmethod
    def from_json(cls, data: dict[str, Any], window_ms: int) -> BillingState:
        status, renewal = data["s"], data["r"]
        return cls(RecentIds.from_json(window_ms, data["i"]), [int(t) for t in data["f"]],
                   [int(t) for t in data["v"]], data["l"],
                   (int(status[0]), int(status[1])) if status else None, data["n"],
                   data["d"], (int(renewal[0]), int(renewal[1])) if renewal else None)


def sample(n: int, customer: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{customer}-billing-{n}", "customer_id": customer,
            "occurred_at": at, "kind": KINDS[n % len(KINDS)], "amount_minor": 4900,
            "currency": "EUR", "renewal_at": at + timedelta(days=30)}


FAMILY: Family = Family(
    "billing", "billing", "BillingEvent", parse,
    new_state=lambda window, weeks: BillingState(RecentIds(window)),
    load_state=lambda data, window, weeks: BillingState.from_json(data, window),
    sample=sample)
