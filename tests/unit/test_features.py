import base64
import statistics
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.buckets import DAY_MS, WeekBuckets
from streams.domain.events import Consent, Engagement, ProfileChange, Purchase, SupportEvent
from streams.domain.features import (
    EngagementState,
    ProfileState,
    PurchaseState,
    SupportState,
    _gap_stats,
)
from streams.domain.recent_ids import MAX_IDS, RecentIds
from streams.domain.scoring import load_config
from streams.domain.stored import dumps, loads
from streams.families.purchases import FAMILY as PURCHASES
from streams.pipeline import HEALTH_TABLE, TABLES, CustomerStates, id_window, step_event
from streams.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: an id window longer than any history here, so arrival order never matters
WHOLE = 400 * DAY_MS
#: the default window: three days of allowed lateness plus an hour of allowed future
WINDOW = (3 * 86400 + 3600) * 1000


def purchase(n: int, day: float, amount: int = 1000) -> Purchase:
    return Purchase(f"p{n}", "c1", T0 + timedelta(days=day), f"o{n}", amount, "EUR")


def fresh_purchases() -> PurchaseState:
    return PurchaseState(RecentIds(WHOLE), 8)


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
    again = PurchaseState.from_json(loads(dumps(state.to_json())), WHOLE, 8)
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
    state = EngagementState(RecentIds(WHOLE), 8)
    for day in range(0, 60, 2):
        state.apply(Engagement(f"e{day}", "c1", T0 + timedelta(days=day), "login"))
    signals = state.signals()
    assert signals["engagement.weeks_active_4"] == 4
    assert signals["engagement.gap_mean_d"] == 2.0
    assert 0.9 <= signals["engagement.trend"] <= 1.1


def test_support_tickets_resolve_in_any_order():
    a, b = SupportState(RecentIds(WHOLE), 8), SupportState(RecentIds(WHOLE), 8)
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
    state = SupportState(RecentIds(WHOLE), 8)
    state.apply(SupportEvent("n2", "c1", T0 + timedelta(days=10), "nps_response", nps=3))
    state.apply(SupportEvent("n1", "c1", T0, "nps_response", nps=10))
    assert state.signals()["support.nps"] == 3


def test_profile_older_change_never_overrides_newer():
    state = ProfileState(RecentIds(WHOLE))
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
    p, e = PurchaseState(RecentIds(WINDOW), 8), EngagementState(RecentIds(WINDOW), 8)
    for day in range(365):
        p.apply(purchase(day, float(day), 1000 + seed * day))
        e.apply(Engagement(f"customer-000123-e-{day:05d}", "c1",
                           T0 + timedelta(days=day), "session", count=3, duration_s=600))
    assert len(dumps(p.to_json())) + len(dumps(e.to_json())) < 1000


def burst(size: int, span_s: float, customer: str = "c1") -> list[Purchase]:
    """``size`` purchases of one customer spread evenly over ``span_s`` seconds."""
    step = span_s / max(1, size - 1)
    return [Purchase(f"{customer}-order-{n:04d}", customer,
                     T0 + timedelta(days=30, seconds=n * step), f"o{n}", 1000, "EUR")
            for n in range(size)]


def test_a_burst_of_40_delivered_twice_counts_40():
    # a producer that retries (or a worker that crashed before committing) sends it again
    state = PurchaseState(RecentIds(WINDOW), 8)
    state.apply(purchase(0, 0.0))
    events = burst(40, 60.0)
    applied = [state.apply(e) for e in events + events]
    assert applied == [True] * 40 + [False] * 40
    assert state.orders == 41 and state.spend_minor == 41 * 1000


@given(st.integers(min_value=1, max_value=MAX_IDS), st.floats(min_value=0, max_value=WINDOW / 1000),
       st.randoms(use_true_random=False), st.booleans())
def test_any_burst_re_delivered_in_any_order_counts_once(size, span_s, rnd, through_json):
    events = burst(size, span_s)
    first, again = list(events), list(events)
    rnd.shuffle(first)
    rnd.shuffle(again)
    state = PurchaseState(RecentIds(WINDOW), 8)
    assert all(state.apply(e) for e in first)
    if through_json:  # a restarted worker: the state comes back from its changelog
        state = PurchaseState.from_json(loads(dumps(state.to_json())), WINDOW, 8)
    assert not any(state.apply(e) for e in again)
    assert state.orders == size


@settings(max_examples=25)
@given(st.integers(min_value=MAX_IDS + 1, max_value=4 * MAX_IDS),
       st.floats(min_value=0, max_value=WINDOW / 1000), st.randoms(use_true_random=False))
def test_a_flood_past_the_id_cap_is_still_counted_once(size, span_s, rnd):
    # more ids than are kept: the oldest seconds are forgotten, and their events then count
    # as seen, so the memory stays bounded and a re-delivery still adds nothing (a first
    # delivery in time order: a genuine event older than every id kept is taken for one)
    events = burst(size, span_s)
    state = PurchaseState(RecentIds(WINDOW), 8)
    assert all(state.apply(e) for e in events)
    again = list(events)
    rnd.shuffle(again)
    assert not any(state.apply(e) for e in again)
    assert state.orders == size
    kept = list(state.ids.seconds.values())
    assert len(kept) <= max(MAX_IDS, kept.count(state.ids.latest))  # the latest second whole


def test_ids_are_forgotten_once_behind_the_window_and_older_events_count_as_seen():
    ids = RecentIds(WINDOW)
    assert not ids.seen("a", T0)
    assert not ids.seen("b", T0 + timedelta(days=3))
    assert ids.seen("a", T0) and ids.seen("b", T0 + timedelta(days=3))
    assert not ids.seen("c", T0 + timedelta(days=4, hours=2))  # "a" is now out of the window
    assert len(ids.seconds) == 2
    # an event that far behind the latest cannot be told from a re-delivery (the intake
    # dead-letters a genuine one as too late before it gets here)
    assert ids.seen("new-but-old", T0 + timedelta(minutes=30))
    assert not ids.seen("late-inside-the-window", T0 + timedelta(days=2))


def test_ids_round_trip_through_json_with_their_hours():
    ids = RecentIds(WINDOW)
    for n in range(MAX_IDS + 10):  # past the cap, so a floor is kept
        ids.seen(f"e{n}", T0 + timedelta(seconds=100 * n))
    again = RecentIds.from_json(WINDOW, loads(dumps({"i": ids.to_json()}))["i"])
    assert again == ids and again.floor is not None
    assert RecentIds.from_json(WINDOW, []) == RecentIds(WINDOW)


def test_ids_written_in_base85_before_still_read():
    ids = RecentIds(WINDOW)
    for n in range(20):
        ids.seen(f"e{n}", T0 + timedelta(seconds=3600 * n))
    latest, text = ids.to_json()
    assert text.startswith("/")
    former = [latest, base64.b85encode(base64.b64decode(text[1:])).decode()]
    assert RecentIds.from_json(WINDOW, former) == ids


def test_the_former_id_memory_is_read_as_empty():
    # 32-bit hashes without event times, as states written before the window were kept
    ids = RecentIds.from_json(WINDOW, "AAAAAAEAAAA=")
    assert ids == RecentIds(WINDOW) and not ids.seen("e1", T0)


def test_distinct_ids_are_never_taken_for_one_another():
    ids = RecentIds(WINDOW)
    assert not any(ids.seen(f"customer-000001-e-{n:06d}", T0) for n in range(MAX_IDS))


def test_a_worker_counts_a_burst_delivered_twice_once():
    # the step as a worker runs it, with the default settings, its state written to the
    # tables and read back from them for every event (as after a restart)
    settings = Settings(_env_file=None)
    tables: dict[str, dict[bytes, bytes]] = {name: {} for name in TABLES}
    scoring = load_config(None)
    events = burst(40, 30.0)
    changed = []
    for event in events + events:
        states = CustomerStates(settings, tables)
        changed.append(step_event(states, PURCHASES, event, scoring).changed)
        for customers in states.changed().values():
            states.write(customers)
    assert changed == [True] * 40 + [False] * 40
    assert b"c1" in tables[HEALTH_TABLE]
    state = PURCHASES.load_state(loads(tables[PURCHASES.table][b"c1"]), id_window(settings),
                                 settings.history_weeks)
    assert isinstance(state, PurchaseState) and state.orders == 40


def test_week_buckets_round_trip_and_the_former_rows_still_load():
    buckets = WeekBuckets(2)
    for day, spend in ((700, 12.5), (702, 3.0), (714, 1.25), (735, 4.0)):
        buckets.add(day, [1.0, spend], 8)
    again = WeekBuckets.from_json(2, buckets.to_json())
    assert again == buckets
    assert buckets.to_json()[:4] == [100, 5, 2, 15.5]  # week 100, then weeks since it
    former = [[w, m, *row] for w, m, row in zip(buckets.weeks, buckets.masks,
                                                 buckets.values, strict=True)]
    assert WeekBuckets.from_json(2, former) == buckets


@given(st.integers(-10**6, 10**6),
       st.lists(st.one_of(st.integers(0, 3), st.integers(1, 400), st.integers(1, 10**7)),
                max_size=20))
def test_gap_stats_are_statistics_mean_and_pstdev(first, gaps):
    """The rhythm's mean and spread, from integer sums, are what statistics gives."""
    days = [first]
    for gap in gaps:
        days.append(days[-1] + gap)
    expected = (statistics.fmean(gaps), statistics.pstdev(gaps)) if len(gaps) >= 2 else None
    assert repr(_gap_stats(days)) == repr(expected)
