"""Intake of input records, and the dead letters of those it rejects."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import SingleObjectCodec, default_schemas
from streams.domain.clock import WallClock
from streams.domain.events import Rejection
from streams.intake import MAX_RECORD_BYTES, TOO_LARGE, dead_letter_record, intake

T0 = datetime(2026, 3, 2, tzinfo=UTC)
#: Faust's producer refuses a message larger than this (its max_request_size default)
PRODUCER_LIMIT = 1_000_000
CODEC = SingleObjectCodec(default_schemas())


def purchase(**fields: object) -> dict[str, object]:
    return {"event_id": "e1", "customer_id": "c1", "occurred_at": T0, "order_id": "o1",
            "amount_minor": 1000, "currency": "EUR", "items": 1, "channel": "web", **fields}


def take(raw: bytes | None) -> object:
    return intake(raw, "Purchase", codec=CODEC, clock=WallClock(timedelta(days=3)),
                  max_future=timedelta(hours=1), wall_now=T0)


def test_a_record_of_a_megabyte_is_too_large_before_it_is_decoded():
    huge = CODEC.encode("Purchase", purchase(order_id="o" * 1_100_000))  # valid Avro
    rejection = take(huge)
    assert isinstance(rejection, Rejection) and rejection.reason == TOO_LARGE
    assert str(len(huge)) in rejection.error
    assert isinstance(take(b"\x01" * (MAX_RECORD_BYTES + 1)), Rejection)
    assert not isinstance(take(CODEC.encode("Purchase", purchase())), Rejection)


@settings(max_examples=30, deadline=None)
@given(value_size=st.integers(min_value=0, max_value=3_000_000),
       text_size=st.integers(min_value=0, max_value=1_500_000),
       key_size=st.integers(min_value=0, max_value=1_500_000))
def test_a_dead_letter_fits_the_producer_limit_whatever_the_size_of_its_record(
        value_size, text_size, key_size):
    value = bytes(range(256)) * (value_size // 256) + b"\x07" * (value_size % 256)
    text = "x" * text_size  # e.g. an event id of a megabyte, copied into the error too
    record = dead_letter_record(
        Rejection("invalid_field", f"event_id: {text}", text, text), topic="customer.purchases",
        partition=3, offset=42, key=b"k" * key_size, payload=value, step="purchases",
        failed_at=T0)
    encoded = CODEC.encode("DeadLetter", record)
    assert len(encoded) < PRODUCER_LIMIT // 4
    assert record["payload"] == value[:MAX_RECORD_BYTES]  # a record the intake reads: whole
    assert record["payload_size"] == value_size
    assert record["payload_sha256"] == hashlib.sha256(value).hexdigest()
    assert CODEC.decode(encoded, "DeadLetter")[1]["payload_size"] == value_size
