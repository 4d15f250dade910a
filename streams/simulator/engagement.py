"""A customer's engagement: sessions, logins, page views, features used, community posts
and newsletter opens."""

from __future__ import annotations

import math

from streams.simulator.customer import Customer
from streams.simulator.draws import clamp
from streams.simulator.model import CHAMPION, SEASONAL

_B2C_KINDS = ("session", "login", "page_view", "feature_used", "community_post")
_B2C_FEATURES = ("wishlist", "reviews", "search", "size_guide", "order_tracking")
_B2B_FEATURES = ("reports", "dashboards", "export", "integrations", "api", "billing", "admin")


def engagement(c: Customer) -> None:
    rng = c.rng
    b2b = c.segment == "b2b"
    stop = c.stop
    champion = c.persona == CHAMPION
    if b2b:
        p_day = rng.uniform(0.4, 0.85)
        seats = int(clamp(rng.lognormvariate(math.log(6), 0.7), 1, 200))
        p_feature = rng.uniform(0.15, 0.45)
    else:
        weekly = rng.uniform(3.0, 5.5) if champion else rng.uniform(0.7, 3.5)
        p_day = weekly / 7.0
        seats = 1
        p_feature = 0.0
    p_open = rng.uniform(0.1, 0.7)
    first_day = int(c.t0)
    quiet = False
    for day in range(first_day, min(c.days, math.ceil(stop))):
        m = c.life[day]
        if (day - first_day) % 7 == 0:
            quiet = rng.random() < 0.6 * max(0.0, 0.85 - m)
        _newsletter(c, day, m, p_open, stop)
        if m <= 0.0 or quiet:
            continue
        weekday = c.weekday(day)
        if b2b:
            chance = p_day * m if weekday < 5 else 0.04 * m
            if rng.random() >= min(chance, 0.98):
                continue
            users = max(1, round(seats * rng.uniform(0.3, 0.9) * min(m, 1.2)))
            t = c.at(day)
            c.add(t, "Engagement", ("login", users, None, None))
            if rng.random() < p_feature * min(m, 1.0):
                c.add(
                    t + rng.uniform(0.0, 0.2),
                    "Engagement",
                    (
                        "feature_used",
                        rng.randint(1, max(1, users)),
                        None,
                        rng.choice(_B2B_FEATURES),
                    ),
                )
            if rng.random() < 0.02 * (3 if champion else 1):
                c.add(c.at(day), "Engagement", ("community_post", 1, None, None))
            continue
        if rng.random() >= min(p_day * m, 0.95):
            continue
        events = 1 + (rng.random() < 0.25) + (rng.random() < 0.06)
        t = c.at(day)
        for _ in range(events):
            kind = rng.choices(_B2C_KINDS, (45, 15, 30, 8, 6 if champion else 1))[0]
            _engage(c, t, kind)
            t += rng.uniform(0.01, 0.2)


def _engage(c: Customer, t: float, kind: str) -> None:
    rng = c.rng
    if kind == "session":
        duration = int(clamp(rng.lognormvariate(math.log(300), 0.9), 10, 14_400))
        c.add(t, "Engagement", ("session", 1, duration, None))
    elif kind == "page_view":
        c.add(t, "Engagement", ("page_view", rng.randint(1, 12), None, None))
    elif kind == "feature_used":
        c.add(t, "Engagement", ("feature_used", 1, None, rng.choice(_B2C_FEATURES)))
    else:
        c.add(t, "Engagement", (kind, 1, None, None))


def _newsletter(c: Customer, day: int, m: float, p_open: float, stop: float) -> None:
    """The business mails b2c customers every Tuesday and b2b customers every other
    Thursday at 09:00; the customer opens some of them."""
    weekday = c.weekday(day)
    if c.segment == "b2c":
        if weekday != 1:
            return
    elif weekday != 3 or (day // 7) % 2:
        return
    rng = c.rng
    interest = 1.0 if c.persona == SEASONAL else 0.35 + 0.65 * min(m, 1.0)
    if day + 0.5 < c.t0 or m <= 0.0 or rng.random() >= p_open * interest:
        return
    t = day + 9.0 / 24.0 + min(rng.expovariate(1 / 10.0), 72.0) / 24.0
    if c.t0 < t < stop:
        c.add(t, "Engagement", ("email_open", 1, None, None))
