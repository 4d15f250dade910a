"""The profile family: segment, signup, plan and revenue, products held, consent.

Its event (:class:`~streams.domain.events.ProfileChange`) and feature state
(:class:`~streams.domain.features.ProfileState`: the score also reads the profile itself,
for segment, tenure, fit and consent) live in the domain; this module parses records into
events and names the family.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from streams.domain.events import (
    MAX_AMOUNT_MINOR,
    MAX_COUNT,
    Consent,
    ProfileChange,
    bad_field,
    common_fields,
    int_field,
    text_field,
    time_field,
)
from streams.domain.features import ProfileState
from streams.domain.recent_ids import RecentIds
from streams.families.base import Family


def parse(record: Mapping[str, Any]) -> ProfileChange:
    event_id, customer_id, occurred_at = common_fields(record)
    consent = record.get("consent") or {}
    segment = text_field(record, "segment")
    assert segment is not None
    signup_at = time_field(record, "signup_at")
    if signup_at - timedelta(days=1) > occurred_at:
        raise bad_field("signup_at", f"{signup_at.isoformat()} is after the profile change "
                                     f"at {occurred_at.isoformat()}")
    return ProfileChange(
        event_id, customer_id, occurred_at,
        segment=segment.lower(),
        signup_at=signup_at,
        plan=text_field(record, "plan", optional=True),
        mrr_minor=int_field(record, "mrr_minor", 0, MAX_AMOUNT_MINOR, optional=True),
        cost_to_serve_minor=int_field(record, "cost_to_serve_minor", 0, MAX_AMOUNT_MINOR,
                                      optional=True),
        currency=text_field(record, "currency", optional=True),
        products=int_field(record, "products", 0, 10_000, default=1) or 0,
        referrals=int_field(record, "referrals", 0, MAX_COUNT, default=0) or 0,
        consent=Consent(**{k: bool(consent.get(k, False))
                           for k in ("email", "sms", "phone", "push")}),
    )


def sample(n: int, customer: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{customer}-profile-{n}", "customer_id": customer,
            "occurred_at": at, "segment": "b2c", "signup_at": at - timedelta(days=400),
            "plan": "standard", "mrr_minor": 4900 + n, "cost_to_serve_minor": 1000,
            "currency": "EUR", "products": 1 + n % 3, "referrals": 0,
            "consent": {"email": True, "sms": False, "phone": False, "push": False}}


FAMILY: Family = Family(
    "profile", "profile", "ProfileChange", parse,
    new_state=lambda window, weeks: ProfileState(RecentIds(window)),
    load_state=lambda data, window, weeks: ProfileState.from_json(data, window),
    sample=sample)
