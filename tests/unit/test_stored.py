"""How states are stored in tables: deflated JSON, the former plain JSON still read, and
every damaged value refused with a ValueError (the worker dead-letters the event)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.stored import DEFLATE_1, deflate, dumps, loads

STATE = {"i": [1767178800, "01`iE?(wH`OOPDXN7TFOS3q"], "b": [2914, 127, 14, 142.8, 1],
         "f": 20089, "l": 1767178800000, "c": None, "s": "b2b"}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=5),
    max_leaves=30)


def test_a_state_is_stored_deflated_and_smaller_than_its_json() -> None:
    raw = dumps(STATE)
    plain = json.dumps(STATE, separators=(",", ":")).encode()
    assert raw[0] == DEFLATE_1
    assert len(raw) < len(plain)
    assert loads(raw) == STATE


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8))
def test_any_json_object_round_trips(data: dict[str, object]) -> None:
    assert loads(dumps(data)) == data


def test_the_former_plain_json_still_loads() -> None:
    assert loads(json.dumps(STATE, separators=(",", ":")).encode()) == STATE


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty"),
    (b"\x07abc", "unknown format byte 0x07"),
    (dumps(STATE)[:-4], "truncated|does not inflate"),
    (bytes([DEFLATE_1]) + b"\xff\xfe\xfd\xfc", "does not inflate|truncated"),
    (b"[1,2]", "unknown format byte"),
    (b"{not json", "Expecting"),
])
def test_a_damaged_value_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        loads(raw)


def test_a_value_that_inflates_to_something_else_than_an_object_is_refused() -> None:
    raw = deflate(b"[1,2,3]")
    assert raw[0] == DEFLATE_1
    with pytest.raises(ValueError, match="not a JSON object"):
        loads(raw)
