"""The in-process pipeline: silence detection with no further input for a customer."""

from datetime import UTC, datetime, timedelta

from streams.domain.health import CustomerHealth
from streams.domain.stored import dumps, loads
from streams.replay import LocalPipeline
from streams.settings import Settings

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def settings():
    return Settings(_env_file=None, clock="event", allowed_lateness_s=86400)


def purchase(customer, n, day):
    return ("Purchase", {"event_id": f"{customer}-{n}", "customer_id": customer,
                         "occurred_at": T0 + timedelta(days=day), "order_id": f"o{n}",
                         "amount_minor": 1500, "currency": "EUR", "items": 1,
                         "channel": "web"})


def history():
    # "steady" buys fortnightly for 40 weeks; "quiet" buys fortnightly for 16 weeks, then stops
    records = [purchase("steady", n, 14 * n) for n in range(20)]
    records += [purchase("quiet", n, 14 * n + 1) for n in range(8)]
    return sorted(records, key=lambda r: r[1]["occurred_at"])


def test_silent_customer_is_flagged_by_the_timer_without_new_events():
    pipeline = LocalPipeline(settings())
    outputs = pipeline.run(history(), ticks=True)
    alerts = [r for t, r in outputs if t == "CustomerAtRisk"]
    assert [a["customer_id"] for a in alerts] == ["quiet"]
    (alert,) = alerts
    assert alert["reasons"][0]["code"] == "purchase_lapse"
    last_purchase = T0 + timedelta(days=14 * 7 + 1)
    lead = alert["occurred_at"] - last_purchase
    # flagged once the gap passed its fortnightly rhythm clearly, well before the stream ended
    assert timedelta(days=20) <= lead <= timedelta(days=40)
    timer_changes = [r for t, r in outputs
                     if t == "HealthScoreChanged" and r["trigger"] == "timer"]
    assert timer_changes and all(r["customer_id"] == "quiet" for r in timer_changes)


def test_without_ticks_silence_goes_unnoticed():
    outputs = LocalPipeline(settings()).run(history(), ticks=False)
    assert not [r for t, r in outputs if t == "CustomerAtRisk"]


def test_replay_is_deterministic_and_duplicates_change_nothing():
    once = LocalPipeline(settings()).run(history(), ticks=True)
    doubled = []
    for record in history():
        doubled += [record, record]
    twice = LocalPipeline(settings()).run(doubled, ticks=True)
    assert once == twice


def test_too_late_records_are_rejected_with_reason():
    pipeline = LocalPipeline(settings())
    pipeline.run(history())
    pipeline.process(*purchase("steady", 99, 1))
    assert [r.reason for r in pipeline.rejections] == ["too_late"]


def test_a_future_erasure_request_is_rejected_and_does_not_move_the_clock():
    pipeline = LocalPipeline(settings())
    pipeline.run(history()[:5])
    before = pipeline.clock.now()
    far = datetime(2099, 1, 1, tzinfo=UTC)
    pipeline.process("ErasureRequest", {"event_id": "x", "customer_id": "steady",
                                        "occurred_at": far})
    assert [r.reason for r in pipeline.rejections] == ["in_future"]
    assert pipeline.clock.now() == before
    # an erasure far in the past is honoured and does not move the clock either
    pipeline.process("ErasureRequest", {"event_id": "y", "customer_id": "steady",
                                        "occurred_at": T0 - timedelta(days=900)})
    assert pipeline.clock.now() == before
    assert all(b"steady" not in table for table in pipeline.tables.values())


def profile_change(customer, n, day, segment):
    return ("ProfileChange", {
        "event_id": f"{customer}-pr-{n}", "customer_id": customer,
        "occurred_at": T0 + timedelta(days=day), "segment": segment,
        "signup_at": T0 - timedelta(days=400), "plan": "pro", "mrr_minor": 10_000,
        "cost_to_serve_minor": 4_000, "currency": "EUR", "products": 2, "referrals": 0,
        "consent": {"email": True, "sms": False, "phone": False, "push": False}})


def test_the_scorer_scores_with_the_profile_its_updates_brought():
    # a worker's profile agent may run ahead of the scorer: the scorer must not see a
    # profile before the update that carries it, so it never reads the profile table
    pipeline = LocalPipeline(Settings(_env_file=None, clock="event", score_step=0.0,
                                      allowed_lateness_s=86400))  # publish every score
    first = pipeline.process(*purchase("c", 0, 0))
    assert first[0][1]["segment"] == "default"
    pipeline.process(*profile_change("c", 0, 1, "b2b"))
    kept = pipeline.health["c"].profile
    assert kept is not None and kept.segment == "b2b" and kept.products == 2
    # the table moving on (another change not yet delivered to the scorer) changes nothing
    table_state = pipeline.features["profile-features"]["c"]
    table_state.segment = "b2c"
    pipeline.process(*purchase("c", 1, 2))
    later = pipeline.tick(T0 + timedelta(days=60))  # silence checks: the score falls
    assert later and {r["segment"] for _, r in later} == {"b2b"}
    # and the copy survives the health state's round trip through its table
    restored = CustomerHealth.from_json(loads(dumps(pipeline.health["c"].to_json())))
    assert restored.profile == kept
