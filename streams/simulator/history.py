"""One customer's genuine history: its behaviour turned into input records in event-time
order, with its truth row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from streams.scenario import Record
from streams.simulator.billing import billing
from streams.simulator.customer import Customer
from streams.simulator.engagement import engagement
from streams.simulator.model import CURRENCY, DAY_S, SimulationConfig, TruthRow
from streams.simulator.profile import profile
from streams.simulator.purchases import purchases
from streams.simulator.support import support


def build(c: Customer) -> tuple[list[Record], TruthRow]:
    """The genuine records in event-time order and the truth row."""
    c.plan()
    profile(c)
    purchases(c)
    engagement(c)
    support(c)
    billing(c)
    stop = c.stop
    events = sorted(e for e in c.events if c.t0 <= e[0] < stop)
    cid = c.cid
    origin = c.origin
    prefix = {
        "Purchase": "p",
        "Engagement": "e",
        "SupportEvent": "s",
        "ProfileChange": "pr",
        "BillingEvent": "b",
    }
    counters = dict.fromkeys(prefix, 0)
    records: list[Record] = []
    for t, _, type_name, payload in events:
        n = counters[type_name] + 1
        counters[type_name] = n
        occurred = origin + timedelta(seconds=int(t * DAY_S))
        event_id = f"{cid}-{prefix[type_name]}-{n}"
        record: dict[str, Any]
        if type_name == "Engagement":
            kind, count, duration, feature = payload
            record = {
                "event_id": event_id,
                "customer_id": cid,
                "occurred_at": occurred,
                "kind": kind,
                "count": count,
                "duration_s": duration,
                "feature": feature,
            }
        elif type_name == "Purchase":
            order, amount, items, channel = payload
            record = {
                "event_id": event_id,
                "customer_id": cid,
                "occurred_at": occurred,
                "order_id": order or f"{cid}-o-{n}",
                "amount_minor": amount,
                "currency": CURRENCY,
                "items": items,
                "channel": channel,
            }
        elif type_name == "SupportEvent":
            kind, ticket, csat, nps, sentiment, category = payload
            record = {
                "event_id": event_id,
                "customer_id": cid,
                "occurred_at": occurred,
                "kind": kind,
                "ticket_id": ticket,
                "csat": csat,
                "nps": nps,
                "sentiment": sentiment,
                "category": category,
            }
        elif type_name == "BillingEvent":
            kind, amount, renewal = payload
            record = {
                "event_id": event_id,
                "customer_id": cid,
                "occurred_at": occurred,
                "kind": kind,
                "amount_minor": amount,
                "currency": CURRENCY if amount is not None else None,
                "renewal_at": (
                    origin + timedelta(seconds=int(renewal * DAY_S))
                    if renewal is not None
                    else None
                ),
            }
        else:
            record = {
                "event_id": event_id,
                "customer_id": cid,
                "occurred_at": occurred,
                **payload[0],
            }
        records.append((type_name, record))
    churned = c.leave < c.end and bool(records)
    churned_at = records[-1][1]["occurred_at"] if churned else None
    truth = TruthRow(cid, churned, churned_at, c.persona, c.segment)
    return records, truth


def iter_customers(config: SimulationConfig) -> Iterator[tuple[list[Record], TruthRow]]:
    """Each customer's genuine records (event-time order) and truth row, one at a time."""
    for index in range(config.customers):
        yield build(Customer(index, config))
