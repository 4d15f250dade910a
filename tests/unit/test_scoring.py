import math
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.scoring import (
    ScoringConfigError,
    compute_score,
    interpolate,
    load_config,
    parse_config,
    steady_until,
)

CONFIG = load_config()
CONFIG_TEXT = resources.files("streams").joinpath("config/scoring.toml").read_text("utf-8")
SIGNALS = [
    "purchase.last_at_d", "purchase.gap_mean_d", "purchase.gap_std_d", "purchase.freq_trend",
    "purchase.spend_trend", "engagement.last_at_d", "engagement.gap_mean_d",
    "engagement.trend", "engagement.weeks_active_4", "support.open_tickets",
    "support.sentiment_28d", "support.csat", "support.nps", "profile.products",
]
signal_maps = st.dictionaries(
    st.sampled_from(SIGNALS),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)


@given(signal_maps, st.floats(min_value=0, max_value=1e6),
       st.sampled_from(["b2c", "b2b", "default", "unknown"]),
       st.one_of(st.none(), st.floats(min_value=0, max_value=5000)))
def test_score_stays_within_0_100_and_missing_signals_never_raise(signals, now_d, seg, tenure):
    score = compute_score(CONFIG, signals, now_d=now_d, segment=seg, tenure_d=tenure)
    if score is None:
        return
    assert 0 <= score.score <= 100
    assert score.band in ("healthy", "watch", "at_risk")
    assert math.isclose(sum(c.weight for c in score.contributions), 1.0, rel_tol=1e-9)
    assert {c.signal for c in score.contributions if c.weight > 0} <= set(signals)
    # the contributions explain the whole score
    assert math.isclose(sum(c.contribution for c in score.contributions), score.score,
                        abs_tol=0.01)


def test_no_signals_means_no_score():
    assert compute_score(CONFIG, {}, now_d=100, segment="b2c", tenure_d=None) is None


def test_profile_context_alone_makes_no_score():
    assert compute_score(CONFIG, {"profile.products": 1.0}, now_d=100, segment="b2c",
                         tenure_d=400) is None


def test_purchase_only_history_scores_on_purchase_measures_alone():
    signals = {"purchase.last_at_d": 100.0, "purchase.gap_mean_d": 20.0,
               "purchase.gap_std_d": 0.0}
    on_time = compute_score(CONFIG, signals, now_d=110, segment="b2c", tenure_d=400)
    lapsed = compute_score(CONFIG, signals, now_d=170, segment="b2c", tenure_d=400)
    assert on_time is not None and lapsed is not None
    assert on_time.score > 95 and on_time.band == "healthy"
    assert lapsed.band == "at_risk"
    assert [c.measure for c in lapsed.contributions] == ["purchase_recency",
                                                         "purchase_days_since"]
    assert lapsed.contributions[0].value == pytest.approx(3.5)
    assert lapsed.contributions[1].value == pytest.approx(70.0)


def test_recency_is_measured_against_the_customers_own_rhythm():
    base = {"purchase.last_at_d": 100.0}
    weekly = compute_score(CONFIG, {**base, "purchase.gap_mean_d": 7.0,
                                    "purchase.gap_std_d": 1.0}, now_d=145, segment="b2c",
                           tenure_d=400)
    quarterly = compute_score(CONFIG, {**base, "purchase.gap_mean_d": 90.0,
                                       "purchase.gap_std_d": 10.0}, now_d=145,
                              segment="b2c", tenure_d=400)
    assert weekly is not None and quarterly is not None
    assert weekly.band == "at_risk" and quarterly.band == "healthy"


def test_stale_trends_cannot_outweigh_a_lapse():
    signals = {"purchase.last_at_d": 100.0, "purchase.gap_mean_d": 20.0,
               "purchase.gap_std_d": 0.0, "purchase.freq_trend": 1.1,
               "purchase.spend_trend": 1.1}
    fresh = compute_score(CONFIG, signals, now_d=101, segment="b2c", tenure_d=400)
    lapsed = compute_score(CONFIG, signals, now_d=190, segment="b2c", tenure_d=400)
    assert fresh is not None and lapsed is not None
    assert fresh.score > 90
    rhythm = [c for c in lapsed.contributions
              if c.measure in CONFIG.groups["purchase"].measures]
    assert rhythm[0].measure == "purchase_recency" and rhythm[0].points < 15
    assert all(c.points <= rhythm[0].points for c in rhythm)  # the trends are capped
    assert lapsed.band == "at_risk"


def test_expected_gap_has_a_floor():
    # three purchases on consecutive days are no 1-day rhythm: 10 quiet days are not a lapse
    signals = {"purchase.last_at_d": 100.0, "purchase.gap_mean_d": 1.0,
               "purchase.gap_std_d": 0.0}
    floor = CONFIG.measures["purchase_recency"].per_min_d
    assert floor == 14.0
    score = compute_score(CONFIG, signals, now_d=110, segment="b2c", tenure_d=400)
    assert score is not None
    assert score.contributions[0].value == pytest.approx(10 / floor)
    assert score.band == "healthy"
    unfloored = parse_config(
        CONFIG_TEXT.replace("per_min_d = 14.0", "per_min_d = 0.0"), "test")
    raw = compute_score(unfloored, signals, now_d=110, segment="b2c", tenure_d=400)
    assert raw is not None and raw.contributions[0].value == pytest.approx(10.0)
    assert raw.band == "at_risk"


def test_new_customer_uses_segment_norm():
    score = compute_score(CONFIG, {"purchase.last_at_d": 100.0}, now_d=115, segment="b2c",
                          tenure_d=400)
    assert score is not None
    assert score.contributions[0].value == pytest.approx(15 / 30)


def test_onboarding_profile_applies_in_first_90_days():
    signals = {"engagement.last_at_d": 10.0}
    young = compute_score(CONFIG, signals, now_d=11, segment="b2c", tenure_d=20)
    old = compute_score(CONFIG, signals, now_d=11, segment="b2b", tenure_d=200)
    assert young is not None and old is not None
    assert young.profile == "onboarding" and old.profile == "b2b"


def test_config_version_changes_with_content():
    text = CONFIG_TEXT
    a = parse_config(text)
    b = parse_config(text.replace("healthy_min = 60.0", "healthy_min = 61.0"))
    assert a.version != b.version and a.version.startswith("default-2+")


@pytest.mark.parametrize(("edit", "message"), [
    (("enter_below = 45.0", "enter_below = 65.0"), "exit_above must be higher"),
    (("purchase_recency = 0.3", "purchase_recenc = 0.3"), "groups.purchase"),
    (("churn_reason = \"low_usage\"", "churn_reason = \"bored\""), "churn_reason"),
    (("[bands]", "[bandz]"), "bands"),
    (('capped_by = "purchase_recency"', 'capped_by = "nps"'), "groups.purchase.capped_by"),
    (("curve = [[1.0, 100.0], [2.0, 65.0]", "curve = [[2.0, 100.0], [1.0, 65.0]"), "curve"),
])
def test_invalid_config_names_the_bad_key(edit, message):
    text = CONFIG_TEXT
    assert edit[0] in text
    with pytest.raises(ScoringConfigError, match=message):
        parse_config(text.replace(edit[0], edit[1], 1), "custom.toml")


def test_interpolate_is_flat_beyond_ends():
    curve = [(0.0, 0.0), (1.0, 100.0)]
    assert interpolate(curve, -5) == 0 and interpolate(curve, 5) == 100
    assert interpolate(curve, 0.25) == 25


def test_no_upsell_applies_only_past_day_90():
    signals = {"purchase.last_at_d": 100.0, "profile.products": 1.0}
    young = compute_score(CONFIG, signals, now_d=100, segment="b2b", tenure_d=60)
    old = compute_score(CONFIG, signals, now_d=100, segment="b2b", tenure_d=120)
    assert young is not None and old is not None
    assert "no_upsell_by_day_90" not in {c.measure for c in young.contributions}
    upsell = {c.measure: c for c in old.contributions}["no_upsell_by_day_90"]
    assert upsell.points == 20.0


def test_critical_feedback_caps_a_customer_who_still_buys():
    signals = {"purchase.last_at_d": 100.0, "purchase.gap_mean_d": 7.0,
               "purchase.gap_std_d": 1.0, "engagement.last_at_d": 100.0,
               "support.open_tickets": 4.0, "support.sentiment_28d": -0.8,
               "support.csat": 1.0, "support.nps": 2.0}
    score = compute_score(CONFIG, signals, now_d=101, segment="b2c", tenure_d=400)
    assert score is not None
    assert score.score == 40.0 and score.band == "at_risk"
    cap = score.contributions[-1]
    assert cap.measure == "feedback.critical" and cap.weight == 0 and cap.contribution < 0
    assert CONFIG.describe(cap.measure).churn_reason == "missing_features"
    # one bad answer alone is not critical
    mild = compute_score(CONFIG, {**signals, "support.open_tickets": 0.0,
                                  "support.sentiment_28d": 0.3, "support.csat": 4.0},
                         now_d=101, segment="b2c", tenure_d=400)
    assert mild is not None and mild.band == "healthy"
    assert all(c.weight > 0 for c in mild.contributions)


# the default config without days since the last purchase (the one curve with no flat end)
RHYTHM_ONLY = parse_config(CONFIG_TEXT.replace(
    "purchase_recency = 0.3, purchase_days_since = 0.3, purchase_orders = 0.3",
    "purchase_recency = 0.3, purchase_days_since = 0.0, purchase_orders = 0.3"))


def test_steady_until_on_the_flat_and_sloped_stretches_of_a_recency_curve():
    # purchase_recency: 100 points up to 1x the gap, down to 0 at 16x; gap 20 + 5 days
    config = RHYTHM_ONLY
    signals = {"purchase.last_at_d": 100.0, "purchase.gap_mean_d": 20.0,
               "purchase.gap_std_d": 5.0}
    until = steady_until(config, signals, now_d=105.0, segment="b2c", tenure_d=None)
    assert until == 125.0  # 1x the gap
    assert steady_until(config, signals, now_d=130.0, segment="b2c", tenure_d=None) == 130.0
    assert steady_until(config, signals, now_d=501.0, segment="b2c", tenure_d=None) == math.inf
    # a tenure threshold ahead (the onboarding profile ends at 90 days) ends it earlier
    assert steady_until(config, signals, now_d=105.0, segment="b2c", tenure_d=80.0) == 115.0
    assert steady_until(config, signals, now_d=501.0, segment="b2c", tenure_d=95.0) == 501.0 + (
        min(t for t in _tenure_thresholds() if t > 95.0) - 95.0)
    # days since the last purchase, in the whole default, is flat only for its first week
    assert steady_until(CONFIG, signals, now_d=101.0, segment="b2c", tenure_d=None) == 107.0


def _tenure_thresholds() -> list[float]:
    found = [p.when_tenure_below_d for p in CONFIG.profiles.values()]
    found += [m.min_tenure_d for m in CONFIG.measures.values()]
    return [t for t in found if t is not None] + [math.inf]


steady_signal_maps = st.fixed_dictionaries(
    {"purchase.last_at_d": st.floats(min_value=0, max_value=400)},
    optional={
        "purchase.gap_mean_d": st.floats(min_value=0, max_value=200),
        "purchase.gap_std_d": st.floats(min_value=0, max_value=100),
        "purchase.freq_trend": st.floats(min_value=0, max_value=3),
        "engagement.last_at_d": st.floats(min_value=0, max_value=400),
        "engagement.gap_mean_d": st.floats(min_value=0, max_value=60),
        "support.nps": st.floats(min_value=0, max_value=10),
        "profile.products": st.floats(min_value=0, max_value=5),
    })


@given(steady_signal_maps, st.floats(min_value=0, max_value=800),
       st.sampled_from(["b2c", "b2b", "default"]),
       st.one_of(st.none(), st.floats(min_value=0, max_value=400)),
       st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=5))
def test_the_score_does_not_move_before_steady_until(signals, now_d, seg, tenure, fractions):
    until = steady_until(CONFIG, signals, now_d=now_d, segment=seg, tenure_d=tenure)
    assert until >= now_d
    span = min(until, now_d + 2000.0) - now_d
    score = compute_score(CONFIG, signals, now_d=now_d, segment=seg, tenure_d=tenure)
    for fraction in fractions:
        later = now_d + span * fraction * (1 - 1e-9)
        moved = compute_score(CONFIG, signals, now_d=later, segment=seg,
                              tenure_d=None if tenure is None else tenure + later - now_d)
        assert (moved.score if moved else None) == (score.score if score else None)
