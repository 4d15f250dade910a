"""A subscriber's billing: the subscription behind a b2b customer's monthly invoices.

Renewals on the billing day of every month, now and then a failed payment that a retry
recovers, the plan downgrades of its profile, the cancellation when it leaves and, for
the ``involuntary`` persona, a payment that keeps failing through the retries until the
billing system cancels the subscription. B2C shoppers have no subscription (no MRR in
their profile) and no billing events.
"""

from __future__ import annotations

import math
from itertools import pairwise

from streams.simulator.customer import Customer
from streams.simulator.model import (
    COMPLAINING,
    DECLINING,
    DOWNGRADING,
    INVOLUNTARY,
    NEWCOMER,
)

#: A failing payment that is never recovered is retried for at least this many days
#: before the subscription is cancelled.
DUNNING_MIN_D = 10.0
#: Personas that decide to leave over weeks: they cancel up to two weeks before their
#: last day; the others (sudden leavers, failed newcomers) on their last day.
_GIVING_NOTICE = (DECLINING, COMPLAINING, DOWNGRADING)


def billing(c: Customer) -> None:
    if c.segment != "b2b":
        return
    rng = c.rng
    dues = _dues(c, rng.uniform(1.0, 6.0) / 24.0)
    failing = math.inf  # the renewal whose payment is never recovered
    if c.persona == INVOLUNTARY:
        failing = max(d for d in dues if d <= c.leave - DUNNING_MIN_D)
    p_fail = rng.uniform(0.0, 0.06)
    last = c.t0  # the latest billing event so far
    for due, next_due in pairwise(dues):
        if due >= min(failing, c.stop):
            break
        amount = c.mrr_at(due)
        if rng.random() < p_fail:
            last = _recovered(c, due, amount, next_due)
        else:
            _event(c, due, "subscription_renewed", amount, next_due)
            last = due
    for when in c.downgrades:
        later = [d for d in dues if d > when]
        _event(c, when, "subscription_downgraded", c.mrr_at(when), later[0] if later else None)
        last = max(last, when)
    if c.persona == INVOLUNTARY:
        _dunning(c, failing)  # what falls after the period is left out
    elif c.leave < math.inf:
        notice = 14.0 if c.persona in _GIVING_NOTICE else 1.0
        notice = max(0.02, min(notice, c.leave - last))  # after its latest billing event
        _event(c, c.leave - rng.uniform(0.02, notice), "subscription_cancelled", None, None)


def _dues(c: Customer, hour: float) -> list[float]:
    """Times of the renewals from the customer's first billing day after it appears (a
    newcomer's first month is paid at signup), up to the first one at or after its last
    day (or the end of the period)."""
    until = c.leave if c.leave < math.inf else c.end
    first = c.date_of(c.t0)
    out: list[float] = []
    for year, month, day in c.bill_days():
        due = day + hour
        if due <= c.t0 or (c.persona == NEWCOMER and (year, month) == (first.year, first.month)):
            continue
        out.append(due)
        if due >= until:
            break
    return out


def _recovered(c: Customer, due: float, amount: int, next_due: float) -> float:
    """A renewal whose payment fails, then succeeds on a retry (sometimes the second);
    returns the time of the recovery."""
    rng = c.rng
    _event(c, due, "payment_failed", amount, None)
    t = due + rng.uniform(1.0, 4.0)
    if rng.random() < 0.3:
        _event(c, t, "payment_failed", amount, None)
        t += rng.uniform(2.0, 5.0)
    _event(c, t, "payment_recovered", amount, next_due)
    return t


def _dunning(c: Customer, due: float) -> None:
    """The involuntary churn: the renewal's payment fails, 2-4 retries spread over the
    days to the customer's last day fail too, and the billing system cancels the
    subscription on that day."""
    rng = c.rng
    amount = c.mrr_at(due)
    _event(c, due, "payment_failed", amount, None)
    span = c.leave - due
    retries = rng.randint(2, 4)
    for i in range(1, retries + 1):
        _event(
            c,
            due + span * (i - rng.uniform(0.0, 0.4)) / (retries + 1),
            "payment_failed",
            amount,
            None,
        )
    _event(c, c.leave - rng.uniform(0.02, 1.0), "subscription_cancelled", None, None)


def _event(c: Customer, t: float, kind: str, amount: int | None, renewal: float | None) -> None:
    if c.t0 < t < c.stop:
        c.add(t, "BillingEvent", (kind, amount, renewal))
