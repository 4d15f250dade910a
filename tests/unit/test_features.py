from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.buckets import WeekBuckets
from streams.domain.events import Consent, Engagement, ProfileChange, Purchase, SupportEvent
from streams.domain.features import (
    EngagementState,
    ProfileState,
    PurchaseState,
    RecentIds,
    SupportState,
    dumps,
    loads,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def purchase(n: int, day: float, amount: int = 1000) -> Purchase:
    return Purchase(f"p{n}", "c1", T0 + timedelta(days=day), f"o{n}", amount, "EUR")


def fresh_purchases() -> PurchaseState:
    return PurchaseState(RecentIds(1024), 8)


purchase_lists = st.lists(
    st.tuples(st.floats(min_value=0, max_value=200), st.integers(min_value=0, max_value=10**6)),
    min_size=1, max_size=40,
).map(lambda xs: [purchase(i, day, amount) for i, (day, amount) in enumerate(xs)])


@given(purchase_lists, st.randoms(use_true_random=False))
def test_purchase_state_is_independent_of_arrival_order(events, rnd):
    a, b = fresh_purchases(), fresh_purchases()
    for event in events:
        a.apply(event)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    for event in shuffled:
        b.apply(event)
    assert a.signals() == b.signals()
    assert a.buckets == b.buckets and a.rhythm == b.rhythm


@given(purchase_lists)
def test_applying_an_event_twice_changes_nothing(events):
    state = fresh_purchases()
    for event in events:
        assert state.apply(event) is True
    before = dumps(state.to_json())
    for event in events:
        assert state.apply(event) is False
    assert dumps(state.to_json()) == before


@given(purchase_lists)
def test_state_round_trips_through_json(events):
    state = fresh_purchases()
    for event in events:
        state.apply(event)
    again = PurchaseState.from_json(loads(dumps(state.to_json())), 1024, 8)
    assert again.signals() == state.signals()
    assert dumps(again.to_json()) == dumps(state.to_json())


def test_regular_buyer_rhythm_and_trends():
    state = fresh_purchases()
    for n in range(10):
        state.apply(purchase(n, n * 7.0))
    signals = state.signals()
    assert signals["purchase.gap_mean_d"] == 7.0 and signals["purchase.gap_std_d"] == 0.0
    assert signals["purchase.freq_trend"] == 1.0 and signals["purchase.spend_trend"] == 1.0
    assert signals["purchase.orders_total"] == 10


def test_slowing_buyer_has_falling_frequency():
    state = fresh_purchases()
    days = [*range(0, 31, 3), 45, 60]
    for n, day in enumerate(days):
        state.apply(purchase(n, float(day)))
    assert state.signals()["purchase.freq_trend"] < 0.5


def test_buckets_keep_a_bounded_window():
    buckets = WeekBuckets(1)
    for day in range(7000):
        buckets.add(day, [1.0], keep_weeks=8)
    assert len(buckets.weeks) == 8 and buckets.weeks[0] == 999 - 7
    assert buckets.total(992, 999) == [56.0]
    assert buckets.active_days(999, 999) == list(range(6993, 7000))
    buckets.add(10, [1.0], keep_weeks=8)  # far too old: ignored
    assert buckets.weeks[0] == 992


def test_engagement_weekly_and_trend():
    state = EngagementState(RecentIds(64), 8)
    for day in range(0, 60, 2):
        state.apply(Engagement(f"e{day}", "c1", T0 + timedelta(days=day), "login"))
    signals = state.signals()
    assert signals["engagement.weeks_active_4"] == 4
    assert signals["engagement.gap_mean_d"] == 2.0
    assert 0.9 <= signals["engagement.trend"] <= 1.1


def test_support_tickets_resolve_in_any_order():
    a, b = SupportState(RecentIds(64), 8), SupportState(RecentIds(64), 8)
    opened = SupportEvent("s1", "c1", T0, "ticket_opened", ticket_id="t1", sentiment=-0.8)
    resolved = SupportEvent("s2", "c1", T0 + timedelta(hours=5), "ticket_resolved",
                            ticket_id="t1")
    other = SupportEvent("s3", "c1", T0 + timedelta(hours=6), "ticket_opened", ticket_id="t2")
    for e in (opened, resolved, other):
        a.apply(e)
    for e in (resolved, other, opened):
        b.apply(e)
    assert a.signals() == b.signals()
    assert a.signals()["support.open_tickets"] == 1
    assert a.signals()["support.sentiment_28d"] == -0.8


def test_latest_nps_by_event_time_wins():
    state = SupportState(RecentIds(64), 8)
    state.apply(SupportEvent("n2", "c1", T0 + timedelta(days=10), "nps_response", nps=3))
    state.apply(SupportEvent("n1", "c1", T0, "nps_response", nps=10))
    assert state.signals()["support.nps"] == 3


def test_profile_older_change_never_overrides_newer():
    state = ProfileState(RecentIds(64))
    newer = ProfileChange("p2", "c1", T0 + timedelta(days=5), "b2b", T0, mrr_minor=10000,
                          cost_to_serve_minor=8000, products=2, consent=Consent(email=True))
    older = ProfileChange("p1", "c1", T0, "b2c", T0, products=1)
    state.apply(newer)
    state.apply(older)
    assert state.segment == "b2b" and state.products == 2
    assert state.profitability() == 0.2
    assert state.consent.channels() == ["email"]


@settings(max_examples=20)
@given(st.integers(min_value=1, max_value=3))
def test_year_of_daily_history_stays_small(seed):
    # a busy customer: a purchase and an engagement every day for a year
    p, e = PurchaseState(RecentIds(16), 8), EngagementState(RecentIds(16), 8)
    for day in range(365):
        p.apply(purchase(day, float(day), 1000 + seed * day))
        e.apply(Engagement(f"customer-000123-e-{day:05d}", "c1",
                           T0 + timedelta(days=day), "session", count=3, duration_s=600))
    assert len(dumps(p.to_json())) + len(dumps(e.to_json())) < 1000
