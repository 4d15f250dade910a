"""The real worker process on the real broker: scripted histories in, decoded outputs out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import murmur2

from streams.codec import build_codec
from streams.kafka_io import collect, make_producer, produce_raw, produce_records
from streams.replay import LocalPipeline
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_PURCHASES,
    TOPIC_RECOVERED,
    Settings,
)
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
OUTPUTS = [TOPIC_HEALTH, TOPIC_AT_RISK, TOPIC_RECOVERED]


def profile(customer: str, *, at: datetime = T0, email: bool = True) -> tuple[str, dict]:
    return ("ProfileChange", {
        "event_id": f"{customer}-profile-1", "customer_id": customer, "occurred_at": at,
        "segment": "b2c", "signup_at": at - timedelta(days=400), "plan": "standard",
        "mrr_minor": 5000, "cost_to_serve_minor": 1000, "currency": "EUR", "products": 1,
        "referrals": 0, "consent": {"email": email, "sms": False, "phone": False,
                                    "push": False}})


def purchase(customer: str, n: int, day: float, amount: int = 2500) -> tuple[str, dict]:
    return ("Purchase", {
        "event_id": f"{customer}-p-{n}", "customer_id": customer,
        "occurred_at": T0 + timedelta(days=day), "order_id": f"{customer}-o-{n}",
        "amount_minor": amount, "currency": "EUR", "items": 1, "channel": "web"})


def login(customer: str, n: int, day: float) -> tuple[str, dict]:
    return ("Engagement", {
        "event_id": f"{customer}-e-{n}", "customer_id": customer,
        "occurred_at": T0 + timedelta(days=day), "kind": "login", "count": 1,
        "duration_s": None, "feature": None})


@pytest.fixture
def settings(event_settings: Callable[..., Settings]) -> Settings:
    # no silence ticks here: these tests pin the exact order of evaluations
    return event_settings(lapse_check_interval_s=3600, gauges_interval_s=0.5)


def test_lapsing_buyer_yields_exact_health_changes_and_one_at_risk(settings, worker):
    codec = build_codec(settings)
    phases = [
        [profile("alice")],
        [purchase("alice", n, 7.0 * n) for n in range(8)],
        [login("alice", 1, 98.0)],  # seven weeks after the last weekly purchase
    ]
    consumed = 0
    for phase in phases:
        produce_records(settings, codec, phase)
        consumed += len(phase)
        worker.wait_metric("churnwatch_events_applied_total", consumed)

    # the same records through the same domain code in process give the same outputs
    expected = LocalPipeline(settings).run(r for phase in phases for r in phase)
    outputs = collect(settings, codec, OUTPUTS, timeout=60,
                      until=lambda got: len(got) >= len(expected))
    got = [(type_name, record) for _, type_name, record in outputs]

    def by_type(records: list[tuple[str, dict]]) -> dict[str, list[dict]]:
        # each output topic keeps its order; the reader interleaves topics its own way
        return {t: [r for name, r in records if name == t] for t in {n for n, _ in records}}

    assert by_type(got) == by_type(expected)

    health = [r for t, r in got if t == "HealthScoreChanged"]
    assert (health[0]["previous_band"], health[0]["band"]) == (None, "healthy")
    first = {c["signal"]: c for c in health[0]["contributions"]}
    assert set(first) == {"purchase_recency", "purchase_days_since", "purchase_orders",
                          "products_held", "no_upsell_by_day_90"}
    assert first["purchase_recency"]["points"] == 100.0
    # the daily silence checks that fell due before the login ran first, as of their due
    # times: the score slid through watch into at_risk while the customer was silent
    bands = [h["band"] for h in health]
    assert bands.index("watch") < bands.index("at_risk")
    lapsed = health[bands.index("at_risk")]
    assert lapsed["trigger"] == "timer"
    assert T0 + timedelta(days=49) < lapsed["occurred_at"] < T0 + timedelta(days=98)
    (login_score,) = [h for h in health if h["trigger"] == "event"
                      and h["occurred_at"] == T0 + timedelta(days=98)]
    assert {c["signal"] for c in login_score["contributions"]} >= {
        "purchase_recency", "engagement_recency"}
    (alert,) = [r for t, r in got if t == "CustomerAtRisk"]
    assert alert["event_id"] == "alice:health_at_risk:1"
    assert alert["reasons"][0]["code"] == "purchase_lapse"
    assert alert["churn_reason"] == "roi_not_seen"
    assert alert["route_to_team"] == "customer_success"
    assert (alert["fit_status"], alert["profitability"]) == ("grow", 0.8)
    assert alert["contactable"] is True and alert["channels"] == ["email"]
    assert alert["suggested_play"].startswith("Incentive: 20% off")
    assert alert["occurred_at"] == lapsed["occurred_at"]
    assert alert["config_version"] == lapsed["config_version"]

    # latency and lag metrics
    assert worker.metric("churnwatch_end_to_end_seconds_count", type="CustomerAtRisk") == 1
    assert worker.metric("churnwatch_at_risk_total", churn_reason="roi_not_seen",
                         team="customer_success") == 1
    assert worker.metric("churnwatch_event_age_seconds_count", step="purchases") == 8
    purchases = settings.topic(TOPIC_PURCHASES)

    def lag_lines() -> list[str]:
        answer = worker.get("/metrics")
        text = answer[1] if answer else ""
        return [line for line in text.splitlines()
                if line.startswith("churnwatch_consumer_lag{") and purchases in line]

    # every partition of the input topic is reported, and drains to 0 once committed
    wait_for(lambda: len(lag_lines()) == settings.partitions
             and all(line.endswith(" 0.0") for line in lag_lines()),
             timeout=60, what="consumer lag 0 on every purchases partition",
             on_timeout=lambda: "\n".join(lag_lines()))

    # the live retention gauges see the same customer
    worker.wait_metric("churnwatch_customers", 1, band="at_risk")
    assert worker.metric("churnwatch_customers", band="healthy") == 0
    assert worker.metric("churnwatch_customers_by_segment", segment="b2c") == 1
    assert worker.metric("churnwatch_customers_by_activity", state="active") == 1  # a login


def test_bad_records_are_dead_lettered_and_the_worker_keeps_going(settings, worker):
    codec = build_codec(settings)
    _, good = purchase("bob", 1, 1.0)
    negative = dict(good, event_id="neg", amount_minor=-100)
    future = dict(good, event_id="fut", occurred_at=datetime.now(UTC) + timedelta(days=30))
    _, engagement = login("bob", 1, 1.0)
    foreign = b"\xc3\x01" + bytes(range(8)) + b"\x02ab"
    bad = [
        (b"not avro at all", "malformed"),
        (foreign, "unknown_schema"),
        (codec.encode("Engagement", engagement), "wrong_schema"),
        (codec.encode("Purchase", negative), "invalid_field"),
        (codec.encode("Purchase", future), "in_future"),
    ]
    for payload, _ in bad:
        produce_raw(settings, TOPIC_PURCHASES, b"bob", payload)
    produce_records(settings, codec, [("Purchase", good)])

    letters = collect(settings, codec, [TOPIC_DEAD_LETTER], timeout=60,
                      until=lambda got: len(got) >= len(bad))
    assert [(r["payload"], r["reason"]) for _, _, r in letters] == bad
    for _, type_name, record in letters:
        assert type_name == "DeadLetter"
        assert record["source_topic"] == settings.topic(TOPIC_PURCHASES)
        assert record["step"] == "purchases" and record["error"]
    assert len({(r["source_partition"], r["source_offset"]) for _, _, r in letters}) == 5
    assert letters[3][2]["event_id"] == "neg" and "amount_minor" in letters[3][2]["error"]

    health = collect(settings, codec, [TOPIC_HEALTH], timeout=60, until=bool)
    assert [(r["customer_id"], r["band"]) for _, _, r in health] == [("bob", "healthy")]
    assert worker.metric("churnwatch_dead_letters_total", step="purchases") == 5
    assert worker.proc.poll() is None


def test_duplicates_and_wrong_keys(settings, worker):
    codec = build_codec(settings)
    first = purchase("carol", 1, 1.0)
    produce_records(settings, codec, [first, first, first])
    # a record keyed by something other than its customer id is re-keyed, not lost
    produce_raw(settings, TOPIC_PURCHASES, b"wrong-key", codec.encode(*purchase("dave", 1, 1.0)))
    # a record with the right key on the wrong partition (a producer hashing keys with
    # another partitioner) is moved to the customer's partition too
    producer = make_producer(settings)
    right = (murmur2(b"hank") & 0x7FFFFFFF) % settings.partitions
    producer.produce(settings.topic(TOPIC_PURCHASES), key=b"hank",
                     value=codec.encode(*purchase("hank", 1, 1.0)),
                     partition=(right + 1) % settings.partitions)
    assert producer.flush(30) == 0
    worker.wait_metric("churnwatch_duplicate_events_total", 2, step="purchases")
    worker.wait_metric("churnwatch_events_accepted_total", 3, step="purchases")
    health = collect(settings, codec, [TOPIC_HEALTH], timeout=60,
                     until=lambda got: len(got) >= 3)
    assert sorted(r["customer_id"] for _, _, r in health) == ["carol", "dave", "hank"]
    assert worker.metric("churnwatch_rekeyed_events_total", step="purchases") == 2
    assert worker.metric("churnwatch_events_accepted_total", step="purchases") == 3


@pytest.mark.parametrize("compression", ["lz4", "snappy", "zstd", "gzip"])
def test_compressed_batches_are_read(settings, worker, compression):
    codec = build_codec(settings)
    producer = make_producer(settings, **{"compression.type": compression})
    produce_records(settings, codec, [purchase("gus", 1, 1.0)], producer=producer)
    health = collect(settings, codec, [TOPIC_HEALTH], timeout=60, until=bool)
    assert [(r["customer_id"], r["band"]) for _, _, r in health] == [("gus", "healthy")]
    assert worker.proc.poll() is None


def test_erasure_forgets_the_customer_end_to_end(settings, worker):
    codec = build_codec(settings)
    produce_records(settings, codec, [profile("ivy"), purchase("ivy", 1, 1.0)])
    worker.wait_metric("churnwatch_events_applied_total", 2)
    worker.wait_metric("churnwatch_customers", 1, band="healthy")
    erasure = ("ErasureRequest", {"event_id": "ivy-erase", "customer_id": "ivy",
                                  "occurred_at": T0 + timedelta(days=2)})
    produce_records(settings, codec, [erasure])
    got = collect(settings, codec, [TOPIC_HEALTH, TOPIC_AT_RISK], timeout=60,
                  until=lambda got: sum(t == "Tombstone" for _, t, _ in got) >= 2)
    # the profile and the purchase reach the scorer through different topics: when the
    # purchase comes first, the profile's arrival changes the score once more
    kinds = [(topic, t) for topic, t, _ in got]
    assert kinds[-2:] == [(TOPIC_HEALTH, "Tombstone"), (TOPIC_AT_RISK, "Tombstone")]
    assert 1 <= len(kinds[:-2]) <= 2
    assert set(kinds[:-2]) == {(TOPIC_HEALTH, "HealthScoreChanged")}
    # the worker holds nothing of the customer any more
    wait_for(lambda: worker.metric("churnwatch_customers", band="healthy") == 0
             and worker.metric("churnwatch_customers", band="unscored") == 0,
             timeout=30, what="the erased customer gone from the gauges")
