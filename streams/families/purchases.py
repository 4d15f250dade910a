"""The purchase family: orders, their amounts and the customer's buying rhythm.

Its event (:class:`~streams.domain.events.Purchase`) and feature state
(:class:`~streams.domain.features.PurchaseState`, which the retention gauges read too)
live in the domain; this module parses records into events and names the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.events import (
    MAX_AMOUNT_MINOR,
    MAX_COUNT,
    Purchase,
    bad_field,
    common_fields,
    int_field,
    text_field,
)
from streams.domain.features import PurchaseState
from streams.domain.recent_ids import RecentIds
from streams.families.base import Family


def parse(record: Mapping[str, Any]) -> Purchase:
    event_id, customer_id, occurred_at = common_fields(record)
    currency = text_field(record, "currency")
    assert currency is not None
    if len(currency) != 3 or not currency.isalpha():
        raise bad_field("currency", f"{currency!r} is not an ISO 4217 code")
    return Purchase(
        event_id, customer_id, occurred_at,
        order_id=text_field(record, "order_id") or "",
        amount_minor=int_field(record, "amount_minor", 0, MAX_AMOUNT_MINOR) or 0,
        currency=currency.upper(),
        items=int_field(record, "items", 0, MAX_COUNT, default=1) or 0,
        channel=str(record.get("channel") or "other"),
    )


def sample(n: int, customer: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{customer}-purchase-{n}", "customer_id": customer,
            "occurred_at": at, "order_id": f"{customer}-o{n}", "amount_minor": 1000 + 10 * n,
            "currency": "EUR", "items": 1, "channel": "web"}


FAMILY: Family = Family(
    "purchase", "purchases", "Purchase", parse,
    new_state=lambda window, weeks: PurchaseState(RecentIds(window), weeks),
    load_state=lambda data, window, weeks: PurchaseState.from_json(data, window, weeks),
    sample=sample)
