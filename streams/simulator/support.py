"""A customer's support history: tickets and their resolution, CSAT answers, souring
feedback and NPS surveys, with sentiment following its mood."""

from __future__ import annotations

import math

from streams.simulator.customer import Customer
from streams.simulator.draws import clamp
from streams.simulator.model import COMPLAINING, NEWCOMER

_B2C_CATEGORIES = ("delivery", "returns", "billing", "product_quality", "account")
_B2B_CATEGORIES = ("how_to", "bug", "billing", "integration", "missing_feature", "performance")
_SOUR_CATEGORIES = ("bug", "missing_feature", "billing", "performance", "product_quality")


def support(c: Customer) -> None:
    rng = c.rng
    stop = c.stop
    b2b = c.segment == "b2b"
    rate = rng.uniform(1.0, 6.0) if b2b else rng.uniform(0.3, 2.0)
    categories = _B2B_CATEGORIES if b2b else _B2C_CATEGORIES
    t = c.t0 + rng.expovariate(rate / 365.0)
    while t < stop:
        _ticket(c, t, rng.choice(categories), sour=False)
        t += rng.expovariate(rate / 365.0)
    if c.sour:
        every = (3.0, 10.0) if c.persona == COMPLAINING else (6.0, 16.0)
        t = c.decline_from + rng.uniform(0.0, every[1])
        while t < stop:
            _ticket(c, t, rng.choice(_SOUR_CATEGORIES), sour=True)
            if rng.random() < 0.5:
                _support(
                    c,
                    t + rng.uniform(0.5, 4.0),
                    "feedback",
                    None,
                    None,
                    None,
                    _sentiment(c, t, -0.3),
                    rng.choice(_SOUR_CATEGORIES),
                )
            t += rng.uniform(*every)
    if c.dip is not None and rng.random() < 0.5:
        start, _, low_to, _ = c.dip
        ticket = _ticket_id(c)
        category = rng.choice(categories)
        _support(
            c,
            start + rng.uniform(0.0, 7.0),
            "ticket_opened",
            ticket,
            None,
            None,
            _sentiment(c, start, -0.4),
            category,
        )
        done = low_to + rng.uniform(0.0, 5.0)
        _support(c, done, "ticket_resolved", ticket, None, None, None, category)
        if rng.random() < 0.6:
            _support(
                c,
                done + rng.uniform(0.1, 2.0),
                "csat_response",
                ticket,
                rng.randint(4, 5),
                None,
                round(rng.uniform(0.3, 0.9), 2),
                None,
            )
    _surveys(c)


def _ticket_id(c: Customer) -> str:
    c.tickets += 1
    return f"{c.cid}-t-{c.tickets}"


def _ticket(c: Customer, t: float, category: str, *, sour: bool) -> None:
    rng = c.rng
    ticket = _ticket_id(c)
    opened = c.at(t)
    _support(
        c,
        opened,
        "ticket_opened",
        ticket,
        None,
        None,
        _sentiment(c, t, -0.45 if sour else -0.25),
        category,
    )
    if rng.random() >= (0.4 if sour else 0.92):
        return  # stays open
    done = opened + rng.lognormvariate(math.log(6.0 if sour else 1.0), 0.9)
    _support(c, done, "ticket_resolved", ticket, None, None, None, category)
    if rng.random() < 0.35:
        mood = c.mood_at(done)
        csat = round(clamp(1.5 + 4.0 * mood + rng.gauss(0.0, 0.7), 1, 5))
        _support(
            c,
            done + rng.uniform(0.02, 2.0),
            "csat_response",
            ticket,
            csat,
            None,
            _sentiment(c, done, 0.0) if rng.random() < 0.5 else None,
            None,
        )


def _surveys(c: Customer) -> None:
    """NPS surveys every ~4 months; newcomers also get one after 30 days."""
    rng = c.rng
    persona = c.persona
    respond = rng.uniform(0.3, 0.6)
    t = c.t0 + rng.uniform(20.0, 120.0)
    times = []
    if persona == NEWCOMER:
        times.append(c.t0 + 30.0)
    while t < c.stop:
        times.append(t)
        t += rng.uniform(100.0, 140.0)
    for asked in times:
        answered = asked + rng.expovariate(1 / 1.5)
        m = min(c.m(answered), 1.0)
        chance = respond * (
            1.3 if c.sour and answered >= c.decline_from else 0.4 + 0.6 * m
        )
        if not answered < c.stop or rng.random() >= chance:
            continue
        mood = c.mood_at(answered)
        nps = round(clamp(10.0 * mood + 0.8 + rng.gauss(0.0, 1.1), 0, 10))
        sentiment = _sentiment(c, answered, 0.0) if rng.random() < 0.4 else None
        _support(c, c.at(answered), "nps_response", None, None, nps, sentiment, None)


def _sentiment(c: Customer, t: float, shift: float) -> float:
    value = 2.0 * c.mood_at(t) - 1.0 + shift + c.rng.gauss(0.0, 0.2)
    return round(clamp(value, -1.0, 1.0), 2)


def _support(
    c: Customer,
    t: float,
    kind: str,
    ticket: str | None,
    csat: int | None,
    nps: int | None,
    sentiment: float | None,
    category: str | None,
) -> None:
    if c.t0 < t < c.stop:
        c.add(t, "SupportEvent", (kind, ticket, csat, nps, sentiment, category))
