import json
from datetime import UTC, datetime
from importlib import resources

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import (
    DecodeError,
    RegistryCodec,
    SingleObjectCodec,
    build_codec,
    default_schemas,
    from_json_record,
    to_json_record,
)
from streams.settings import Settings

T = datetime(2026, 5, 17, 8, 30, 15, 123000, tzinfo=UTC)
PURCHASE = {"event_id": "e1", "customer_id": "c1", "occurred_at": T, "order_id": "o1",
            "amount_minor": 1999, "currency": "EUR", "items": 2, "channel": "app"}
SAMPLES = {
    "Purchase": PURCHASE,
    "Engagement": {"event_id": "e2", "customer_id": "c1", "occurred_at": T, "kind": "login",
                   "count": 1, "duration_s": 30, "feature": None},
    "SupportEvent": {"event_id": "e3", "customer_id": "c1", "occurred_at": T,
                     "kind": "nps_response", "ticket_id": None, "csat": None, "nps": 6,
                     "sentiment": -0.5, "category": "billing"},
    "ProfileChange": {"event_id": "e4", "customer_id": "c1", "occurred_at": T,
                      "segment": "b2b", "signup_at": T, "plan": "pro", "mrr_minor": 100,
                      "cost_to_serve_minor": 40, "currency": "EUR", "products": 2,
                      "referrals": 0, "consent": {"email": True, "sms": False,
                                                  "phone": False, "push": True}},
    "ErasureRequest": {"event_id": "e5", "customer_id": "c1", "occurred_at": T},
    "SignalUpdate": {"event_id": "e1", "customer_id": "c1", "occurred_at": T,
                     "family": "purchase", "signals": {"purchase.last_at_d": 20000.5}},
    "DeadLetter": {"event_id": None, "customer_id": None, "source_topic": "x",
                   "source_partition": 0, "source_offset": 7, "key": b"k", "payload": b"\x00",
                   "reason": "malformed", "error": "bad", "step": "purchases", "failed_at": T},
}


def test_every_schema_parses_and_documents_every_field():
    schemas = default_schemas()
    files = [e.name for e in resources.files("streams").joinpath("schemas").iterdir()]
    assert len(schemas.parsed) == len([f for f in files if f.endswith(".avsc")]) >= 10
    for name, raw in schemas.raw.items():
        schema = json.loads(raw)
        assert schema["namespace"].startswith("io.churnwatch.") and schema["doc"], name
        for field in schema["fields"]:
            assert field.get("doc"), f"{name}.{field['name']} has no doc"


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_single_object_round_trip(type_name):
    codec = SingleObjectCodec()
    data = codec.encode(type_name, SAMPLES[type_name])
    assert data[:2] == b"\xc3\x01"
    assert codec.decode(data, type_name) == (type_name, SAMPLES[type_name])


@given(st.integers(0, 10**12), st.text(min_size=1, max_size=40), st.integers(0, 1000))
def test_purchase_round_trip_property(amount, customer, items):
    codec = SingleObjectCodec()
    record = dict(PURCHASE, amount_minor=amount, customer_id=customer, items=items)
    assert codec.decode(codec.encode("Purchase", record))[1] == record


@pytest.mark.parametrize("data", [b"", b"\xc3", b"hello world", b"\xc3\x01" + b"\x00" * 3])
def test_garbage_is_malformed(data):
    with pytest.raises(DecodeError) as info:
        SingleObjectCodec().decode(data)
    assert info.value.reason == "malformed"


def test_truncated_and_trailing_bytes_are_malformed():
    codec = SingleObjectCodec()
    data = codec.encode("Purchase", PURCHASE)
    for bad in (data[:-3], data + b"\x00\x01"):
        with pytest.raises(DecodeError) as info:
            codec.decode(bad)
        assert info.value.reason == "malformed"


def test_unknown_fingerprint_and_wrong_schema():
    codec = SingleObjectCodec()
    with pytest.raises(DecodeError) as unknown:
        codec.decode(b"\xc3\x01" + b"\x01" * 8 + b"\x00")
    assert unknown.value.reason == "unknown_schema"
    with pytest.raises(DecodeError) as wrong:
        codec.decode(codec.encode("Purchase", PURCHASE), "Engagement")
    assert wrong.value.reason == "wrong_schema"


def test_out_of_range_timestamp_is_a_decode_error():
    codec = SingleObjectCodec()
    data = bytearray(codec.encode("ErasureRequest", SAMPLES["ErasureRequest"]))
    # replace the timestamp varint (last field) with a huge one: year > 9999
    body = codec.encode("ErasureRequest", dict(SAMPLES["ErasureRequest"]))[:-6]
    huge = bytes(body) + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"
    with pytest.raises(DecodeError) as info:
        codec.decode(huge)
    assert info.value.reason == "malformed"
    assert data  # the original still decodes
    codec.decode(bytes(data))


def test_registry_framing_with_mock_registry():
    client = SchemaRegistryClient.new_client({"url": "mock://churnwatch-test"})
    writer, reader = RegistryCodec(client), RegistryCodec(client)
    data = writer.encode("Purchase", PURCHASE)
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert client.get_schema(schema_id).schema_str == default_schemas().raw["Purchase"]
    assert reader.decode(data, "Purchase") == ("Purchase", PURCHASE)
    with pytest.raises(DecodeError) as wrong:
        reader.decode(data, "Engagement")
    assert wrong.value.reason == "wrong_schema"
    with pytest.raises(DecodeError) as missing:
        reader.decode(b"\x00\x00\x00\x99\x99\x00")
    assert missing.value.reason == "registry_error"
    with pytest.raises(DecodeError) as single:
        reader.decode(SingleObjectCodec().encode("Purchase", PURCHASE))
    assert single.value.reason == "malformed"


def test_build_codec_follows_settings():
    assert isinstance(build_codec(Settings(_env_file=None)), SingleObjectCodec)
    registry = build_codec(Settings(_env_file=None, schema_registry_url="mock://x"))
    assert isinstance(registry, RegistryCodec)


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_json_round_trip(type_name):
    obj = json.loads(json.dumps(to_json_record(type_name, SAMPLES[type_name])))
    assert from_json_record(type_name, obj) == SAMPLES[type_name]


def test_json_errors_name_the_field():
    obj = to_json_record("Purchase", PURCHASE)
    with pytest.raises(ValueError, match="amount_minor"):
        from_json_record("Purchase", dict(obj, amount_minor="lots"))
    with pytest.raises(ValueError, match="occurred_at"):
        from_json_record("Purchase", dict(obj, occurred_at="2026-01-01T00:00:00"))
