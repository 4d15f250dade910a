"""A customer's profile (segment, plan, MRR, products, consent) and its changes over the
period: consent withdrawn, upsells, referrals, downgrades."""

from __future__ import annotations

import math
from datetime import timedelta

from streams.simulator.customer import Customer, Profile
from streams.simulator.draws import between, clamp, log_uniform
from streams.simulator.model import (
    CHAMPION,
    COMPLAINING,
    CURRENCY,
    DAY_S,
    DECLINING,
    DOWNGRADING,
    NEWCOMER,
    ONE_TIME,
    RECOVERING,
    STEADY,
)


def profile(c: Customer) -> None:
    rng = c.rng
    persona = c.persona
    b2b = c.segment == "b2b"
    if persona in (NEWCOMER, ONE_TIME):
        signup = c.t0 - rng.uniform(0.0, 0.08)
    else:
        signup = c.t0 - log_uniform(rng, 30.0, 6 * 365.0)
    if b2b:
        mrr = int(clamp(rng.lognormvariate(math.log(60_000), 0.8), 9_900, 900_000))
        mrr = mrr // 100 * 100
        products = rng.choices((1, 2, 3, 4, 5), (0.35, 0.3, 0.2, 0.1, 0.05))[0]
        plan = rng.choice(("starter", "team", "business", "enterprise"))
        cost = int(mrr * rng.uniform(0.2, 1.1)) // 100 * 100
    else:
        mrr = cost = 0
        products = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
        plan = rng.choice(("basic", "basic", "plus", "premium"))
    if persona == CHAMPION:
        products = min(products + rng.randint(1, 2), 6)
    referrals = rng.randint(1, 6) if persona == CHAMPION else int(rng.random() < 0.08)
    if rng.random() < 0.2:
        consent = (False, False, False, False)
    else:
        consent = (
            rng.random() < 0.85,
            rng.random() < 0.3,
            rng.random() < 0.25 if b2b else rng.random() < 0.1,
            rng.random() < 0.4 and not b2b,
        )
    current = Profile(
        segment=c.segment,
        signup_at=c.origin + timedelta(seconds=int(signup * DAY_S)),
        plan=plan,
        mrr_minor=mrr if b2b else None,
        cost_to_serve_minor=cost if b2b else None,
        currency=CURRENCY if b2b else None,
        products=products,
        referrals=referrals,
        consent=consent,
    )
    c.signup_day = current.signup_at.day
    c.add(c.t0, "ProfileChange", (current.fields(),))
    c.mrr_changes = [(c.t0, mrr)]

    changes: list[tuple[float, str]] = []
    stop = c.stop
    withdraw = 0.08 if c.sour else 0.03
    if rng.random() < withdraw:
        changes.append((between(rng, c.t0 + 1.0, stop), "withdraw"))
    upsell = {CHAMPION: 0.5, STEADY: 0.12, RECOVERING: 0.2}.get(persona, 0.0)
    if persona == NEWCOMER and not c.failed and rng.random() < 0.3:
        changes.append((c.t0 + rng.uniform(60.0, 120.0), "upsell"))
    if rng.random() < upsell:
        earliest = c.dip[3] if c.dip is not None else c.t0 + 20.0
        changes.append((between(rng, earliest, stop), "upsell"))
    if persona == CHAMPION:
        for _ in range(rng.randint(0, 3)):
            changes.append((between(rng, c.t0 + 7.0, stop), "referral"))
    if (
        b2b
        and persona in (DECLINING, COMPLAINING)
        and rng.random() < (0.5 if persona == DECLINING else 0.3)
    ):
        span = c.leave - c.decline_from
        changes.append((c.decline_from + span * rng.uniform(0.3, 0.8), "downgrade"))
    if persona == DOWNGRADING:
        changes.append((c.decline_from, "downgrade"))
    changes.sort()
    for t, what in changes:
        if not c.t0 < t < stop:
            continue
        when = c.at(t)
        if not c.t0 < when < stop:
            when = t
        if what == "withdraw":
            keep_email = rng.random() < 0.3 and current.consent[0]
            current.consent = (keep_email, False, False, False)
        elif what == "upsell":
            current.products = min(current.products + 1, 8)
            if b2b and current.mrr_minor is not None:
                current.mrr_minor = int(current.mrr_minor * rng.uniform(1.15, 1.5)) // 100 * 100
        elif what == "referral":
            current.referrals += 1
        elif what == "downgrade":
            c.downgrades.append(when)
            current.products = max(1, current.products - 1)
            if current.mrr_minor is not None:
                current.mrr_minor = int(current.mrr_minor * rng.uniform(0.5, 0.8)) // 100 * 100
                if current.cost_to_serve_minor is not None:
                    current.cost_to_serve_minor = (
                        int(current.cost_to_serve_minor * rng.uniform(0.8, 1.0)) // 100 * 100
                    )
        else:
            continue
        c.add(when, "ProfileChange", (current.fields(),))
        c.mrr_changes.append((when, current.mrr_minor or 0))
