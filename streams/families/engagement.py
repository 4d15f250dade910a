"""The engagement family: logins, sessions, feature use, newsletter opens.

Its event (:class:`~streams.domain.events.Engagement`) and feature state
(:class:`~streams.domain.features.EngagementState`, which the retention gauges read too)
live in the domain; this module parses records into events and names the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.events import (
    MAX_COUNT,
    MAX_DURATION_S,
    Engagement,
    common_fields,
    int_field,
    text_field,
)
from streams.domain.features import EngagementState
from streams.domain.recent_ids import RecentIds
from streams.families.base import Family


def parse(record: Mapping[str, Any]) -> Engagement:
    event_id, customer_id, occurred_at = common_fields(record)
    return Engagement(
        event_id, customer_id, occurred_at,
        kind=str(record.get("kind") or "other"),
        count=int_field(record, "count", 0, MAX_COUNT, default=1) or 0,
        duration_s=int_field(record, "duration_s", 0, MAX_DURATION_S, optional=True),
        feature=text_field(record, "feature", optional=True),
    )


def sample(n: int, customer: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{customer}-engagement-{n}", "customer_id": customer,
            "occurred_at": at, "kind": "session", "count": 1, "duration_s": 60 + n,
            "feature": None}


FAMILY: Family = Family(
    "engagement", "engagement", "Engagement", parse,
    new_state=lambda window, weeks: EngagementState(RecentIds(window), weeks),
    load_state=lambda data, window, weeks: EngagementState.from_json(data, window, weeks),
    sample=sample)
