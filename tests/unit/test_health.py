from datetime import UTC, datetime

from streams.domain.buckets import DAY_MS
from streams.domain.events import Consent
from streams.domain.features import ProfileState, RecentIds
from streams.domain.health import CustomerHealth, evaluate
from streams.domain.scoring import load_config

CONFIG = load_config()
DAY0 = 20_000  # days since epoch


def profile(**kw):
    p = ProfileState(RecentIds(8), at_ms=0, segment="b2c", signup_ms=(DAY0 - 400) * DAY_MS)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def run(health, day, prof=None, trigger_id="e"):
    return evaluate(health, CONFIG, customer_id="c1", at_ms=int(day * DAY_MS), profile=prof,
                    trigger="event", trigger_id=trigger_id, score_step=5.0)


def test_first_score_is_published_with_contributions():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {
        "purchase.last_at_d": DAY0, "purchase.gap_mean_d": 7.0, "purchase.gap_std_d": 1.0})
    (kind, record), = run(health, DAY0, profile())
    assert kind == "HealthScoreChanged"
    assert record["score"] == 100.0 and record["band"] == "healthy"
    assert record["previous_score"] is None
    assert record["contributions"][0]["signal"] == "purchase_recency"
    assert record["config_version"] == CONFIG.version
    assert record["occurred_at"] == datetime.fromtimestamp(DAY0 * 86400, tz=UTC)


def test_lapse_yields_one_at_risk_with_reason_team_fit_consent_and_play():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {
        "purchase.last_at_d": DAY0, "purchase.gap_mean_d": 7.0, "purchase.gap_std_d": 1.0})
    prof = profile(mrr_minor=10_000, cost_to_serve_minor=2_000, products=1,
                   consent=Consent(email=True, sms=True))
    run(health, DAY0, prof)
    outputs = run(health, DAY0 + 30, prof, "timer")
    kinds = [k for k, _ in outputs]
    assert kinds == ["HealthScoreChanged", "CustomerAtRisk"]
    alert = outputs[1][1]
    assert alert["event_id"] == "c1:health_at_risk:1"
    assert alert["reasons"][0]["code"] == "purchase_lapse"
    assert alert["churn_reason"] == "roi_not_seen"
    assert alert["route_to_team"] == "customer_success"
    assert alert["fit_status"] == "grow" and alert["profitability"] == 0.8
    assert alert["contactable"] is True and alert["channels"] == ["email", "sms"]
    assert "20% off" in alert["suggested_play"]
    # evaluating again changes nothing: no second alert, no second score change
    assert run(health, DAY0 + 30, prof, "timer") == []


def test_customer_without_consent_is_reported_not_contactable():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {"purchase.last_at_d": DAY0})
    outputs = run(health, DAY0 + 200, profile())
    alert = dict(outputs)["CustomerAtRisk"]
    assert alert["contactable"] is False and alert["channels"] == []
    assert alert["fit_status"] == "unknown"


def test_older_signal_update_does_not_override_newer():
    health = CustomerHealth()
    assert health.update_signals("support", 200, {"support.nps": 9.0})
    assert not health.update_signals("support", 100, {"support.nps": 2.0})
    assert health.signals == {"support.nps": 9.0}


def test_state_round_trips():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {"purchase.last_at_d": DAY0})
    run(health, DAY0 + 100, profile())
    assert CustomerHealth.from_json(health.to_json()) == health
