"""A scripted, reproducible customer base for the demo and the tests. No Kafka, no I/O.

:func:`scenario` returns input records (record type name, record dict) for ``customers``
customers over ``weeks`` weeks of event time, sorted by ``occurred_at``. The same
arguments always give the same records. Each customer follows one persona:

===============  ==========================================================================
persona          behaviour
===============  ==========================================================================
steady           buys every 7-14 days (b2c) or pays a monthly invoice (b2b), engages weekly
champion         buys every few days with a high spend, promoter NPS, refers others
slowing          the gaps between purchases grow and engagement thins out, then both stop
silence          behaves like a steady buyer, then goes silent for the last ~5 weeks
complaining      opens tickets that stay open, negative sentiment, low CSAT, NPS detractor;
                 buys and visits less and less
disengaging      b2b subscriber who keeps paying while the team stops using the product
===============  ==========================================================================

Customers come in blocks of ten: the first six of a block follow the six personas in a
seeded order, the other four are three steady buyers and a champion, so any scenario with
six customers or more holds every persona. :func:`personas` and :func:`persona_of`
say which persona a customer follows (the demo prints it next to each alert).

Every customer's first record is a ``ProfileChange`` at the start. Amounts are integer
minor units in EUR; all datetimes are timezone-aware UTC. The default start lies in the
past so that every event time is accepted by a worker (events ahead of the wall clock are
rejected); run the worker with ``CHURN_CLOCK=event`` to replay it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Record = tuple[str, dict[str, Any]]

STEADY = "steady"
CHAMPION = "champion"
SLOWING = "slowing"
SILENCE = "silence"
COMPLAINING = "complaining"
DISENGAGING = "disengaging"

#: Every persona, in a fixed order.
PERSONAS = (STEADY, CHAMPION, SLOWING, SILENCE, COMPLAINING, DISENGAGING)
#: Personas expected to end a scenario at risk (the others should stay healthy).
LAPSING = frozenset({SLOWING, SILENCE, COMPLAINING, DISENGAGING})

#: One block of ten customers: each persona once, then the extra healthy ones.
_EXTRA = (STEADY, STEADY, STEADY, CHAMPION)
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
CURRENCY = "EUR"
#: The silence persona is silent for this long before the end of the scenario, plus
#: the default allowed lateness (3 days) by which an event-time watermark trails the
#: latest event, so a replaying worker sees the full five weeks of silence.
SILENT_WEEKS = 5
LATENESS_DAYS = 3

_DAY = timedelta(days=1)


def customer_id(index: int) -> str:
    """The id of the customer with this index."""
    return f"cust-{index:05d}"


def _block_rng(seed: int, block: int) -> random.Random:
    return random.Random(f"personas:{seed}:{block}")


def _persona_at(index: int, seed: int) -> str:
    block, slot = divmod(index, len(PERSONAS) + len(_EXTRA))
    rng = _block_rng(seed, block)
    distinct = list(PERSONAS)
    rng.shuffle(distinct)
    extra = list(_EXTRA)
    rng.shuffle(extra)
    return (distinct + extra)[slot]


def personas(customers: int = 300, seed: int = 7) -> dict[str, str]:
    """Customer id -> persona for a scenario with these arguments."""
    return {customer_id(i): _persona_at(i, seed) for i in range(customers)}


def persona_of(customer: str, seed: int = 7) -> str | None:
    """The persona of a scenario customer (same ``seed``), or None for another id."""
    prefix = "cust-"
    if not customer.startswith(prefix) or not customer[len(prefix):].isdigit():
        return None
    return _persona_at(int(customer[len(prefix):]), seed)


@dataclass
class _Customer:
    """Builds one customer's records; ids count per kind so they are unique and stable."""

    cid: str
    persona: str
    rng: random.Random
    start: datetime
    end: datetime
    records: list[Record] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def _next(self, kind: str) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return f"{self.cid}-{kind}-{n}"

    def at(self, day: float, *, hour_from: int = 8, hour_to: int = 21) -> datetime | None:
        """A time on ``day`` (days since the start) at a random daytime hour, or None when
        that lies outside the scenario."""
        base = self.start + timedelta(days=int(day))
        moment = base + timedelta(hours=self.rng.randint(hour_from, hour_to),
                                  minutes=self.rng.randint(0, 59),
                                  seconds=self.rng.randint(0, 59))
        if moment < self.start or moment >= self.end:
            return None
        return moment

    def add(self, type_name: str, record: dict[str, Any]) -> None:
        self.records.append((type_name, record))

    def profile(self, occurred_at: datetime, **fields: Any) -> None:
        self.add("ProfileChange", {
            "event_id": self._next("pr"), "customer_id": self.cid, "occurred_at": occurred_at,
            **fields})

    def purchase(self, day: float, amount_minor: int) -> None:
        when = self.at(day)
        if when is None:
            return
        order = self._next("p")
        self.add("Purchase", {
            "event_id": order, "customer_id": self.cid, "occurred_at": when,
            "order_id": order.replace("-p-", "-o-"), "amount_minor": max(0, amount_minor),
            "currency": CURRENCY, "items": self.rng.randint(1, 4),
            "channel": self.rng.choice(("web", "web", "app", "store", "marketplace")),
        })

    def engage(self, day: float, kind: str | None = None) -> None:
        when = self.at(day, hour_from=6, hour_to=22)
        if when is None:
            return
        kind = kind or self.rng.choice(
            ("login", "session", "session", "page_view", "email_open", "feature_used",
             "community_post"))
        timed = kind in ("session", "feature_used")
        self.add("Engagement", {
            "event_id": self._next("e"), "customer_id": self.cid, "occurred_at": when,
            "kind": kind, "count": self.rng.randint(1, 5) if kind == "page_view" else 1,
            "duration_s": self.rng.randint(60, 1800) if timed else None,
            "feature": self.rng.choice(("reports", "export", "search", "billing"))
            if kind == "feature_used" else None,
        })

    def support(self, day: float, kind: str, *, ticket: str | None = None,
                csat: int | None = None, nps: int | None = None,
                sentiment: float | None = None, category: str | None = None) -> None:
        when = self.at(day)
        if when is None:
            return
        self.add("SupportEvent", {
            "event_id": self._next("s"), "customer_id": self.cid, "occurred_at": when,
            "kind": kind, "ticket_id": ticket, "csat": csat, "nps": nps,
            "sentiment": round(sentiment, 2) if sentiment is not None else None,
            "category": category,
        })

    def ticket_id(self) -> str:
        return self._next("t")


def _silent_from(horizon: float) -> float:
    return horizon - SILENT_WEEKS * 7 - LATENESS_DAYS


def _consent(rng: random.Random) -> dict[str, bool]:
    if rng.random() < 0.2:  # no consent on any channel: may not be contacted
        return {"email": False, "sms": False, "phone": False, "push": False}
    return {"email": rng.random() < 0.85, "sms": rng.random() < 0.3,
            "phone": rng.random() < 0.25, "push": rng.random() < 0.4}


def _segment(persona: str, rng: random.Random) -> str:
    if persona == DISENGAGING:
        return "b2b"
    share = {STEADY: 0.25, CHAMPION: 0.3, COMPLAINING: 0.4}.get(persona, 0.2)
    return "b2b" if rng.random() < share else "b2c"


def _open_profile(c: _Customer, segment: str) -> dict[str, Any]:
    rng = c.rng
    champion = c.persona == CHAMPION
    # one customer in eight signed up recently and is still onboarding at the start
    recent = rng.random() < 0.125 and not champion
    tenure_d = rng.randint(20, 80) if recent else rng.randint(120, 1500)
    products = rng.randint(3, 4) if champion else rng.choice((1, 1, 1, 2, 2, 3))
    fields: dict[str, Any] = {
        "segment": segment,
        "signup_at": (c.start - timedelta(days=tenure_d)).replace(
            hour=rng.randint(8, 20), minute=rng.randint(0, 59)),
        "plan": None, "mrr_minor": None, "cost_to_serve_minor": None, "currency": None,
        "products": products,
        "referrals": rng.randint(1, 6) if champion else (1 if rng.random() < 0.1 else 0),
        "consent": _consent(rng),
    }
    if segment == "b2b":
        mrr = rng.randrange(15_000, 250_000, 500)
        # cost to serve from 20% to 115% of the MRR: grow, maintain and depart accounts
        cost = int(mrr * rng.uniform(0.2, 1.15)) // 100 * 100
        fields.update(plan=rng.choice(("team", "business", "enterprise")), mrr_minor=mrr,
                      cost_to_serve_minor=cost, currency=CURRENCY)
    else:
        fields.update(plan=rng.choice(("basic", "basic", "plus", "premium")))
    c.profile(c.start + timedelta(minutes=rng.randint(0, 120)), **fields)
    return fields


def _purchases(c: _Customer, segment: str, profile: dict[str, Any], horizon: float) -> None:
    """Purchases: a rhythm per persona, stopping where the persona stops buying."""
    rng = c.rng
    persona = c.persona
    silent_from = _silent_from(horizon)
    if segment == "b2b":
        # monthly invoices of the subscription (they keep coming while the team disengages)
        gap = 30.0
        amount = int(profile["mrr_minor"])
        day = rng.uniform(0, 20)
    else:
        gap = rng.uniform(3, 6) if persona == CHAMPION else rng.uniform(7, 14)
        if persona == SLOWING:
            gap = rng.uniform(5, 8)
        amount = rng.randrange(8_000, 30_000, 100) if persona == CHAMPION else rng.randrange(
            1_500, 12_000, 100)
        day = rng.uniform(0, gap)
    if persona == SLOWING and segment == "b2b":
        gap = rng.uniform(12, 16)  # a b2b slowing buyer orders ad hoc, not by invoice
    stop = horizon
    if persona == SLOWING:
        stop = horizon * rng.uniform(0.5, 0.6)
    elif persona == SILENCE:
        stop = silent_from
    elif persona == COMPLAINING:
        stop = horizon * rng.uniform(0.6, 0.75)
    growth = rng.uniform(1.4, 1.6) if persona == SLOWING else 1.0
    while day < stop:
        noise = 1.0 if segment == "b2b" and persona != SLOWING else rng.uniform(0.85, 1.15)
        c.purchase(day, int(amount * rng.uniform(0.8, 1.2)) if segment == "b2c" else amount)
        day += gap * noise
        gap *= growth


def _engagement(c: _Customer, segment: str, horizon: float) -> None:
    """Active days per week; for the lapsing personas, weeks go quiet more and more often
    and the active ones hold fewer days, until activity stops."""
    rng = c.rng
    persona = c.persona
    base = {CHAMPION: 5, DISENGAGING: 5}.get(persona, 4 if segment == "b2b" else 2)
    weeks = int(horizon // 7)
    fade_from, fade_to = weeks, weeks + 1
    if persona == SLOWING:
        fade_from, fade_to = 2, int(weeks * 0.6)
    elif persona == DISENGAGING:
        fade_from, fade_to = 2, int(weeks * 0.6)
    elif persona == COMPLAINING:
        fade_from, fade_to = 3, int(weeks * 0.75)
    silent_from = _silent_from(horizon)
    for week in range(weeks + 1):
        if week >= fade_to or (persona == SILENCE and week * 7 >= silent_from):
            break
        share = 1.0
        if week >= fade_from:
            share = 1.0 - (week - fade_from + 1) / (fade_to - fade_from + 1)
            if rng.random() > share:
                continue  # a quiet week
        active = max(1, round(base * share + rng.uniform(-0.5, 0.5)))
        days = list(range(5)) if segment == "b2b" else list(range(7))
        for offset in sorted(rng.sample(days, min(active, len(days)))):
            if persona == SILENCE and week * 7 + offset >= silent_from:
                break
            c.engage(week * 7 + offset)


def _support(c: _Customer, horizon: float) -> None:
    rng = c.rng
    persona = c.persona
    weeks = horizon / 7
    if persona == COMPLAINING:
        day = horizon * rng.uniform(0.25, 0.35)
        while day < horizon - 2:
            ticket = c.ticket_id()
            category = rng.choice(("bug", "missing_feature", "billing", "delivery"))
            c.support(day, "ticket_opened", ticket=ticket, category=category,
                      sentiment=-rng.uniform(0.4, 0.95))
            if rng.random() < 0.5:
                c.support(day + rng.uniform(1, 3), "feedback", ticket=ticket,
                          category=category, sentiment=-rng.uniform(0.5, 1.0))
            day += rng.uniform(4, 9)
        c.support(horizon * rng.uniform(0.5, 0.6), "csat_response", csat=rng.randint(1, 2),
                  sentiment=-rng.uniform(0.3, 0.8))
        c.support(horizon * rng.uniform(0.6, 0.7), "nps_response", nps=rng.randint(0, 4),
                  sentiment=-rng.uniform(0.2, 0.7))
        return
    if persona in (STEADY, CHAMPION, SILENCE) and rng.random() < 0.35:
        # a ticket now and then, resolved within days, with a good rating
        day = rng.uniform(0, horizon * 0.7 if persona == SILENCE else horizon - 7)
        ticket = c.ticket_id()
        category = rng.choice(("how_to", "billing", "delivery"))
        c.support(day, "ticket_opened", ticket=ticket, category=category,
                  sentiment=rng.uniform(-0.2, 0.3))
        done = day + rng.uniform(0.5, 3)
        c.support(done, "ticket_resolved", ticket=ticket, category=category)
        c.support(done + 0.5, "csat_response", csat=rng.randint(4, 5),
                  sentiment=rng.uniform(0.3, 0.9))
    survey = {CHAMPION: (9, 10), STEADY: (7, 9), SILENCE: (7, 8), SLOWING: (5, 7)}.get(persona)
    if survey is not None and rng.random() < 0.6:
        c.support(rng.uniform(2, weeks * 3.5), "nps_response",
                  nps=rng.randint(*survey), sentiment=None)


def _champion_upsell(c: _Customer, profile: dict[str, Any], horizon: float) -> None:
    """A champion takes one more product halfway and refers someone."""
    when = c.at(horizon * c.rng.uniform(0.4, 0.6))
    if when is not None:
        c.profile(when, **dict(profile, products=min(profile["products"] + 1, 6),
                               referrals=profile["referrals"] + 1))


def _customer(index: int, seed: int, start: datetime, weeks: int) -> list[Record]:
    cid = customer_id(index)
    persona = _persona_at(index, seed)
    digest = hashlib.sha256(f"{seed}:{cid}".encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    horizon = weeks * 7.0
    c = _Customer(cid, persona, rng, start, start + timedelta(days=horizon))
    segment = _segment(persona, rng)
    profile = _open_profile(c, segment)
    _purchases(c, segment, profile, horizon)
    _engagement(c, segment, horizon)
    _support(c, horizon)
    if persona == CHAMPION:
        _champion_upsell(c, profile, horizon)
    return c.records


def scenario(customers: int = 300, weeks: int = 12, seed: int = 7,
             start: datetime | None = None) -> list[Record]:
    """The scripted records of ``customers`` customers over ``weeks`` weeks, sorted by
    event time (ties by event id). Deterministic for the same arguments."""
    if customers < 0:
        raise ValueError("customers must not be negative")
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    if start is not None and start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    begin = (start or DEFAULT_START).astimezone(UTC)
    records: list[Record] = []
    for index in range(customers):
        records.extend(_customer(index, seed, begin, weeks))
    records.sort(key=lambda r: (r[1]["occurred_at"], r[1]["event_id"]))
    return records


def iter_days(records: list[Record]) -> Iterator[tuple[datetime, list[Record]]]:
    """Sorted records grouped by the UTC day they occurred on."""
    batch: list[Record] = []
    current: datetime | None = None
    for record in records:
        moment: datetime = record[1]["occurred_at"]
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if current is not None and day != current:
            yield current, batch
            batch = []
        current = day
        batch.append(record)
    if current is not None:
        yield current, batch
