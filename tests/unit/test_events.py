from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.clock import EventTimeClock, WallClock
from streams.domain.events import (
    IN_FUTURE,
    INVALID_FIELD,
    TOO_LATE,
    InvalidEvent,
    Purchase,
    check_event_time,
)
from streams.families import parse_event

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def purchase(**overrides):
    record = {"event_id": "e1", "customer_id": "c1", "occurred_at": T0, "order_id": "o1",
              "amount_minor": 1999, "currency": "eur", "items": 2, "channel": "web"}
    record.update(overrides)
    return record


def test_purchase_parses_and_normalises_currency():
    event = parse_event("Purchase", purchase())
    assert isinstance(event, Purchase)
    assert event.currency == "EUR" and event.amount_minor == 1999 and event.family == "purchase"


@pytest.mark.parametrize(("field", "value"), [
    ("amount_minor", -5), ("amount_minor", 10**13), ("customer_id", ""), ("event_id", None),
    ("currency", "EURO"), ("items", -1), ("occurred_at", datetime(1970, 1, 1, tzinfo=UTC)),
    ("occurred_at", datetime(1979, 12, 31, 23, 59, tzinfo=UTC)),
])
def test_absurd_purchase_fields_are_rejected_naming_the_field(field, value):
    with pytest.raises(InvalidEvent) as info:
        parse_event("Purchase", purchase(**{field: value}))
    assert info.value.reason == INVALID_FIELD
    assert info.value.field_name == field
    assert field in str(info.value)


@pytest.mark.parametrize(("field", "value"), [("nps", 11), ("nps", -1), ("csat", 0),
                                              ("csat", 6), ("sentiment", 1.5),
                                              ("sentiment", float("nan"))])
def test_support_ranges(field, value):
    record = {"event_id": "s1", "customer_id": "c1", "occurred_at": T0, "kind": "feedback",
              field: value}
    with pytest.raises(InvalidEvent) as info:
        parse_event("SupportEvent", record)
    assert info.value.field_name == field


def test_nps_response_needs_a_score():
    record = {"event_id": "s1", "customer_id": "c1", "occurred_at": T0, "kind": "nps_response"}
    with pytest.raises(InvalidEvent, match="nps"):
        parse_event("SupportEvent", record)


def test_event_time_bounds():
    future = timedelta(hours=1)
    check_event_time(T0 - timedelta(days=2), now=T0, lower_bound=T0 - timedelta(days=3),
                     max_future=future)
    with pytest.raises(InvalidEvent) as late:
        check_event_time(T0 - timedelta(days=4), now=T0, lower_bound=T0 - timedelta(days=3),
                         max_future=future)
    assert late.value.reason == TOO_LATE
    with pytest.raises(InvalidEvent) as ahead:
        check_event_time(T0 + timedelta(hours=2), now=T0, lower_bound=None, max_future=future)
    assert ahead.value.reason == IN_FUTURE
    check_event_time(T0 - timedelta(days=900), now=T0, lower_bound=None, max_future=future)


def test_clocks_give_the_lateness_bound():
    lateness = timedelta(days=3)
    assert WallClock(lateness).lower_bound(T0) == T0 - lateness
    clock = EventTimeClock(lateness, monotonic=lambda: 0.0)
    assert clock.lower_bound(T0) is None and clock.now() is None
    clock.observe(T0 - timedelta(days=100))
    clock.observe(T0 - timedelta(days=200))  # older events never move it back
    assert clock.lower_bound(T0) == T0 - timedelta(days=103)
    # one stream, still delivering: events wait out the allowed lateness
    assert clock.now() == clock.release_until() == T0 - timedelta(days=103)


def test_live_events_wait_for_every_stream_that_may_still_deliver_an_older_one():
    wall = [0.0]
    clock = WallClock(timedelta(days=3), idle_s=30, grace_s=1, monotonic=lambda: wall[0])
    clock.assigned(["fast", "slow", "empty"])
    clock.observe(T0, "fast")
    # a stream not read yet holds them back, by at most the allowed lateness
    assert clock.release_until() == T0 - timedelta(days=3)
    clock.caught_up("empty", True)
    wall[0] = 2.0  # read to its end and quiet for longer than the grace: no longer holds
    clock.observe(T0 - timedelta(days=1), "slow")
    assert clock.lower_bound(T0, "slow") == T0 - timedelta(days=3)  # the wall clock's
    assert clock.release_until() == T0 - timedelta(days=1)
    clock.caught_up("slow", True)
    wall[0] = 3.5  # "slow" is read and quiet; "fast" still has unread records
    assert clock.release_until() == T0
    assert clock.now() != T0  # live, "now" is the machine's time


def test_replayed_events_wait_out_the_allowed_lateness_of_every_stream():
    wall = [0.0]
    clock = EventTimeClock(timedelta(days=3), idle_s=30, monotonic=lambda: wall[0])
    clock.assigned(["a", "b", "empty"])
    clock.observe(T0, "a")
    # streams not read yet (and not idle) hold everything: they may bring older events
    assert clock.release_until() is None
    clock.observe(T0 - timedelta(days=1), "b")
    clock.caught_up("empty", True)
    wall[0] = 31.0  # "empty" has been quiet for idle_s; the others deliver again
    clock.observe(T0, "a")
    clock.observe(T0 - timedelta(days=1), "b")
    # the slow stream's own events are judged against its own progress
    assert clock.lower_bound(T0, "b") == T0 - timedelta(days=4)
    assert clock.lower_bound(T0, "new") is None
    # every stream that still delivers is the allowed lateness past what goes on
    assert clock.release_until() == clock.now() == T0 - timedelta(days=4)
    assert not clock.settled()
    wall[0] = 62.0  # nothing delivered for idle_s: everything read goes
    assert clock.settled() and clock.now() == T0


def test_replayed_events_wait_for_a_backlog_read_more_slowly_than_the_other_inputs():
    wall = [0.0]
    clock = EventTimeClock(timedelta(days=3), idle_s=30, monotonic=lambda: wall[0])
    clock.assigned(["fast", "slow"])
    clock.caught_up("slow", False)  # it has unread records
    clock.observe(T0, "fast")
    clock.caught_up("fast", True)
    # the backlog has delivered nothing yet: it may hold anything
    assert clock.release_until() is None
    clock.observe(T0 - timedelta(days=20), "slow")
    # the oldest it may still deliver is the allowed lateness behind its own progress
    assert clock.release_until() == T0 - timedelta(days=23)
    clock.caught_up("slow", True)  # read to its end: it lags, and holds back at most
    assert clock.release_until() == T0 - timedelta(days=6)  # twice the lateness
    wall[0] = 1.0  # quiet for the grace time once read to its end: the newest rules
    assert clock.release_until() == T0 - timedelta(days=3)
    clock.caught_up("slow", False)
    clock.observe(T0 - timedelta(days=19), "slow")
    wall[0] = 20.0
    clock.observe(T0, "fast")
    wall[0] = 31.0  # a backlog that has delivered nothing for idle_s holds nothing back
    assert clock.release_until() == T0 - timedelta(days=3)


def test_an_event_time_clock_restored_after_a_restart_goes_on_from_its_watermarks():
    wall = [0.0]
    clock = EventTimeClock(timedelta(days=3), idle_s=30, monotonic=lambda: wall[0])
    clock.restore(T0, "a")
    clock.restore(T0 - timedelta(days=20), "b")
    clock.restore(T0 - timedelta(days=50), "a")  # an older value kept never moves it back
    assert clock.latest("a") is None and clock.latest("new") is None
    # a restored watermark keeps its lateness bound
    assert clock.lower_bound(T0, "b") == T0 - timedelta(days=23)
    # restored streams are quiet (no input since the restart): silence checks go on
    assert clock.settled() and clock.now() == T0
    clock.observe(T0 - timedelta(days=19), "b")  # new input on one stream
    # held for the lateness behind the stream that delivers, by at most twice the lateness
    assert clock.now() == T0 - timedelta(days=6)
    assert clock.lower_bound(T0, "b") == T0 - timedelta(days=22)
    wall[0] = 40.0
    assert clock.now() == T0


def test_one_record_far_ahead_does_not_move_the_event_clock():
    clock = EventTimeClock(timedelta(days=3), max_jump=timedelta(days=7))
    clock.observe(T0, "a")
    clock.observe(T0, "b")
    far = T0 + timedelta(days=300)
    assert clock.observe(far, "a").outlier
    assert clock.latest("a") == T0 and clock.now() == T0 - timedelta(days=3)
    assert clock.lower_bound(T0, "a") == T0 - timedelta(days=3)  # nothing turns too late
    # the stream's next record goes on from before it: the outlier is refuted
    arrival = clock.observe(T0 + timedelta(hours=1), "a")
    assert arrival.refuted == far and not arrival.outlier
    # a stream that really moved on (a backfill turned live) confirms it with its next one
    assert clock.observe(far, "b").outlier
    arrival = clock.observe(far + timedelta(hours=1), "b")
    assert arrival.confirmed and arrival.refuted is None
    assert clock.latest("b") == far + timedelta(hours=1)


def test_signup_after_the_profile_change_is_rejected():
    record = {"event_id": "p1", "customer_id": "c1", "occurred_at": T0, "segment": "b2c",
              "signup_at": T0 + timedelta(days=365 * 180)}
    with pytest.raises(InvalidEvent) as info:
        parse_event("ProfileChange", record)
    assert info.value.field_name == "signup_at"


def test_a_profile_change_at_the_end_of_time_is_checked_without_overflowing():
    end = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    record = {"event_id": "p1", "customer_id": "c1", "occurred_at": end, "segment": "b2c",
              "signup_at": T0}
    assert parse_event("ProfileChange", record).occurred_at == end
    with pytest.raises(InvalidEvent) as info:
        check_event_time(end, now=T0, lower_bound=None, max_future=timedelta(hours=1))
    assert info.value.reason == "in_future"


def test_wall_clock_knows_when_it_is_catching_up_a_backlog():
    wall = [0.0]
    clock = WallClock(timedelta(days=3), idle_s=5, monotonic=lambda: wall[0])
    assert clock.behind(T0) == timedelta(0)
    clock.observe(T0 - timedelta(hours=6), ("purchases", 0))  # an old event from a backlog
    clock.observe(T0 - timedelta(seconds=1), ("purchases", 1))
    assert clock.behind(T0) == timedelta(hours=6)
    wall[0] = 10.0  # no event for 10 s: the backlog is done
    assert clock.behind(T0) == timedelta(0)
