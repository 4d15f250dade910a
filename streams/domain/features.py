"""Per-customer feature state, one kind per event family, and the signals it yields.

A feature state is updated by ``apply(event)``, which returns False for a duplicate
(an event id seen recently) and True otherwise; ``signals()`` then gives the numeric
signals the scorer knows by name (see docs/scoring.md). States serialise to compact
JSON, which :mod:`streams.domain.stored` packs into a table value.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Final

from streams.domain.buckets import DAY_MS, WeekBuckets, day_of, to_ms
from streams.domain.events import (
    NO_CONSENT,
    Consent,
    Engagement,
    ProfileChange,
    Purchase,
    SupportEvent,
)
from streams.domain.recent_ids import RecentIds, id_hash, pack, unpack
from streams.domain.value import CURRENCY_SIGNAL, currency_code

#: How many distinct purchase days are kept to learn a customer's rhythm.
RHYTHM_DAYS: Final = 16
#: How many open or recently resolved ticket ids are remembered.
TICKET_MEMORY: Final = 20
NEGATIVE_SENTIMENT: Final = -0.3


def _remember(items: list[int], value: int, limit: int) -> None:
    if value not in items:
        items.append(value)
        del items[: max(0, len(items) - limit)]


def _trend(recent: float, prior: float) -> float | None:
    """Recent over prior activity, capped at 4; None when there is nothing to compare."""
    if prior <= 0:
        return None if recent <= 0 else 2.0
    return min(recent / prior, 4.0)


def _gap_stats(days: list[int]) -> tuple[float, float] | None:
    """Mean and population standard deviation of the gaps between the days, exactly as
    ``statistics.fmean`` and ``statistics.pstdev`` give them: the gaps are whole days, so
    the variance is a fraction of integer sums, whose square root is rounded correctly
    as pstdev rounds it (pstdev sums fractions instead, a hundred times slower)."""
    n = len(days) - 1
    if n < 2:
        return None
    total = squares = 0
    for i in range(n):
        gap = days[i + 1] - days[i]
        total += gap
        squares += gap * gap
    # population variance: (n * squares - total ** 2) / n ** 2
    return total / n, _sqrt_of_fraction(n * squares - total * total, n * n)


#: Bits of an integer square root enough to round a float square root correctly.
_SQRT_BITS: Final = 2 * sys.float_info.mant_dig + 3


def _sqrt_of_fraction(n: int, m: int) -> float:
    """The square root of n / m (n >= 0, m > 0), correctly rounded: the integer square
    root of the fraction scaled to _SQRT_BITS bits, rounded to odd, then to a float (the
    method of ``statistics``, https://bugs.python.org/msg407078)."""
    q = (n.bit_length() - m.bit_length() - _SQRT_BITS) // 2
    if q >= 0:
        return float(_isqrt_to_odd(n, m << 2 * q) << q)
    return _isqrt_to_odd(n << -2 * q, m) / (1 << -q)


def _isqrt_to_odd(n: int, m: int) -> int:
    """The square root of n / m as an integer, rounded to odd."""
    root = math.isqrt(n // m)
    return root | (root * root * m != n)


def day_of_ms(ms: int) -> int:
    return ms // DAY_MS


def _latest(current: int | None, ms: int) -> int:
    return ms if current is None else max(current, ms)


def _earliest(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


@dataclass(slots=True, init=False)
class PurchaseState:
    """Purchases of one customer: rhythm, recent volume and spend."""

    ids: RecentIds
    keep_weeks: int
    buckets: WeekBuckets = field(default_factory=lambda: WeekBuckets(2))  # orders, spend
    rhythm: list[int] = field(default_factory=list)  # last distinct purchase days, sorted
    first_day: int | None = None
    last_ms: int | None = None
    orders: int = 0
    spend_minor: int = 0
    currency: str = ""  # of the latest purchase

    def __init__(self, ids: RecentIds, keep_weeks: int, buckets: WeekBuckets | None = None,
                 rhythm: list[int] | None = None, first_day: int | None = None,
                 last_ms: int | None = None, orders: int = 0, spend_minor: int = 0,
                 currency: str = "") -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.ids = ids
        self.keep_weeks = keep_weeks
        self.buckets = WeekBuckets(2) if buckets is None else buckets
        self.rhythm = [] if rhythm is None else rhythm
        self.first_day = first_day
        self.last_ms = last_ms
        self.orders = orders
        self.spend_minor = spend_minor
        self.currency = currency

    def apply(self, event: Purchase) -> bool:
        if self.ids.seen(event.event_id, event.occurred_at):
            return False
        day = day_of(event.occurred_at)
        self.buckets.add(day, [1.0, float(event.amount_minor)], self.keep_weeks)
        if day not in self.rhythm:
            self.rhythm.append(day)
            self.rhythm.sort()
            del self.rhythm[: max(0, len(self.rhythm) - RHYTHM_DAYS)]
        self.first_day = _earliest(self.first_day, day)
        self.last_ms = _latest(self.last_ms, to_ms(event.occurred_at))
        self.orders += 1
        self.spend_minor += event.amount_minor
        self.currency = event.currency
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None or self.first_day is None:
            return {}
        last_day = day_of_ms(self.last_ms)
        out: dict[str, float] = {
            "purchase.last_at_d": self.last_ms / DAY_MS,
            "purchase.first_at_d": float(self.first_day),
            "purchase.orders_total": float(self.orders),
            "purchase.span_d": float(last_day - self.first_day),
            "purchase.aov": self.spend_minor / self.orders if self.orders else 0.0,
            # distinct purchase days in the 90 days up to the last one (rhythm keeps 16)
            "purchase.days_90": float(sum(1 for d in self.rhythm if d > last_day - 90)),
        }
        code = currency_code(self.currency)
        if code is not None:
            out[CURRENCY_SIGNAL] = code
        stats = _gap_stats(self.rhythm)
        if stats is not None:
            out["purchase.gap_mean_d"], out["purchase.gap_std_d"] = stats
        ref = day_of_ms(self.last_ms) // 7
        orders_28d, spend_28d = self.buckets.total(ref - 3, ref)
        out["purchase.orders_28d"], out["purchase.spend_28d"] = orders_28d, spend_28d
        # trends compare complete weeks only: the latest week is still filling up, and a
        # window that ends on a purchase would always count that purchase
        span = (self.keep_weeks - 1) // 2
        if self.first_day // 7 <= ref - 2 * span:
            recent = self.buckets.total(ref - span, ref - 1)
            prior = self.buckets.total(ref - 2 * span, ref - span - 1)
            for name, i in (("purchase.freq_trend", 0), ("purchase.spend_trend", 1)):
                value = _trend(recent[i], prior[i])
                if value is not None:
                    out[name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        first = self.first_day
        return {"i": self.ids.to_json(), "b": self.buckets.to_json(),
                "r": [d - first for d in self.rhythm] if first is not None else [],
                "f": first, "l": self.last_ms, "n": self.orders, "s": self.spend_minor,
                "c": self.currency}

    @classmethod
    def from_json(cls, data: dict[str, Any], window_ms: int, keep_weeks: int) -> PurchaseState:
        first = data["f"]
        return cls(RecentIds.from_json(window_ms, data["i"]), keep_weeks,
                   WeekBuckets.from_json(2, data["b"]), [first + d for d in data["r"]],
                   first, data["l"], int(data["n"]), int(data["s"]), str(data.get("c", "")))


@dataclass(slots=True, init=False)
class EngagementState:
    """Product, web, email and community activity: recency, trend, weekly habit."""

    ids: RecentIds
    keep_weeks: int
    buckets: WeekBuckets = field(default_factory=lambda: WeekBuckets(2))  # count, minutes
    first_day: int | None = None
    last_ms: int | None = None

    def __init__(self, ids: RecentIds, keep_weeks: int, buckets: WeekBuckets | None = None,
                 first_day: int | None = None, last_ms: int | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.ids = ids
        self.keep_weeks = keep_weeks
        self.buckets = WeekBuckets(2) if buckets is None else buckets
        self.first_day = first_day
        self.last_ms = last_ms

    def apply(self, event: Engagement) -> bool:
        if self.ids.seen(event.event_id, event.occurred_at):
            return False
        day = day_of(event.occurred_at)
        minutes = (event.duration_s or 0) / 60.0
        self.buckets.add(day, [float(event.count), minutes], self.keep_weeks)
        self.first_day = _earliest(self.first_day, day)
        self.last_ms = _latest(self.last_ms, to_ms(event.occurred_at))
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None or self.first_day is None:
            return {}
        ref = day_of_ms(self.last_ms) // 7
        first_week = self.first_day // 7
        out: dict[str, float] = {"engagement.last_at_d": self.last_ms / DAY_MS}
        active, first_active, last_active = self.buckets.active_span(
            ref - self.keep_weeks + 1, ref)
        out["engagement.active_days"] = float(active)
        if active >= 3:
            # the mean of the gaps between consecutive active days telescopes to this
            out["engagement.gap_mean_d"] = (last_active - first_active) / (active - 1)
        if first_week <= ref - 3:
            out["engagement.weeks_active_4"] = float(self.buckets.active_weeks(ref - 3, ref))
        if first_week <= ref - self.keep_weeks + 1:
            # weekly rates over complete weeks: the last two against the ones before
            recent = self.buckets.total(ref - 2, ref - 1)[0] / 2
            baseline = self.buckets.total(ref - self.keep_weeks + 1, ref - 3)[0]
            value = _trend(recent, baseline / (self.keep_weeks - 3))
            if value is not None:
                out["engagement.trend"] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.to_json(), "b": self.buckets.to_json(), "f": self.first_day,
                "l": self.last_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any], window_ms: int, keep_weeks: int) -> EngagementState:
        return cls(RecentIds.from_json(window_ms, data["i"]), keep_weeks,
                   WeekBuckets.from_json(2, data["b"]), data["f"], data["l"])


@dataclass(slots=True, init=False)
class SupportState:
    """Tickets, sentiment, CSAT and NPS of one customer."""

    ids: RecentIds
    keep_weeks: int
    # counters per week: tickets opened, sentiment sum, sentiment answers, negative answers
    buckets: WeekBuckets = field(default_factory=lambda: WeekBuckets(4))
    open_tickets: list[int] = field(default_factory=list)  # ticket id hashes
    resolved: list[int] = field(default_factory=list)
    csat: tuple[int, int] | None = None  # (event ms, value): the latest answer wins
    nps: tuple[int, int] | None = None
    last_ms: int | None = None

    def __init__(self, ids: RecentIds, keep_weeks: int, buckets: WeekBuckets | None = None,
                 open_tickets: list[int] | None = None, resolved: list[int] | None = None,
                 csat: tuple[int, int] | None = None, nps: tuple[int, int] | None = None,
                 last_ms: int | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.ids = ids
        self.keep_weeks = keep_weeks
        self.buckets = WeekBuckets(4) if buckets is None else buckets
        self.open_tickets = [] if open_tickets is None else open_tickets
        self.resolved = [] if resolved is None else resolved
        self.csat = csat
        self.nps = nps
        self.last_ms = last_ms

    def apply(self, event: SupportEvent) -> bool:
        if self.ids.seen(event.event_id, event.occurred_at):
            return False
        ms = to_ms(event.occurred_at)
        self.last_ms = _latest(self.last_ms, ms)
        sentiment = event.sentiment
        self.buckets.add(day_of(event.occurred_at), [
            1.0 if event.kind == "ticket_opened" else 0.0,
            sentiment if sentiment is not None else 0.0,
            1.0 if sentiment is not None else 0.0,
            1.0 if sentiment is not None and sentiment <= NEGATIVE_SENTIMENT else 0.0,
        ], self.keep_weeks)
        if event.ticket_id:
            ticket = id_hash(event.ticket_id)
            if event.kind == "ticket_opened" and ticket not in self.resolved:
                _remember(self.open_tickets, ticket, TICKET_MEMORY)
            elif event.kind == "ticket_resolved":
                if ticket in self.open_tickets:
                    self.open_tickets.remove(ticket)
                _remember(self.resolved, ticket, TICKET_MEMORY)
        if event.csat is not None and (self.csat is None or ms >= self.csat[0]):
            self.csat = (ms, event.csat)
        if event.nps is not None and (self.nps is None or ms >= self.nps[0]):
            self.nps = (ms, event.nps)
        return True

    def signals(self) -> dict[str, float]:
        if self.last_ms is None:
            return {}
        ref = day_of_ms(self.last_ms) // 7
        opened, s_sum, s_n, negative = self.buckets.total(ref - 3, ref)
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
        return {"i": self.ids.to_json(), "b": self.buckets.to_json(),
                "o": pack(self.open_tickets), "r": pack(self.resolved),
                "c": list(self.csat) if self.csat else None,
                "p": list(self.nps) if self.nps else None, "l": self.last_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any], window_ms: int, keep_weeks: int) -> SupportState:
        csat, nps = data["c"], data["p"]
        return cls(RecentIds.from_json(window_ms, data["i"]), keep_weeks,
                   WeekBuckets.from_json(4, data["b"]), unpack(data["o"]), unpack(data["r"]),
                   (int(csat[0]), int(csat[1])) if csat else None,
                   (int(nps[0]), int(nps[1])) if nps else None, data["l"])


@dataclass(slots=True, init=False)
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
    consent: Consent = NO_CONSENT

    def __init__(self, ids: RecentIds, at_ms: int | None = None, segment: str = "unknown",
                 signup_ms: int | None = None, plan: str | None = None,
                 mrr_minor: int | None = None, cost_to_serve_minor: int | None = None,
                 products: int = 1, referrals: int = 0, consent: Consent = NO_CONSENT) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.ids = ids
        self.at_ms = at_ms
        self.segment = segment
        self.signup_ms = signup_ms
        self.plan = plan
        self.mrr_minor = mrr_minor
        self.cost_to_serve_minor = cost_to_serve_minor
        self.products = products
        self.referrals = referrals
        self.consent = consent

    def apply(self, event: ProfileChange) -> bool:
        if self.ids.seen(event.event_id, event.occurred_at):
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

    def snapshot(self) -> dict[str, Any]:
        """The profile itself, without the de-duplication memory: what the scorer keeps."""
        c = self.consent
        return {"t": self.at_ms, "s": self.segment,
                "u": self.signup_ms, "p": self.plan, "m": self.mrr_minor,
                "c": self.cost_to_serve_minor, "n": self.products, "r": self.referrals,
                "k": int(c.email) | int(c.sms) << 1 | int(c.phone) << 2 | int(c.push) << 3}

    def to_json(self) -> dict[str, Any]:
        return {"i": self.ids.to_json(), **self.snapshot()}

    @classmethod
    def from_json(cls, data: dict[str, Any], window_ms: int) -> ProfileState:
        """From :meth:`to_json`, or from a :meth:`snapshot` (with no ids remembered)."""
        k = int(data["k"])
        return cls(RecentIds.from_json(window_ms, data.get("i", "")), data["t"], data["s"],
                   data["u"],
                   data["p"], data["m"], data["c"], int(data["n"]), int(data["r"]),
                   Consent(bool(k & 1), bool(k & 2), bool(k & 4), bool(k & 8)))


def finite(values: dict[str, float]) -> dict[str, float]:
    """Drop any non-finite value (never produced by these states; a guard for plug-ins),
    and make every other one a float (a plug-in's int would be one, compiled)."""
    return {k: float(v) for k, v in values.items() if math.isfinite(v)}
