from datetime import UTC, datetime

from streams.domain.buckets import DAY_MS
from streams.domain.events import Consent
from streams.domain.features import ProfileState
from streams.domain.health import CustomerHealth, evaluate
from streams.domain.recent_ids import RecentIds
from streams.domain.scoring import load_config
from streams.domain.stored import dumps, loads

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
    outputs = run(health, DAY0 + 60, prof, "timer")  # a weekly buyer silent for 8 weeks
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
    assert alert["suggested_play"].startswith("No contact consent")
    assert alert["fit_status"] == "unknown"


def test_a_late_events_update_carries_the_whole_state_and_wins():
    health = CustomerHealth()
    health.update_signals("purchase", 200, {"purchase.orders_total": 2.0})
    # a late purchase (event time 150) arrives: its update describes all three orders
    health.update_signals("purchase", 150, {"purchase.orders_total": 3.0})
    assert health.signals == {"purchase.orders_total": 3.0}
    assert health.first_ms == 150  # the earliest update seen, whatever the order


def test_state_round_trips():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {"purchase.last_at_d": DAY0})
    run(health, DAY0 + 100, profile())
    assert CustomerHealth.from_json(health.to_json()) == health


def test_stored_signals_round_trip_exactly_and_the_former_format_still_loads():
    health = CustomerHealth()
    signals = {"purchase.orders_total": 3.0, "support.sentiment_28d": -0.0,
               "purchase.last_at_d": 20453.45833, "plugin.score": 0.5}
    health.update_signals("purchase", DAY0 * DAY_MS, signals)
    again = CustomerHealth.from_json(loads(dumps(health.to_json())))
    assert again == health
    assert all(type(v) is float for v in again.signals.values())
    assert str(again.signals["support.sentiment_28d"]) == "-0.0"
    former = {"s": {"1": 3.0, "14": -0.0, "0": 20453.45833, "plugin.score": 0.5},
              "f": DAY0 * DAY_MS, "a": None, "p": None, "b": None,
              "x": ["healthy", 0, 0, 0, None, None], "d": None, "q": 0, "e": None, "c": 0,
              "pf": None}
    assert CustomerHealth.from_json(former) == health


def test_champion_once_per_episode_with_the_rules_that_hold():
    health = CustomerHealth()
    big = {"purchase.last_at_d": DAY0, "purchase.spend_28d": 80_000.0,
           "purchase.orders_28d": 3.0}
    health.update_signals("purchase", DAY0 * DAY_MS, big)
    prof = profile(consent=Consent(push=True))
    outputs = dict(run(health, DAY0, prof, "p1"))
    champion = outputs["CustomerChampion"]
    assert champion["event_id"] == "c1:champion:1"
    assert champion["qualified_by"] == ["purchase.spend_28d >= 50000"]
    assert champion["channels"] == ["push"] and champion["reward"]
    # still a champion: no second event
    health.update_signals("purchase", (DAY0 + 1) * DAY_MS, dict(big, **{
        "purchase.last_at_d": DAY0 + 1}))
    assert "CustomerChampion" not in dict(run(health, DAY0 + 1, prof, "p2"))
    # drops out of the tier, comes back: a second episode
    health.update_signals("purchase", (DAY0 + 2) * DAY_MS, dict(big, **{
        "purchase.last_at_d": DAY0 + 2, "purchase.spend_28d": 100.0}))
    run(health, DAY0 + 2, prof, "p3")
    health.update_signals("purchase", (DAY0 + 3) * DAY_MS, dict(big, **{
        "purchase.last_at_d": DAY0 + 3}))
    assert dict(run(health, DAY0 + 3, prof, "p4"))["CustomerChampion"]["event_id"] == (
        "c1:champion:2")


def test_lapsing_customer_is_never_a_champion():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {
        "purchase.last_at_d": DAY0 - 200, "purchase.spend_28d": 80_000.0})
    assert "CustomerChampion" not in dict(run(health, DAY0, profile()))


def test_score_trend_against_its_own_averages():
    health = CustomerHealth()
    assert health.trends(80.0, 0) == (None, None)
    trend_7d, trend_30d = health.trends(40.0, 7 * DAY_MS)
    assert trend_7d == -40.0 and trend_30d == -40.0
    trend_7d, trend_30d = health.trends(40.0, 14 * DAY_MS)
    # the 7-day average has caught up more than the 30-day one
    assert trend_7d is not None and trend_30d is not None
    assert -40.0 < trend_30d < trend_7d < 0


def test_champion_rules_are_per_segment_and_need_a_profile():
    big_invoice = {"purchase.last_at_d": DAY0, "purchase.spend_28d": 80_000.0}
    b2b = CustomerHealth()
    b2b.update_signals("purchase", DAY0 * DAY_MS, big_invoice)
    assert "CustomerChampion" not in dict(run(b2b, DAY0, profile(segment="b2b")))
    unknown = CustomerHealth()
    unknown.update_signals("purchase", DAY0 * DAY_MS, big_invoice)
    assert "CustomerChampion" not in dict(run(unknown, DAY0, None))


def test_churn_reason_is_the_category_that_costs_most_points():
    health = CustomerHealth()
    health.update_signals("purchase", DAY0 * DAY_MS, {
        "purchase.last_at_d": DAY0, "purchase.gap_mean_d": 14.0, "purchase.gap_std_d": 0.0})
    health.update_signals("support", DAY0 * DAY_MS, {
        "support.open_tickets": 1.0, "support.sentiment_28d": -0.9, "support.csat": 1.0})
    health.first_ms = (DAY0 - 60) * DAY_MS  # known for a while: past the warm-up
    outputs = dict(run(health, DAY0 + 35, profile(segment="b2b")))
    alert = outputs["CustomerAtRisk"]
    codes = [r["code"] for r in alert["reasons"]]
    # the lapse is the single biggest reason, but the support problems together cost more
    assert codes[0] == "purchase_lapse"
    assert {"open_tickets", "negative_sentiment", "low_csat"} <= set(codes)
    assert alert["churn_reason"] == "missing_features"
    assert alert["route_to_team"] == "product_and_support"


def test_a_capped_reason_says_why_its_value_looks_fine():
    health = CustomerHealth()
    health.update_signals("engagement", DAY0 * DAY_MS, {
        "engagement.last_at_d": DAY0, "engagement.gap_mean_d": 1.0,
        "engagement.weeks_active_4": 4.0})
    health.first_ms = (DAY0 - 60) * DAY_MS
    alert = dict(run(health, DAY0 + 20, profile()))["CustomerAtRisk"]
    weekly = [r for r in alert["reasons"] if r["code"] == "not_weekly_engaged"]
    assert weekly and "capped by engagement_recency" in weekly[0]["text"]


def test_no_episode_starts_before_a_customer_was_seen_for_min_history_days():
    assert CONFIG.alerts.min_history_d > 0
    health = CustomerHealth()
    health.update_signals("engagement", DAY0 * DAY_MS, {
        "engagement.last_at_d": DAY0, "engagement.gap_mean_d": 1.0})
    early = DAY0 + CONFIG.alerts.min_history_d - 1
    outputs = run(health, early, profile())
    assert outputs and outputs[0][1]["band"] == "at_risk"  # the score says so...
    assert "CustomerAtRisk" not in dict(outputs)  # ...but one event is not evidence
    later = run(health, DAY0 + CONFIG.alerts.min_history_d, profile(), "timer")
    assert "CustomerAtRisk" in dict(later)


def test_a_deferred_check_is_stored_and_lands_where_checking_at_once_would():
    """After an event the search for the next check that acts waits until a check could
    act at all; stored and read back in between, it then publishes what an immediate
    search would have scheduled."""
    import copy

    from streams.domain.health import compute_score, next_check_ms
    from streams.pipeline import score_update, tick_update
    from streams.settings import Settings

    signals = {"purchase.last_at_d": DAY0 - 50.0, "purchase.orders_total": 2.0,
               "purchase.first_at_d": DAY0 - 80.0}
    lazy = CustomerHealth()
    lazy.update_signals("purchase", DAY0 * DAY_MS, signals)
    run(lazy, DAY0 - 1, trigger_id="e0")  # the first evaluation moves the alert state
    eager = copy.deepcopy(lazy)
    run(lazy, DAY0)
    assert lazy.provisional and lazy.due_ms == (DAY0 + 1) * DAY_MS
    stored = CustomerHealth.from_json(loads(dumps(lazy.to_json())))
    assert stored == lazy

    run(eager, DAY0)
    at_ms = DAY0 * DAY_MS
    score = compute_score(CONFIG, eager.signals, now_d=DAY0, segment="default",
                          tenure_d=None)
    eager.provisional = False
    eager.due_ms = next_check_ms(eager, CONFIG, at_ms, "default", None, settled=True,
                                 score=score, score_step=5.0)
    assert eager.due_ms > (DAY0 + 1) * DAY_MS

    def tick(health, day):
        return score_update(health, tick_update("c1", datetime.fromtimestamp(
            day * 86400, tz=UTC)), CONFIG, Settings(_env_file=None))[1]

    for day in range(DAY0 + 1, DAY0 + 60):
        assert tick(stored, day) == tick(eager, day)
    assert stored.due_ms == eager.due_ms and stored.published_score == eager.published_score
