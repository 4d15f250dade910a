"""The support family: tickets, CSAT and NPS answers, feedback and its sentiment.

Its event (:class:`~streams.domain.events.SupportEvent`) and feature state
(:class:`~streams.domain.features.SupportState`, which the retention gauges read too)
live in the domain; this module parses records into events and names the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.events import (
    SupportEvent,
    bad_field,
    common_fields,
    finite_in,
    int_field,
    text_field,
)
from streams.domain.features import SupportState
from streams.domain.recent_ids import RecentIds
from streams.families.base import Family


def parse(record: Mapping[str, Any]) -> SupportEvent:
    event_id, customer_id, occurred_at = common_fields(record)
    sentiment = finite_in(record, "sentiment", -1.0, 1.0)
    kind = str(record.get("kind") or "feedback")
    csat = int_field(record, "csat", 1, 5, optional=True)
    nps = int_field(record, "nps", 0, 10, optional=True)
    if kind == "csat_response" and csat is None:
        raise bad_field("csat", "a csat_response needs a csat value")
    if kind == "nps_response" and nps is None:
        raise bad_field("nps", "an nps_response needs an nps value")
    return SupportEvent(
        event_id, customer_id, occurred_at, kind=kind,
        ticket_id=text_field(record, "ticket_id", optional=True),
        csat=csat, nps=nps, sentiment=sentiment,
        category=text_field(record, "category", optional=True),
    )


def sample(n: int, customer: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{customer}-support-{n}", "customer_id": customer,
            "occurred_at": at, "kind": "ticket_opened", "ticket_id": f"{customer}-t{n}",
            "csat": None, "nps": None, "sentiment": -0.2, "category": "billing"}


FAMILY: Family = Family(
    "support", "support", "SupportEvent", parse,
    new_state=lambda window, weeks: SupportState(RecentIds(window), weeks),
    load_state=lambda data, window, weeks: SupportState.from_json(data, window, weeks),
    sample=sample)
