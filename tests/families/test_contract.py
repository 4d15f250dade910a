"""The contract every registered event family passes, with no test of its own: each
family only provides ``sample`` records (see streams.families.base.Family)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from streams.codec import build_codec
from streams.domain.clock import WallClock
from streams.domain.events import InvalidEvent, Rejection
from streams.domain.stored import dumps, loads
from streams.families import REGISTRY, Family, parse_event
from streams.intake import intake
from streams.pipeline import id_window
from streams.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(_env_file=None)
WINDOW = id_window(SETTINGS)
WEEKS = SETTINGS.history_weeks
CODEC = build_codec(SETTINGS)
families = pytest.mark.parametrize("family", REGISTRY, ids=lambda f: f.name)


def events(family: Family, count: int, every: timedelta = timedelta(days=1)) -> list:
    return [family.parse(family.sample(n, "c1", T0 + n * every)) for n in range(count)]


def applied(family: Family, evs: list, window: int = WINDOW):
    state = family.new_state(window, WEEKS)
    for event in evs:
        state.apply(event)
    return state


@families
def test_a_duplicate_changes_nothing(family: Family) -> None:
    evs = events(family, 10)
    state = applied(family, evs)
    before = dumps(state.to_json())
    assert state.apply(evs[3]) is False and state.apply(evs[9]) is False
    assert dumps(state.to_json()) == before


@families
def test_arrival_order_does_not_change_the_signals(family: Family) -> None:
    # within the span of event times the intake accepts at once (the id memory window)
    evs = events(family, 20, timedelta(hours=3))
    in_order = applied(family, evs)
    shuffled = list(evs)
    random.Random(3).shuffle(shuffled)
    for other in (shuffled, list(reversed(evs))):
        assert applied(family, other).signals() == in_order.signals()


@families
def test_the_state_round_trips_through_its_table_value(family: Family) -> None:
    state = applied(family, events(family, 30))
    again = family.load_state(loads(dumps(state.to_json())), WINDOW, WEEKS)
    assert again.signals() == state.signals() and again.to_json() == state.to_json()
    assert state.signals() and all(k.startswith(f"{family.name}.") for k in state.signals())


@families
def test_a_year_of_daily_events_stays_within_the_state_budget(family: Family) -> None:
    state = applied(family, events(family, 365))
    assert len(dumps(state.to_json())) <= family.state_budget


@families
def test_its_records_round_trip_through_the_codec(family: Family) -> None:
    record = family.sample(1, "c1", T0)
    name, decoded = CODEC.decode(CODEC.encode(family.record_type, record), family.record_type)
    assert name == family.record_type
    assert parse_event(name, decoded) == family.parse(record)


def take_in(family: Family, raw: bytes) -> object:
    return intake(raw, family.record_type, codec=CODEC, clock=WallClock(timedelta(days=3)),
                  max_future=timedelta(hours=1), wall_now=T0)


@families
def test_bad_records_are_rejected_with_a_reason(family: Family) -> None:
    good = family.sample(1, "c1", T0)
    cases = {
        "malformed": b"\x00garbage",
        "wrong_schema": CODEC.encode("ErasureRequest", {
            "event_id": "e", "customer_id": "c1", "occurred_at": T0}),
        "invalid_field": CODEC.encode(family.record_type, good | {"event_id": " "}),
        "in_future": CODEC.encode(family.record_type,
                                  good | {"occurred_at": T0 + timedelta(days=2)}),
        "too_late": CODEC.encode(family.record_type,
                                 good | {"occurred_at": T0 - timedelta(days=30)}),
    }
    for reason, raw in cases.items():
        result = take_in(family, raw)
        assert isinstance(result, Rejection) and result.reason == reason, (reason, result)
    assert not isinstance(take_in(family, CODEC.encode(family.record_type, good)), Rejection)
    with pytest.raises(InvalidEvent):
        family.parse(good | {"customer_id": ""})


def test_every_family_has_its_own_names() -> None:
    for attribute in ("name", "step", "record_type", "topic", "table"):
        values = [getattr(f, attribute) for f in REGISTRY]
        assert len(set(values)) == len(values), attribute
