"""What the customer lookup answers, from the state the scorer keeps (replayed in process)."""

from datetime import UTC, datetime, timedelta

import pytest

from streams.lookup import authorized, band_members, customer_health
from streams.pipeline import HEALTH_TABLE
from streams.replay import LocalPipeline
from streams.settings import Settings

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def profile(customer, *, email=True):
    return ("ProfileChange", {
        "event_id": f"{customer}-profile", "customer_id": customer, "occurred_at": T0,
        "segment": "b2b", "signup_at": T0 - timedelta(days=400), "plan": "standard",
        "mrr_minor": 10_000, "cost_to_serve_minor": 2_000, "products": 2, "referrals": 0,
        "consent": {"email": email, "sms": False, "phone": False, "push": False}})


def purchase(customer, n, day):
    return ("Purchase", {
        "event_id": f"{customer}-p{n}", "customer_id": customer,
        "occurred_at": T0 + timedelta(days=day), "order_id": f"{customer}-o{n}",
        "amount_minor": 2500, "currency": "EUR", "items": 1, "channel": "web"})


@pytest.fixture(scope="module")
def table():
    pipeline = LocalPipeline(Settings(_env_file=None, clock="event"))
    for customer in ("ann", "bob"):
        pipeline.process(*profile(customer, email=customer == "ann"))
    for n in range(8):  # ann buys weekly and keeps on; bob buys weekly, then stops
        pipeline.process(*purchase("ann", n, 7.0 * n))
        if n < 4:
            pipeline.process(*purchase("bob", n, 7.0 * n))
    pipeline.tick(T0 + timedelta(days=80))  # bob: 8 weeks without its weekly purchase
    return pipeline, pipeline.tables[HEALTH_TABLE]


def test_a_customer_answer_explains_its_score(table):
    pipeline, health = table
    ann = customer_health("ann", health[b"ann"], pipeline.scoring)
    assert ann["customer_id"] == "ann" and ann["segment"] == "b2b"
    assert ann["band"] in ("healthy", "watch", "at_risk") and 0 <= ann["score"] <= 100
    assert ann["evaluated_at"].endswith("Z")
    assert ann["consent"] == {"contactable": True, "channels": ["email"]}
    parts = ann["contributions"]
    assert parts and all(part["reason"] for part in parts)
    assert sum(p["contribution"] for p in parts) == pytest.approx(ann["score"], abs=0.5)
    lost = [100 * p["weight"] - p["contribution"] for p in parts]
    assert lost == sorted(lost, reverse=True)  # the measures that cost most come first


def test_a_lapsed_customer_is_at_risk_with_its_episode(table):
    pipeline, health = table
    bob = customer_health("bob", health[b"bob"], pipeline.scoring)
    assert bob["alert"]["state"] == "at_risk" and bob["alert"]["episode_id"] == "bob:1"
    assert bob["alert"]["at_risk_since"] is not None
    assert bob["consent"] == {"contactable": False, "channels": []}
    listed = band_members(health.items(), bob["published_band"], 10)
    assert [c["customer_id"] for c in listed][:1] == ["bob"]


def test_a_band_list_is_worst_first_and_limited(table):
    _, health = table
    everyone = [c for band in ("healthy", "watch", "at_risk")
                for c in band_members(health.items(), band, 10)]
    assert sorted(c["customer_id"] for c in everyone) == ["ann", "bob"]
    assert band_members(health.items(), "healthy", 1) == band_members(
        health.items(), "healthy", 10)[:1]


@pytest.mark.parametrize(("header", "ok"), [
    ("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer s3cret ", True),
    ("Bearer wrong", False), ("s3cret", False), ("Basic s3cret", False), ("", False),
    (None, False)])
def test_the_bearer_token_is_required(header, ok):
    assert authorized(header, "s3cret") is ok
    assert not authorized(header, "")  # no token configured: nothing is allowed


def test_the_lookup_cannot_be_switched_on_without_a_token():
    with pytest.raises(ValueError, match="CHURN_LOOKUP_TOKEN"):
        Settings(_env_file=None, lookup_enabled=True)
    assert Settings(_env_file=None, lookup_enabled=True, lookup_token="x").lookup_enabled
