"""The scripted scenario behind the demo: reproducible, well-formed, and telling."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from streams.codec import build_codec
from streams.domain.events import ProfileChange
from streams.families import parse_event
from streams.replay import LocalPipeline
from streams.scenario import (
    CHAMPION,
    LAPSING,
    PERSONAS,
    SILENCE,
    STEADY,
    persona_of,
    personas,
    scenario,
)
from streams.settings import Settings

CUSTOMERS = 60


@pytest.fixture(scope="module")
def records():
    return scenario(CUSTOMERS)


def test_same_arguments_give_the_same_records(records):
    assert scenario(CUSTOMERS) == records
    assert scenario(CUSTOMERS, seed=8) != records


def test_every_persona_is_present_even_in_a_small_scenario():
    assert set(personas(6).values()) == set(PERSONAS)
    assert set(personas(CUSTOMERS).values()) == set(PERSONAS)
    cast = personas(CUSTOMERS, seed=3)
    assert all(persona_of(c, seed=3) == p for c, p in cast.items())
    assert persona_of("someone-else") is None


def test_event_ids_are_unique_and_records_sorted_by_event_time(records):
    ids = [r["event_id"] for _, r in records]
    assert len(ids) == len(set(ids))
    times = [r["occurred_at"] for _, r in records]
    assert times == sorted(times)
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times)


def test_records_stay_within_the_weeks_asked_for():
    start = datetime(2025, 3, 3, tzinfo=UTC)
    short = scenario(20, weeks=6, start=start)
    assert min(r["occurred_at"] for _, r in short) >= start
    assert max(r["occurred_at"] for _, r in short) < start + timedelta(weeks=6)


def test_every_record_is_a_valid_event_and_encodes(records):
    codec = build_codec(Settings(_env_file=None))
    for type_name, record in records:
        parse_event(type_name, record)
        assert codec.decode(codec.encode(type_name, record), type_name) == (type_name, record)
    assert {t for t, _ in records} == {"ProfileChange", "Purchase", "Engagement",
                                      "SupportEvent"}
    assert {r["currency"] for t, r in records if t == "Purchase"} == {"EUR"}


def test_each_customer_starts_with_a_profile(records):
    first: dict[str, str] = {}
    for type_name, record in records:
        first.setdefault(record["customer_id"], type_name)
    assert len(first) == CUSTOMERS
    assert set(first.values()) == {"ProfileChange"}
    profiles = [parse_event(t, r) for t, r in records if t == "ProfileChange"]
    assert all(isinstance(p, ProfileChange) for p in profiles)
    assert {p.segment for p in profiles} == {"b2b", "b2c"}
    assert any(not p.consent.channels() for p in profiles)  # some may not be contacted
    b2b = [p for p in profiles if p.segment == "b2b"]
    assert all(p.mrr_minor and p.cost_to_serve_minor is not None for p in b2b)


def test_silent_customers_are_silent_for_the_last_five_weeks(records):
    end = max(r["occurred_at"] for _, r in records)
    last: dict[str, datetime] = {}
    for _, record in records:
        last[record["customer_id"]] = record["occurred_at"]
    cast = personas(CUSTOMERS)
    for customer, persona in cast.items():
        if persona == SILENCE:
            assert end - last[customer] > timedelta(weeks=5)
        if persona in (STEADY, CHAMPION):
            assert end - last[customer] < timedelta(weeks=1)


def test_the_pipeline_flags_the_lapsing_personas_and_not_the_healthy_ones():
    # what the demo shows, without a broker: the same steps the workers run
    customers = 120
    outputs = LocalPipeline(Settings(_env_file=None, clock="event")).run(
        scenario(customers), ticks=True)
    cast = personas(customers)
    flagged = Counter(cast[c] for c in {r["customer_id"] for t, r in outputs
                                        if t == "CustomerAtRisk"})
    size = Counter(cast.values())
    for persona in LAPSING:
        assert flagged[persona] >= 0.8 * size[persona], (persona, flagged)
    for persona in set(PERSONAS) - LAPSING:
        assert flagged[persona] <= 0.05 * size[persona], (persona, flagged)
