"""The held offsets of one partition (streams.held): the first one, and the partition's
latest event time before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.held import HeldOffsets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_first_held_offset_and_the_event_time_before_it():
    held = HeldOffsets()
    assert not held and held.first() is None and held.before_first() is None
    held.add(5, None)
    held.add(7, T0)
    held.add(9, T0 + timedelta(days=1))
    assert held.first() == 5 and held.before_first() is None
    assert held.remove(5)
    assert held.first() == 7 and held.before_first() == T0
    held.add(7, T0 + timedelta(days=3))  # read twice: held twice, the first time kept
    assert not held.remove(7)
    assert held.first() == 7 and held.before_first() == T0
    assert held.remove(7) and held.remove(9)
    assert not held and held.first() is None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=200))
def test_the_first_held_offset_is_the_lowest_still_held(steps):
    held = HeldOffsets()
    counts: dict[int, int] = {}
    for add, offset in steps:
        if add:
            held.add(offset, None)
            counts[offset] = counts.get(offset, 0) + 1
        elif counts.get(offset):
            counts[offset] -= 1
            assert held.remove(offset) == (counts[offset] == 0)
            if not counts[offset]:
                del counts[offset]
        assert held.first() == (min(counts) if counts else None)
        assert len(held) == len(counts)
