"""Per-customer feature state, one kind per event family, and the signals it yields.

A feature state is updated by ``apply(event)``, which returns False for a duplicate
(an event id seen recently) and True otherwise; ``signals()`` then gives the numeric
signals the scorer knows by name (see docs/scoring.md). States serialise to compact
JSON so a customer's whole state stays small.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from streams.domain.buckets import DAY_MS, DailyBuckets, day_of, to_ms
from streams.domain.events import Consent, Engagement, ProfileChange, Purchase, SupportEvent

#: How many distinct purchase days are kept to learn a customer's rhythm.
RHYTHM_DAYS = 16
#: How many open or recently resolved ticket ids are remembered.
TICKET_MEMORY = 20
NEGATIVE_SENTIMENT = -0.3


@dataclass(slots=True)
class RecentIds:
    """Bounded memory of recent event ids, for de-duplication."""

    capacity: int
    ids: list[str] = field(default_factory=list)

    def seen(self, event_id: str) -> bool:
        """True if the id was seen; otherwise remember it and return False."""
        if event_id in self.ids:
            return True
        self.ids.append(event_id)
        if len(self.ids) > self.capacity:
            del self.ids[: len(self.ids) - self.capacity]
        return False


def _trend(recent: float, prior: float) -> float | None:
    """Recent over prior activity, capped at 4; None when there is nothing to compare."""
    if prior <= 0:
        return None if recent <= 0 else 2.0
    return min(recent / prior, 4.0)


def _gap_stats(days: list[int]) -> tuple[float, float] | None:
    gaps = [b - a for a, b in zip(days, days[1:], strict=False)]
    if len(gaps) < 2:
        return None
    return statistics.fmean(gaps), statistics.pstdev(gaps)


@dataclass(slots=True)
class PurchaseState:
    """Purchases of one customer: rhythm, recent volume and spend."""

    ids: RecentIds
    keep_days: int
    buckets: DailyBuckets = field(default_factory=lambda: DailyBuckets(2))
    rhythm: list[int] = field(default_factory=list)  # last distinct purchase days, sorted
    first_day: int | None = None
    last_ms: int | None = None
    orders: int = 0
    spend_minor: int = 0

    def apply(self, event: Purchase) -> bool:
        if self.ids.seen(event.event_id):
            return False
        day = day_of(event.occurred_at)
        self.buckets.add(day, [1.0, float(event.amount_minor)], self.keep_days)
        if day not in self.rhythm:
            self.rhythm.append(day)
            self.rhythm.sort()
            del self.rhythm[: max(0, len(self.rhythm) - RHYTHM_DAYS)]
        self.first_day = day if self.first_day is None else min(self.first_day, day)
        ms = to_ms(event.occurred_at)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
        self.orders += 1
        self.spend_minor += event.amount_minor
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None or self.first_day is None:
            return {}
        out: dict[str, float] = {
            "purchase.last_at_d": self.last_ms / DAY_MS,
            "purchase.orders_total": float(self.orders),
        }
        stats = _gap_stats(self.rhythm)
        if stats is not None:
            out["purchase.gap_mean_d"], out["purchase.gap_std_d"] = stats
        ref = day_of_ms(self.last_ms)
        half = self.keep_days // 2
        if self.first_day <= ref - self.keep_days + 1:
            recent = self.buckets.total(ref - half + 1, ref)
            prior = self.buckets.total(ref - 2 * half + 1, ref - half)
            for name, i in (("purchase.freq_trend", 0), ("purchase.spend_trend", 1)):
                value = _trend(recent[i], prior[i])
                if value is not None:
                    out[name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.ids, "b": self.buckets.to_json(), "r": self.rhythm,
                "f": self.first_day, "l": self.last_ms, "n": self.orders, "s": self.spend_minor}

    @classmethod
    def from_json(cls, data: dict[str, Any], capacity: int, keep_days: int) -> PurchaseState:
        return cls(RecentIds(capacity, list(data["i"])), keep_days,
                   DailyBuckets.from_json(2, data["b"]), list(data["r"]), data["f"],
                   data["l"], int(data["n"]), int(data["s"]))


def day_of_ms(ms: int) -> int:
    return ms // DAY_MS


@dataclass(slots=True)
class EngagementState:
    """Product, web, email and community activity: recency, trend, weekly habit."""

    ids: RecentIds
    keep_days: int
    buckets: DailyBuckets = field(default_factory=lambda: DailyBuckets(2))
    first_day: int | None = None
    last_ms: int | None = None

    def apply(self, event: Engagement) -> bool:
        if self.ids.seen(event.event_id):
            return False
        day = day_of(event.occurred_at)
        minutes = (event.duration_s or 0) / 60.0
        self.buckets.add(day, [float(event.count), round(minutes, 2)], self.keep_days)
        self.first_day = day if self.first_day is None else min(self.first_day, day)
        ms = to_ms(event.occurred_at)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None or self.first_day is None:
            return {}
        ref = day_of_ms(self.last_ms)
        out: dict[str, float] = {"engagement.last_at_d": self.last_ms / DAY_MS}
        active = self.buckets.active_days(ref - self.keep_days + 1, ref)
        if len(active) >= 3:
            out["engagement.gap_mean_d"] = statistics.fmean(
                b - a for a, b in zip(active, active[1:], strict=False))
        if self.first_day <= ref - 27:
            weeks = sum(
                1 for w in range(4) if self.buckets.active_days(ref - 7 * w - 6, ref - 7 * w))
            out["engagement.weeks_active_4"] = float(weeks)
        if self.first_day <= ref - self.keep_days + 1:
            recent = self.buckets.total(ref - 13, ref)[0]
            baseline = self.buckets.total(ref - self.keep_days + 1, ref - 14)[0]
            per_fortnight = baseline * 14 / (self.keep_days - 14)
            value = _trend(recent, per_fortnight)
            if value is not None:
                out["engagement.trend"] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.ids, "b": self.buckets.to_json(), "f": self.first_day,
                "l": self.last_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any], capacity: int, keep_days: int) -> EngagementState:
        return cls(RecentIds(capacity, list(data["i"])), keep_days,
                   DailyBuckets.from_json(2, data["b"]), data["f"], data["l"])


@dataclass(slots=True)
class SupportState:
    """Tickets, sentiment, CSAT and NPS of one customer."""

    ids: RecentIds
    keep_days: int
    # counters per day: tickets opened, sentiment sum, sentiment answers, negative answers
    buckets: DailyBuckets = field(default_factory=lambda: DailyBuckets(4))
    open_tickets: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    csat: tuple[int, int] | None = None  # (event ms, value): the latest answer wins
    nps: tuple[int, int] | None = None
    last_ms: int | None = None

    def apply(self, event: SupportEvent) -> bool:
        if self.ids.seen(event.event_id):
            return False
        day = day_of(event.occurred_at)
        ms = to_ms(event.occurred_at)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
        opened = 1.0 if event.kind == "ticket_opened" else 0.0
        sentiment = event.sentiment
        self.buckets.add(day, [
            opened,
            sentiment if sentiment is not None else 0.0,
            1.0 if sentiment is not None else 0.0,
            1.0 if sentiment is not None and sentiment <= NEGATIVE_SENTIMENT else 0.0,
        ], self.keep_days)
        ticket = event.ticket_id
        if ticket and event.kind == "ticket_opened" and ticket not in self.resolved:
            if ticket not in self.open_tickets:
                self.open_tickets.append(ticket)
                del self.open_tickets[: max(0, len(self.open_tickets) - TICKET_MEMORY)]
        elif ticket and event.kind == "ticket_resolved":
            if ticket in self.open_tickets:
                self.open_tickets.remove(ticket)
            if ticket not in self.resolved:
                self.resolved.append(ticket)
                del self.resolved[: max(0, len(self.resolved) - TICKET_MEMORY)]
        if event.csat is not None and (self.csat is None or ms >= self.csat[0]):
            self.csat = (ms, event.csat)
        if event.nps is not None and (self.nps is None or ms >= self.nps[0]):
            self.nps = (ms, event.nps)
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None:
            return {}
        ref = day_of_ms(self.last_ms)
        opened, s_sum, s_n, negative = self.buckets.total(ref - 27, ref)
        out: dict[str, float] = {
            "support.open_tickets": float(len(self.open_tickets)),
            "support.tickets_28d": opened,
        }
        if s_n:
            out["support.sentiment_28d"] = s_sum / s_n
            out["support.negative_28d"] = negative
        if self.csat is not None:
            out["support.csat"] = float(self.csat[1])
        if self.nps is not None:
            out["support.nps"] = float(self.nps[1])
        return out

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.ids, "b": self.buckets.to_json(), "o": self.open_tickets,
                "r": self.resolved, "c": list(self.csat) if self.csat else None,
                "p": list(self.nps) if self.nps else None, "l": self.last_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any], capacity: int, keep_days: int) -> SupportState:
        return cls(RecentIds(capacity, list(data["i"])), keep_days,
                   DailyBuckets.from_json(4, data["b"]), list(data["o"]), list(data["r"]),
                   tuple(data["c"]) if data["c"] else None,  # type: ignore[arg-type]
                   tuple(data["p"]) if data["p"] else None,  # type: ignore[arg-type]
                   data["l"])


@dataclass(slots=True)
class ProfileState:
    """The latest profile of a customer (by event time: a late older change never wins)."""

    ids: RecentIds
    at_ms: int | None = None
    segment: str = "unknown"
    signup_ms: int | None = None
    plan: str | None = None
    mrr_minor: int | None = None
    cost_to_serve_minor: int | None = None
    products: int = 1
    referrals: int = 0
    consent: Consent = Consent()

    def apply(self, event: ProfileChange) -> bool:
        if self.ids.seen(event.event_id):
            return False
        ms = to_ms(event.occurred_at)
        if self.at_ms is not None and ms < self.at_ms:
            return True  # an older change: counted as seen, but the newer profile stands
        self.at_ms = ms
        self.segment = event.segment
        self.signup_ms = to_ms(event.signup_at)
        self.plan = event.plan
        self.mrr_minor = event.mrr_minor
        self.cost_to_serve_minor = event.cost_to_serve_minor
        self.products = event.products
        self.referrals = event.referrals
        self.consent = event.consent
        return True

    def signals(self) -> dict[str, float]:
        if self.at_ms is None or self.signup_ms is None:
            return {}
        return {
            "profile.products": float(self.products),
            "profile.signup_d": self.signup_ms / DAY_MS,
            "profile.referrals": float(self.referrals),
        }

    def profitability(self) -> float | None:
        """(MRR - cost to serve) / MRR, or None when MRR is unknown or zero."""
        if not self.mrr_minor or self.cost_to_serve_minor is None:
            return None
        return (self.mrr_minor - self.cost_to_serve_minor) / self.mrr_minor

    def to_json(self) -> dict[str, Any]:
        c = self.consent
        return {"i": self.ids.ids, "t": self.at_ms, "s": self.segment, "u": self.signup_ms,
                "p": self.plan, "m": self.mrr_minor, "c": self.cost_to_serve_minor,
                "n": self.products, "r": self.referrals,
                "k": [int(c.email), int(c.sms), int(c.phone), int(c.push)]}

    @classmethod
    def from_json(cls, data: dict[str, Any], capacity: int) -> ProfileState:
        k = data["k"]
        return cls(RecentIds(capacity, list(data["i"])), data["t"], data["s"], data["u"],
                   data["p"], data["m"], data["c"], int(data["n"]), int(data["r"]),
                   Consent(bool(k[0]), bool(k[1]), bool(k[2]), bool(k[3])))


def dumps(data: dict[str, Any]) -> bytes:
    """Compact JSON for table values."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def loads(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("state is not a JSON object")
    return value


def finite(values: dict[str, float]) -> dict[str, float]:
    """Drop any non-finite value (never produced by these states; a guard for plug-ins)."""
    return {k: v for k, v in values.items() if math.isfinite(v)}
