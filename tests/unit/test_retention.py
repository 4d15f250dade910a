"""Retention metrics: retention rate, churn rate, NPS, activity rules, period counts and
the live snapshot of the pipeline's tables."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streams.domain import retention
from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.retention import (
    ActivityRules,
    PeriodCounts,
    churn_rate,
    classify,
    nps,
    period_counts,
    retention_rate,
    snapshot_from_tables,
)
from streams.domain.scoring import BANDS
from streams.families import REGISTRY
from streams.families.profile import FAMILY as PROFILE
from streams.pipeline import HEALTH_TABLE
from streams.replay import LocalPipeline
from streams.settings import Settings

RULES = ActivityRules()


# -- retention rate -------------------------------------------------------------------

def test_retention_rate_domain_example():
    # 1,000 customers at the start, 200 new, 800 at the end -> 60 %
    assert retention_rate(1000, 800, 200) == 60.0


def test_retention_rate_full_and_none_kept():
    assert retention_rate(50, 50, 0) == 100.0
    assert retention_rate(50, 10, 10) == 0.0


def test_retention_rate_without_a_starting_base_is_none():
    assert retention_rate(0, 10, 10) is None
    assert retention_rate(0, 0, 0) is None


@pytest.mark.parametrize("counts", [(-1, 5, 0), (5, -1, 0), (5, 5, -1)])
def test_retention_rate_rejects_negative_counts(counts):
    with pytest.raises(ValueError, match="must not be negative"):
        retention_rate(*counts)


def test_retention_rate_rejects_more_new_than_end_customers():
    with pytest.raises(ValueError, match="cannot exceed end_customers"):
        retention_rate(100, 10, 11)


@given(st.integers(1, 10**6), st.data())
def test_retention_rate_within_0_100_when_kept_customers_were_there_at_start(cs, data):
    # holds whenever CE - CN (the customers kept from before the period) <= CS
    kept = data.draw(st.integers(0, cs))
    cn = data.draw(st.integers(0, 10**6))
    rate = retention_rate(cs, kept + cn, cn)
    assert rate is not None
    assert 0.0 <= rate <= 100.0


# -- churn rate -----------------------------------------------------------------------

def test_churn_rate():
    assert churn_rate(200, 10) == 5.0
    assert churn_rate(200, 0) == 0.0
    assert churn_rate(0, 0) is None


def test_churn_rate_rejects_bad_counts():
    with pytest.raises(ValueError, match="must not be negative"):
        churn_rate(10, -1)
    with pytest.raises(ValueError, match="must not be negative"):
        churn_rate(-10, 0)
    with pytest.raises(ValueError, match="cannot exceed start_customers"):
        churn_rate(10, 11)


@given(st.integers(1, 10**6), st.data())
def test_churn_rate_within_0_100(start, data):
    rate = churn_rate(start, data.draw(st.integers(0, start)))
    assert rate is not None
    assert 0.0 <= rate <= 100.0


# -- NPS ------------------------------------------------------------------------------

def test_nps_examples():
    assert nps([10, 9, 8, 7, 6, 0]) == 0.0  # (2 promoters - 2 detractors) / 6
    assert nps([10, 9, 10]) == 100.0
    assert nps([0, 3, 6]) == -100.0
    assert nps([7, 8]) == 0.0  # passives only
    assert nps([10, 6, 8, 9]) == 25.0
    assert nps(iter([9])) == 100.0  # any iterable


def test_nps_without_answers_is_none():
    assert nps([]) is None


@pytest.mark.parametrize("answer", [-1, 11])
def test_nps_rejects_answers_outside_0_10(answer):
    with pytest.raises(ValueError, match="within 0..10"):
        nps([9, answer])


@given(st.lists(st.integers(0, 10), min_size=1))
def test_nps_within_bounds_and_order_free(answers):
    score = nps(answers)
    assert score is not None
    assert -100.0 <= score <= 100.0
    assert score == nps(sorted(answers))


# -- activity rules and classify ------------------------------------------------------

def test_rules_defaults_and_validation():
    assert (RULES.active_within_d, RULES.churned_after_d) == (30.0, 90.0)
    assert ActivityRules(active_within_d=7, churned_after_d=7).churned_after_d == 7
    for bad in ({"active_within_d": 0}, {"active_within_d": -1},
                {"active_within_d": 60, "churned_after_d": 30},
                {"churned_after_d": float("nan")}, {"active_days": 30}):
        with pytest.raises(ValidationError):
            ActivityRules(**bad)


NOW = 20_000.0


@pytest.mark.parametrize(("last", "signup", "expected"), [
    (NOW, None, "active"),
    (NOW - 30, None, "active"),  # exactly active_within_d ago: still active
    (NOW - 30.01, None, "inactive"),
    (NOW - 89.99, None, "inactive"),
    (NOW - 90, None, "churned"),  # exactly churned_after_d ago: churned
    (NOW - 400, NOW - 500, "churned"),
    (NOW + 0.5, None, "active"),  # activity after now (a trailing watermark)
    (NOW - 1, NOW - 1, "active"),  # activity decides, never "new"
    (None, NOW, "new"),
    (None, NOW - 30, "new"),
    (None, NOW - 30.5, "inactive"),
    (None, NOW - 90, "churned"),  # never active since signing up 90 days ago
    (None, NOW + 1, "unknown"),  # signs up later
    (None, None, "unknown"),
])
def test_classify_boundaries(last, signup, expected):
    assert classify(last, signup, NOW, RULES) == expected


def test_classify_with_equal_thresholds_goes_straight_from_active_to_churned():
    rules = ActivityRules(active_within_d=7, churned_after_d=7)
    assert classify(NOW - 7, None, NOW, rules) == "active"
    assert classify(NOW - 7.01, None, NOW, rules) == "churned"


def test_classify_rejects_non_finite_times():
    with pytest.raises(ValueError, match="finite"):
        classify(float("nan"), None, NOW, RULES)
    with pytest.raises(ValueError, match="finite"):
        classify(None, None, float("inf"), RULES)


# -- period counts --------------------------------------------------------------------

START, END = 100.0, 130.0
POPULATION = {
    # name: (first_seen_d, last_activity_d, signup_d)
    "loyal": (10, 135, 5),  # active throughout
    "lapsing": (10, 95, 5),  # active at the start, inactive at the end
    "lapsed": (10, 50, 5),  # inactive at both ends
    "churning": (0, 30, 0),  # inactive at the start, churned at the end
    "long_gone": (0, 5, 0),  # churned before the period
    "acquired": (110, 128, 108),  # signs up and becomes active within the period
    "late_starter": (105, 125, 90),  # signed up before, first active within the period
    "signup_only": (None, None, 120),  # signs up within, never active
    "never_used": (None, None, 20),  # signed up long ago, never active: churns
    "future": (140, 150, 135),  # first seen after the period
    "only_latest": (None, 120, None),  # first activity unknown: taken as the latest
}


def test_period_counts_on_a_handmade_population():
    counts = period_counts(POPULATION.values(), START, END, RULES)
    assert counts == PeriodCounts(
        start_customers=2,  # loyal, lapsing
        end_customers=4,  # loyal, acquired, late_starter, only_latest
        new_customers=3,  # acquired, late_starter, only_latest
        base_customers=6,  # loyal, lapsing, lapsed, churning, late_starter, never_used
        churned=2,  # churning, never_used
    )
    assert counts.retention_rate() == 50.0  # (4 - 3) / 2
    assert counts.churn_rate() == pytest.approx(100 * 2 / 6)


def test_period_counts_of_nobody():
    counts = period_counts([], START, END, RULES)
    assert counts == PeriodCounts(0, 0, 0, 0, 0)
    assert counts.retention_rate() is None
    assert counts.churn_rate() is None


def test_period_counts_rejects_bad_input():
    with pytest.raises(ValueError, match="before start_d"):
        period_counts([], END, START, RULES)
    with pytest.raises(ValueError, match="after last_activity_d"):
        period_counts([(50, 40, None)], START, END, RULES)


days = st.one_of(st.none(), st.floats(0, 400, allow_nan=False))


@st.composite
def customer(draw):
    first, last, signup = draw(days), draw(days), draw(days)
    if first is not None and last is not None and first > last:
        first, last = last, first
    return first, last, signup


@given(st.lists(customer(), max_size=40), st.floats(0, 400), st.floats(0, 120),
       st.floats(1, 60), st.floats(0, 120))
def test_period_counts_are_consistent(population, start, length, active, extra):
    rules = ActivityRules(active_within_d=active, churned_after_d=active + extra)
    counts = period_counts(population, start, start + length, rules)
    assert counts.new_customers <= counts.end_customers
    assert counts.end_customers - counts.new_customers <= counts.start_customers
    assert counts.start_customers <= counts.base_customers
    assert counts.churned <= counts.base_customers
    rate = counts.retention_rate()
    assert rate is None or 0.0 <= rate <= 100.0
    churn = counts.churn_rate()
    assert churn is None or 0.0 <= churn <= 100.0


@given(st.lists(customer(), max_size=40), st.floats(0, 400))
def test_an_empty_period_retains_everyone(population, at):
    counts = period_counts(population, at, at, RULES)
    assert counts.new_customers == 0
    assert counts.end_customers == counts.start_customers
    assert counts.churned == 0


# -- snapshot of the pipeline's tables ------------------------------------------------

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def at(day):
    return T0 + timedelta(days=day)


def purchase(customer, n, day):
    return ("Purchase", {"event_id": f"{customer}-p{n}", "customer_id": customer,
                         "occurred_at": at(day), "order_id": f"o{n}", "amount_minor": 1500,
                         "currency": "EUR", "items": 1, "channel": "web"})


def login(customer, day):
    return ("Engagement", {"event_id": f"{customer}-e{day}", "customer_id": customer,
                           "occurred_at": at(day), "kind": "login"})


def nps_answer(customer, day, value):
    return ("SupportEvent", {"event_id": f"{customer}-n{day}", "customer_id": customer,
                             "occurred_at": at(day), "kind": "nps_response", "nps": value})


def profile(customer, day, segment):
    return ("ProfileChange", {"event_id": f"{customer}-pr{day}", "customer_id": customer,
                              "occurred_at": at(day), "segment": segment,
                              "signup_at": at(day)})


def erasure(customer, day):
    return ("ErasureRequest", {"event_id": f"{customer}-x", "customer_id": customer,
                               "occurred_at": at(day)})


def population_records():
    records = [profile("a", 0, "b2c"), nps_answer("a", 50, 10)]
    records += [purchase("a", n, 7 * n) for n in range(15)]  # weekly up to day 98
    records += [profile("b", 0, "b2b"), login("b", 20), nps_answer("b", 21, 3)]
    records += [purchase("c", 0, 0)]  # no profile, silent since day 0
    records += [profile("d", 90, "b2c"), nps_answer("d", 91, 9)]  # signed up, no activity
    records += [purchase("e", 0, 5), erasure("e", 6)]  # asked to be forgotten
    return sorted(records, key=lambda r: r[1]["occurred_at"])


def test_snapshot_counts_the_customers_the_pipeline_holds():
    pipeline = LocalPipeline(Settings(_env_file=None, clock="event"))
    outputs = pipeline.run(population_records(), ticks=True)
    assert not pipeline.rejections

    snapshot = snapshot_from_tables(pipeline.tables, to_ms(at(100)) / DAY_MS, RULES)

    assert snapshot["customers"] == 4  # "e" was erased
    assert snapshot["segments"] == {"b2b": 1, "b2c": 2, "unknown": 1}
    assert snapshot["activity"] == {"new": 1, "active": 1, "inactive": 1, "churned": 1,
                                    "unknown": 0}  # d, a, b (80 days), c (100 days)
    assert snapshot["nps"] == pytest.approx(100 / 3)  # promoters a, d; detractor b
    assert snapshot["nps_answers"] == 3
    # the band of each customer is the last one the scorer published
    last_band = {r["customer_id"]: r["band"] for t, r in outputs if t == "HealthScoreChanged"}
    assert (last_band["a"], last_band["c"]) == ("healthy", "at_risk")
    expected = dict.fromkeys((*BANDS, "unscored"), 0)
    for customer_id in "abcd":
        expected[last_band.get(customer_id, "unscored")] += 1
    assert snapshot["bands"] == expected
    assert sum(snapshot["bands"].values()) == 4


def test_snapshot_of_empty_tables_keeps_every_label():
    snapshot = snapshot_from_tables({}, NOW, RULES)
    assert snapshot == {
        "customers": 0,
        "bands": {"healthy": 0, "watch": 0, "at_risk": 0, "unscored": 0},
        "segments": {},
        "activity": {"new": 0, "active": 0, "inactive": 0, "churned": 0, "unknown": 0},
        "nps": None,
        "nps_answers": 0,
        "value_at_stake": {},
    }


def test_snapshot_reads_the_tables_the_pipeline_writes():
    feature_tables = {f.name: f.table for f in REGISTRY if f.name != "billing"}
    assert feature_tables == {"purchase": retention.PURCHASE_TABLE,
                              "engagement": retention.ENGAGEMENT_TABLE,
                              "support": retention.SUPPORT_TABLE,
                              "profile": retention.PROFILE_TABLE}
    assert (PROFILE.table, HEALTH_TABLE) == (retention.PROFILE_TABLE, retention.HEALTH_TABLE)


def test_nps_counts_only_answers_within_the_window_and_rules_come_from_config():
    from datetime import UTC, datetime, timedelta

    from streams.domain.scoring import load_config
    from streams.replay import LocalPipeline
    from streams.settings import Settings

    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def answer(customer: str, day: int, score: int) -> tuple[str, dict]:
        return ("SupportEvent", {"event_id": f"{customer}-n", "customer_id": customer,
                                 "occurred_at": t0 + timedelta(days=day),
                                 "kind": "nps_response", "ticket_id": None, "csat": None,
                                 "nps": score, "sentiment": None, "category": None})

    pipeline = LocalPipeline(Settings(_env_file=None, clock="event"))
    pipeline.run([answer("old", 0, 2), answer("new", 100, 10)])
    rules = load_config().retention
    assert (rules.active_within_d, rules.churned_after_d, rules.nps_window_d) == (30, 90, 90)
    now_d = (t0 + timedelta(days=120)).timestamp() / 86400
    snapshot = snapshot_from_tables(pipeline.tables, now_d, rules)
    assert snapshot["nps"] == 100.0 and snapshot["nps_answers"] == 1
