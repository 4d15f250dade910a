"""A customer's purchases: b2c orders at its own rhythm, b2b monthly invoices and extra
orders."""

from __future__ import annotations

import math

from streams.simulator.customer import Customer
from streams.simulator.draws import clamp, log_uniform
from streams.simulator.model import CHAMPION, NEWCOMER, ONE_TIME, SEASONAL

_CHANNELS = ("web", "app", "store", "marketplace")
_CHANNEL_WEIGHTS = (0.5, 0.3, 0.1, 0.1)


def purchases(c: Customer) -> None:
    rng = c.rng
    stop = c.stop
    if c.segment == "b2b":
        _invoices(c)
        gap = rng.uniform(40.0, 150.0)
        t = c.advance(c.t0, gap * rng.random(), stop)
        while t is not None:
            when = c.at(t)
            if c.t0 < when < stop:
                amount = int(c.mrr_at(when) * rng.uniform(0.1, 0.6)) // 100 * 100
                channel = rng.choice(("web", "phone", "other"))
                c.add(
                    when, "Purchase", (None, max(amount, 500), rng.randint(1, 20), channel)
                )
            t = c.advance(t, gap * rng.lognormvariate(0.0, 0.4), stop)
        return
    if c.persona == ONE_TIME:
        amount = int(rng.lognormvariate(math.log(3_500), 0.6))
        when = c.t0 + rng.uniform(0.003, 0.1)
        if when < stop:
            c.add(
                when,
                "Purchase",
                (
                    None,
                    max(amount, 199),
                    rng.randint(1, 3),
                    rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0],
                ),
            )
        return
    if c.persona == CHAMPION:
        gap = log_uniform(rng, 3.0, 10.0)
        base = rng.lognormvariate(math.log(9_000), 0.5)
    elif c.persona == SEASONAL:
        gap = rng.uniform(3.0, 9.0)
        base = rng.lognormvariate(math.log(5_500), 0.5)
    else:
        gap = log_uniform(rng, 5.0, 45.0)
        base = rng.lognormvariate(math.log(4_500), 0.55)
    base = clamp(base, 800.0, 60_000.0)
    preferred = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
    t = c.advance(c.t0, gap * rng.random(), stop)
    if c.persona == NEWCOMER:
        t = c.t0 + rng.uniform(0.003, 0.5)  # the first order comes with the signup
    while t is not None:
        when = c.at(t) if int(t) != int(c.t0) else t
        if c.t0 < when < stop:
            amount = int(round(base * rng.lognormvariate(0.0, 0.35)))
            channel = preferred if rng.random() < 0.75 else rng.choice(_CHANNELS)
            items = 1 + min(int(rng.expovariate(0.7)), 11)
            c.add(when, "Purchase", (None, max(amount, 99), items, channel))
        t = c.advance(t, gap * rng.lognormvariate(0.0, 0.35), stop)


def _invoices(c: Customer) -> None:
    """Monthly invoices of the subscription, on the signup day of the month, until
    the customer cancels."""
    rng = c.rng
    first = c.date_of(c.t0)
    for year, month, day in c.bill_days():
        due = day + rng.uniform(2.0, 6.0) / 24.0
        if due >= c.stop:
            return
        if due <= c.t0 and c.persona == NEWCOMER and (year, month) == (first.year, first.month):
            due = c.t0 + rng.uniform(0.003, 0.05)  # the first month is paid at signup
        if due > c.t0:
            order = f"{c.cid}-inv-{year:04d}{month:02d}"
            c.add(due, "Purchase", (order, c.mrr_at(due), 1, "other"))
