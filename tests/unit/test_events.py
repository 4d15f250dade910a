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
    parse_event,
)

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
    clock = EventTimeClock(lateness)
    assert clock.lower_bound(T0) is None and clock.now() is None
    clock.observe(T0 - timedelta(days=100))
    clock.observe(T0 - timedelta(days=200))  # older events never move it back
    assert clock.lower_bound(T0) == clock.now() == T0 - timedelta(days=103)


def test_event_time_clock_tracks_each_stream():
    wall = [0.0]
    clock = EventTimeClock(timedelta(days=3), idle_s=30, monotonic=lambda: wall[0])
    clock.observe(T0, "fast")
    clock.observe(T0 - timedelta(days=20), "slow")
    # the slow partition's own events are judged against its own progress
    assert clock.lower_bound(T0, "slow") == T0 - timedelta(days=23)
    assert clock.lower_bound(T0, "fast") == T0 - timedelta(days=3)
    assert clock.lower_bound(T0, "new") is None
    # silence checks run at the slowest active stream
    assert clock.now() == T0 - timedelta(days=23)
    wall[0] = 40.0
    clock.observe(T0 + timedelta(days=1), "fast")
    # the slow stream has been idle for 40 s: it no longer holds "now" back
    assert clock.now() == T0 - timedelta(days=2)


def test_an_event_time_clock_restored_after_a_restart_goes_on_from_its_watermarks():
    wall = [0.0]
    clock = EventTimeClock(timedelta(days=3), idle_s=30, monotonic=lambda: wall[0])
    clock.restore(T0, "a")
    clock.restore(T0 - timedelta(days=20), "b")
    clock.restore(T0 - timedelta(days=50), "a")  # an older value kept never moves it back
    assert clock.latest("a") == T0 and clock.latest("new") is None
    assert clock.lower_bound(T0, "b") == T0 - timedelta(days=23)
    # restored streams are idle (no input since the restart): "now" is not held back
    assert clock.now() == T0 - timedelta(days=3)
    clock.observe(T0 - timedelta(days=19), "b")  # new input on one stream
    assert clock.now() == T0 - timedelta(days=22)
    wall[0] = 40.0
    assert clock.now() == T0 - timedelta(days=3)


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
