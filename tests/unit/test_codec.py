"""The codec: schemas, both wire formats, decode errors and the JSON Lines format."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MARKER,
    Codec,
    DecodeError,
    EncodeError,
    RecordError,
    RegistryCodec,
    SchemaSet,
    SingleObjectCodec,
    build_codec,
    decode_key,
    default_schemas,
    encode_key,
    from_json_line,
    from_json_record,
    to_json_line,
    to_json_record,
)
from streams.settings import Settings

T = datetime(2026, 5, 17, 8, 30, 15, 123000, tzinfo=UTC)
PURCHASE = {
    "event_id": "e1",
    "customer_id": "c1",
    "occurred_at": T,
    "order_id": "o1",
    "amount_minor": 1999,
    "currency": "EUR",
    "items": 2,
    "channel": "app",
}
SAMPLES: dict[str, dict[str, Any]] = {
    "Purchase": PURCHASE,
    "Engagement": {
        "event_id": "e2",
        "customer_id": "c1",
        "occurred_at": T,
        "kind": "login",
        "count": 1,
        "duration_s": 30,
        "feature": None,
    },
    "SupportEvent": {
        "event_id": "e3",
        "customer_id": "c1",
        "occurred_at": T,
        "kind": "nps_response",
        "ticket_id": None,
        "csat": None,
        "nps": 6,
        "sentiment": -0.5,
        "category": "billing",
    },
    "ProfileChange": {
        "event_id": "e4",
        "customer_id": "c1",
        "occurred_at": T,
        "segment": "b2b",
        "signup_at": T - timedelta(days=400),
        "plan": "pro",
        "mrr_minor": 10_000,
        "cost_to_serve_minor": 4_000,
        "currency": "EUR",
        "products": 2,
        "referrals": 0,
        "consent": {"email": True, "sms": False, "phone": False, "push": True},
    },
    "ErasureRequest": {"event_id": "e5", "customer_id": "c1", "occurred_at": T},
    "HealthScoreChanged": {
        "event_id": "c1:health:e1",
        "customer_id": "c1",
        "occurred_at": T,
        "score": 41.5,
        "band": "watch",
        "previous_score": 62.0,
        "previous_band": "healthy",
        "contributions": [
            {
                "signal": "purchase_recency",
                "value": 40.0,
                "points": 30.0,
                "weight": 0.5,
                "contribution": 15.0,
            },
            {
                "signal": "nps",
                "value": 6.0,
                "points": 53.0,
                "weight": 0.5,
                "contribution": 26.5,
            },
        ],
        "segment": "b2c",
        "profile": "b2c",
        "config_version": "1+abc",
        "trigger": "event",
        "trend_7d": None,
        "trend_30d": None,
    },
    "CustomerAtRisk": {
        "event_id": "c1:health_at_risk:c1:1",
        "customer_id": "c1",
        "occurred_at": T,
        "episode_id": "c1:1",
        "rule": "health_at_risk",
        "score": 28.0,
        "band": "at_risk",
        "previous_band": "watch",
        "reasons": [
            {"code": "purchase_recency", "text": "No order for 40 days", "contribution": -20.0}
        ],
        "churn_reason": "low_usage",
        "route_to_team": "customer_success",
        "fit_status": "maintain",
        "profitability": 0.6,
        "unprofitable": False,
        "contactable": True,
        "channels": ["email", "push"],
        "suggested_play": "check-in call",
        "segment": "b2b",
        "config_version": "1+abc",
        "value_at_stake_minor": 12_500,
        "currency": "EUR",
    },
    "CustomerRecovered": {
        "event_id": "c1:recovered:c1:1",
        "customer_id": "c1",
        "occurred_at": T,
        "episode_id": "c1:1",
        "rule": "health_at_risk",
        "score": 75.0,
        "band": "healthy",
        "at_risk_since": T - timedelta(days=9),
        "config_version": "1+abc",
    },
    "DeadLetter": {
        "event_id": None,
        "customer_id": "c1",
        "source_topic": "customer.purchases",
        "source_partition": 3,
        "source_offset": 7,
        "key": b"c1",
        "payload": b"\x00\xff garbage",
        "reason": "malformed",
        "error": "bad",
        "step": "purchases",
        "failed_at": T,
        "payload_size": 10,
        "payload_sha256": "4c1e0d5a0b4b5c8d2a4e9b8f1f2e3d4c5b6a79808f7e6d5c4b3a291817161514",
    },
}

#: The contract: every record type, its namespace and its fields in order.
CONTRACT = {
    "Purchase": (
        "io.churnwatch.events",
        ["order_id", "amount_minor", "currency", "items", "channel"],
    ),
    "Engagement": ("io.churnwatch.events", ["kind", "count", "duration_s", "feature"]),
    "SupportEvent": (
        "io.churnwatch.events",
        ["kind", "ticket_id", "csat", "nps", "sentiment", "category"],
    ),
    "ProfileChange": (
        "io.churnwatch.events",
        [
            "segment",
            "signup_at",
            "plan",
            "mrr_minor",
            "cost_to_serve_minor",
            "currency",
            "products",
            "referrals",
            "consent",
        ],
    ),
    "ErasureRequest": ("io.churnwatch.events", []),
    "HealthScoreChanged": (
        "io.churnwatch.outputs",
        [
            "score",
            "band",
            "previous_score",
            "previous_band",
            "contributions",
            "segment",
            "profile",
            "config_version",
            "trigger",
            "trend_7d",
            "trend_30d",
        ],
    ),
    "CustomerAtRisk": (
        "io.churnwatch.outputs",
        [
            "episode_id",
            "rule",
            "score",
            "band",
            "previous_band",
            "reasons",
            "churn_reason",
            "route_to_team",
            "fit_status",
            "profitability",
            "unprofitable",
            "contactable",
            "channels",
            "suggested_play",
            "segment",
            "config_version",
            "value_at_stake_minor",
            "currency",
        ],
    ),
    "CustomerRecovered": (
        "io.churnwatch.outputs",
        ["episode_id", "rule", "score", "band", "at_risk_since", "config_version"],
    ),
}
COMMON = ["event_id", "customer_id", "occurred_at"]
DEAD_LETTER_FIELDS = [
    "event_id",
    "customer_id",
    "source_topic",
    "source_partition",
    "source_offset",
    "key",
    "payload",
    "reason",
    "error",
    "step",
    "failed_at",
    "payload_size",
    "payload_sha256",
]
TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}


def schema_files() -> list[Any]:
    """Every shipped .avsc file: current versions and kept previous versions."""
    folder = resources.files("streams").joinpath("schemas")
    return sorted((e for e in folder.iterdir() if e.name.endswith(".avsc")), key=lambda e: e.name)


def example_value(schema: Any, named: dict[str, Any]) -> Any:
    """A small valid value of any Avro schema (for record types without a hand-made sample)."""
    while isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        return None if "null" in schema else example_value(schema[0], named)
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return T
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: example_value(f["type"], named) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][0]
        if kind == "array":
            return [example_value(schema["items"], named)]
        if kind == "map":
            return {"k": example_value(schema["values"], named)}
        if kind == "fixed":
            return b"\x00" * schema["size"]
        return example_value(kind, named)
    primitives = {
        "null": None,
        "boolean": True,
        "int": 7,
        "long": 2**40,
        "float": 0.5,
        "double": 0.25,
        "string": "x",
        "bytes": b"\x01",
    }
    return primitives[schema]


def sample(name: str) -> dict[str, Any]:
    """The hand-made sample of a record type, or a generated one."""
    if name in SAMPLES:
        return SAMPLES[name]
    parsed = default_schemas().get(name).parsed
    record: dict[str, Any] = example_value(parsed, parsed["__named_schemas"])
    return record


ALL_TYPES = default_schemas().names


def avro_rabin(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def zigzag(n: int) -> bytes:
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def avro_string(text: str) -> bytes:
    raw = text.encode()
    return zigzag(len(raw)) + raw


def mock_registry() -> Any:
    return SchemaRegistryClient.new_client({"url": "mock://churnwatch-test"})


# --------------------------------------------------------------------------- schemas


def walk_named(schema: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every named type (record, enum) defined inline in ``schema``."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, list):
        for branch in schema:
            found += walk_named(branch, where)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            found.append((f"{where}:{schema['name']}", schema))
        for fld in schema.get("fields", []):
            found += walk_named(fld["type"], f"{where}.{fld['name']}")
        for key in ("items", "values"):
            if key in schema:
                found += walk_named(schema[key], where)
    return found


def test_every_schema_file_parses_on_its_own_and_documents_every_field() -> None:
    files = schema_files()
    current = [e.name.removesuffix(".avsc") for e in files if e.name.count(".") == 1]
    assert set(SAMPLES) <= set(current)
    assert sorted(current) == list(ALL_TYPES)
    for entry in files:
        raw = json.loads(entry.read_text("utf-8"))
        fastavro.parse_schema(raw)  # self-contained: parses without any other file
        assert raw["name"] == entry.name.split(".")[0]  # Purchase.avsc, Purchase.v1.avsc
        assert raw["namespace"].startswith("io.churnwatch."), entry.name
        for where, named in walk_named(raw, entry.name):
            assert named.get("doc"), f"{where} has no doc"
            if named["type"] == "enum" and "default" in named:
                assert named["default"] in named["symbols"], where
            for fld in named.get("fields", []):
                assert fld.get("doc"), f"{where}.{fld['name']} has no doc"


@pytest.mark.parametrize("name", ALL_TYPES)
def test_every_record_but_dead_letters_starts_with_the_common_fields(name: str) -> None:
    raw = default_schemas().get(name).raw
    if name != "DeadLetter":
        assert [fld["name"] for fld in raw["fields"][:3]] == COMMON
        assert [fld["type"] for fld in raw["fields"][:3]] == ["string", "string", TIMESTAMP]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_schema_matches_the_contract(name: str) -> None:
    raw = json.loads(resources.files("streams").joinpath("schemas", f"{name}.avsc").read_text())
    names = [fld["name"] for fld in raw["fields"]]
    types = {fld["name"]: fld["type"] for fld in raw["fields"]}
    if name == "DeadLetter":
        assert raw["namespace"] == "io.churnwatch.ops"
        assert names == DEAD_LETTER_FIELDS
        assert types["failed_at"] == TIMESTAMP
        return
    namespace, fields = CONTRACT[name]
    assert raw["namespace"] == namespace
    assert names == COMMON + fields
    assert types["event_id"] == types["customer_id"] == "string"
    assert types["occurred_at"] == TIMESTAMP


def test_schema_set_indexes_names_and_fingerprints() -> None:
    schemas = default_schemas()
    assert schemas is default_schemas()  # parsed once per process
    assert set(SAMPLES) <= set(schemas.names)
    purchase = schemas.get("Purchase")
    assert schemas.get("io.churnwatch.events.Purchase") is purchase
    assert "Purchase" in schemas and "Nope" not in schemas
    assert schemas.by_fingerprint(purchase.fingerprint) is purchase
    assert len({info.fingerprint for info in schemas}) == len(schemas)
    with pytest.raises(KeyError, match="Nope"):
        schemas.get("Nope")


def test_schema_directory_rejects_a_file_named_after_another_record(tmp_path: Path) -> None:
    source = resources.files("streams").joinpath("schemas", "Purchase.avsc")
    (tmp_path / "Engagement.avsc").write_text(source.read_text())
    with pytest.raises(ValueError, match="defines record 'Purchase'"):
        SchemaSet.from_directory(tmp_path)


# --------------------------------------------------------------------------- single object


@pytest.mark.parametrize("name", ALL_TYPES)
def test_single_object_round_trip(name: str) -> None:
    codec = SingleObjectCodec()
    data = codec.encode(name, sample(name))
    assert data[:2] == SINGLE_OBJECT_MARKER
    assert codec.decode(data, name) == (name, sample(name))


def test_single_object_header_is_the_spec_fingerprint_little_endian() -> None:
    codec = SingleObjectCodec()
    for info in default_schemas():
        expected = avro_rabin(info.canonical.encode()).to_bytes(8, "little")
        assert info.fingerprint == expected
        assert codec.encode(info.name, sample(info.name))[:10] == b"\xc3\x01" + expected


def test_decoded_timestamps_are_utc_aware_and_defaults_are_filled() -> None:
    codec = SingleObjectCodec()
    minimal = {k: v for k, v in PURCHASE.items() if k not in ("items", "channel")}
    plus_two = timezone(timedelta(hours=2))
    minimal["occurred_at"] = T.astimezone(plus_two)
    _, record = codec.decode(codec.encode("Purchase", minimal))
    assert record["occurred_at"] == T and record["occurred_at"].tzinfo == UTC
    assert (record["items"], record["channel"]) == (1, "other")


purchases = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=40),
        "customer_id": st.text(min_size=1, max_size=40),
        "occurred_at": st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.just(UTC),
        ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
        "order_id": st.text(max_size=20),
        "amount_minor": st.integers(-(2**63), 2**63 - 1),
        "currency": st.text(min_size=3, max_size=3),
        "items": st.integers(-(2**31), 2**31 - 1),
        "channel": st.sampled_from(["web", "app", "store", "phone", "marketplace", "other"]),
    }
)


@given(purchases)
def test_any_purchase_round_trips(record: dict[str, Any]) -> None:
    codec = SingleObjectCodec()
    assert codec.decode(codec.encode("Purchase", record), "Purchase") == ("Purchase", record)


@pytest.mark.parametrize(
    "data",
    [None, b"", b"\xc3", b"hello world", b"\xc3\x01" + b"\x00" * 3, b"\x00\x00\x00\x00\x01\x02"],
)
def test_garbage_and_empty_values_are_malformed(data: bytes | None) -> None:
    with pytest.raises(DecodeError) as info:
        SingleObjectCodec().decode(data)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("name", ALL_TYPES)
def test_every_truncation_and_trailing_bytes_are_malformed(name: str) -> None:
    codec = SingleObjectCodec()
    data = codec.encode(name, sample(name))
    for bad in [data[:cut] for cut in range(len(data))] + [data + b"\x00"]:
        with pytest.raises(DecodeError) as info:
            codec.decode(bad)
        assert info.value.reason == "malformed", bad


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_TYPES), st.binary(max_size=200))
def test_random_bodies_decode_or_raise_decode_error_only(name: str, body: bytes) -> None:
    codec = SingleObjectCodec()
    try:
        decoded_name, record = codec.decode(codec.header(name) + body)
    except DecodeError as exc:
        assert exc.reason == "malformed"
    else:
        assert decoded_name == name and isinstance(record, dict)


def test_unknown_fingerprint() -> None:
    with pytest.raises(DecodeError) as info:
        SingleObjectCodec().decode(b"\xc3\x01" + b"\x01" * 8 + b"\x00")
    assert info.value.reason == "unknown_schema"


def test_a_record_of_another_type_is_wrong_schema() -> None:
    codec = SingleObjectCodec()
    data = codec.encode("Purchase", PURCHASE)
    with pytest.raises(DecodeError) as info:
        codec.decode(data, "Engagement")
    assert info.value.reason == "wrong_schema"
    assert "Purchase" in str(info.value)
    with pytest.raises(DecodeError):
        codec.decode(data, ["Engagement", "SupportEvent"])
    assert codec.decode(data, ["Engagement", "io.churnwatch.events.Purchase"])[0] == "Purchase"


@pytest.mark.parametrize(
    "millis",
    [
        253_402_300_800_000,  # 10000-01-01: beyond Python's datetime
        2**62,
        -(2**62),
    ],
)
def test_out_of_range_timestamps_are_malformed(millis: int) -> None:
    codec = SingleObjectCodec()
    data = codec.header("ErasureRequest") + avro_string("e") + avro_string("c") + zigzag(millis)
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason == "malformed"


def test_an_overlong_varint_is_malformed() -> None:
    codec = SingleObjectCodec()
    data = codec.header("ErasureRequest") + avro_string("e") + avro_string("c") + b"\xff" * 12
    with pytest.raises(DecodeError) as info:
        codec.decode(data + b"\x01")
    assert info.value.reason == "malformed"


def test_the_last_representable_timestamp_still_decodes() -> None:
    codec = SingleObjectCodec()
    last = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    millis = int((last - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    data = codec.header("ErasureRequest") + avro_string("e") + avro_string("c") + zigzag(millis)
    assert codec.decode(data)[1]["occurred_at"] == last


def test_encoding_errors_name_the_field() -> None:
    codec = SingleObjectCodec()
    cases = {
        "amount_minor": dict(PURCHASE, amount_minor="lots"),
        "occurred_at": dict(PURCHASE, occurred_at=datetime(2026, 1, 1)),
        "currency": {k: v for k, v in PURCHASE.items() if k != "currency"},
        "channel": dict(PURCHASE, channel="fax"),
        "extra": dict(PURCHASE, extra=1),
    }
    for field, record in cases.items():
        with pytest.raises(EncodeError, match=field) as info:
            codec.encode("Purchase", record)
        assert info.value.reason == "invalid_record"
    with pytest.raises(EncodeError) as unknown:
        codec.encode("Refund", PURCHASE)
    assert unknown.value.reason == "unknown_type"


def write_old_purchase_schema(folder: Path, extra_symbol: str | None = None) -> dict[str, Any]:
    """An earlier Purchase version: no items, no channel (or a channel with another symbol)."""
    raw = json.loads(resources.files("streams").joinpath("schemas", "Purchase.avsc").read_text())
    if extra_symbol is None:
        raw["fields"] = [f for f in raw["fields"] if f["name"] not in ("items", "channel")]
    else:
        raw["fields"][-1]["type"]["symbols"].append(extra_symbol)
    (folder / "Purchase.avsc").write_text(json.dumps(raw))
    return raw


def test_records_written_with_a_previous_schema_version_still_decode(tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    old = write_old_purchase_schema(old_dir)
    shipped = resources.files("streams").joinpath("schemas", "Purchase.avsc").read_text()
    (new_dir / "Purchase.avsc").write_text(shipped)
    writer = SingleObjectCodec(SchemaSet.from_directory(old_dir))
    data = writer.encode("Purchase", {k: PURCHASE[k] for k in [f["name"] for f in old["fields"]]})

    without_history = SingleObjectCodec(SchemaSet.from_directory(new_dir))
    with pytest.raises(DecodeError) as info:
        without_history.decode(data)
    assert info.value.reason == "unknown_schema"

    shutil.copy(old_dir / "Purchase.avsc", new_dir / "Purchase.v1.avsc")
    reader = SingleObjectCodec(SchemaSet.from_directory(new_dir))
    assert reader.schemas.names == ("Purchase",)
    name, record = reader.decode(data, "Purchase")
    assert (record["items"], record["channel"]) == (1, "other")


def test_an_unknown_enum_symbol_reads_as_the_enum_default(tmp_path: Path) -> None:
    write_old_purchase_schema(tmp_path, extra_symbol="kiosk")
    newer_writer = SchemaSet.from_directory(tmp_path)
    data = SingleObjectCodec(newer_writer).encode("Purchase", dict(PURCHASE, channel="kiosk"))
    reader = SchemaSet(
        [json.loads(resources.files("streams").joinpath("schemas", "Purchase.avsc").read_text())],
        previous=[newer_writer.get("Purchase").raw],
    )
    assert SingleObjectCodec(reader).decode(data)[1]["channel"] == "other"


# --------------------------------------------------------------------------- registry


def test_registry_framing_with_the_mock_registry() -> None:
    client = mock_registry()
    writer = RegistryCodec(client)
    data = writer.encode("Purchase", PURCHASE)
    assert data[0] == CONFLUENT_MAGIC == 0
    schema_id = int.from_bytes(data[1:5], "big")
    registered = client.get_latest_version("io.churnwatch.events.Purchase")
    assert registered.schema_id == schema_id
    assert json.loads(registered.schema.schema_str)["name"] == "Purchase"
    assert writer.decode(data, "Purchase") == ("Purchase", PURCHASE)

    reader = RegistryCodec(client)  # fresh caches, same registry
    assert reader.decode(data, "Purchase") == ("Purchase", PURCHASE)
    assert writer.encode("Purchase", PURCHASE) == data  # id cached, same bytes


def test_every_record_type_round_trips_through_the_registry() -> None:
    client = mock_registry()
    writer, reader = RegistryCodec(client), RegistryCodec(client)
    ids = writer.warm_up()
    assert sorted(ids) == list(ALL_TYPES) and len(set(ids.values())) == len(ids)
    for name in ALL_TYPES:
        assert reader.decode(writer.encode(name, sample(name)), name) == (name, sample(name))


def test_registry_decode_errors() -> None:
    client = mock_registry()
    codec = RegistryCodec(client)
    data = codec.encode("Purchase", PURCHASE)
    cases = {
        "wrong_schema": (data, "Engagement"),
        "unknown_schema": (b"\x00\x00\x00\x99\x99\x00", None),
        "malformed": (SingleObjectCodec().encode("Purchase", PURCHASE), None),
    }
    for reason, (value, expected) in cases.items():
        with pytest.raises(DecodeError) as info:
            codec.decode(value, expected)
        assert info.value.reason == reason
    for bad in [None, b"", b"\x00\x00", data[:-2], data + b"\x00"]:
        with pytest.raises(DecodeError) as info:
            codec.decode(bad)
        assert info.value.reason == "malformed"


def test_a_registered_schema_this_build_does_not_ship_is_unknown() -> None:
    client = mock_registry()
    foreign = {"type": "record", "name": "Refund", "namespace": "x", "fields": []}
    schema_id = client.register_schema("x.Refund", Schema(json.dumps(foreign), "AVRO"))
    with pytest.raises(DecodeError) as info:
        RegistryCodec(client).decode(b"\x00" + schema_id.to_bytes(4, "big"))
    assert info.value.reason == "unknown_schema"


def test_an_older_registered_version_resolves_against_the_shipped_schema(tmp_path: Path) -> None:
    client = mock_registry()
    old = write_old_purchase_schema(tmp_path)
    writer = RegistryCodec(client, SchemaSet.from_directory(tmp_path))
    data = writer.encode("Purchase", {k: PURCHASE[k] for k in [f["name"] for f in old["fields"]]})
    _, record = RegistryCodec(client).decode(data, "Purchase")
    assert (record["items"], record["channel"]) == (1, "other")


class BrokenRegistry:
    """A registry client whose server cannot be reached."""

    def get_schema(self, schema_id: int) -> Any:
        raise ConnectionError("registry unreachable")

    def register_schema(self, subject: str, schema: Any) -> int:
        raise ConnectionError("registry unreachable")


def test_registry_failures_are_registry_errors() -> None:
    codec = RegistryCodec(BrokenRegistry())  # type: ignore[arg-type]
    with pytest.raises(DecodeError) as decode:
        codec.decode(b"\x00\x00\x00\x00\x01\x00")
    assert decode.value.reason == "registry_error"
    with pytest.raises(EncodeError) as encode:
        codec.encode("Purchase", PURCHASE)
    assert encode.value.reason == "registry_error"


def test_without_auto_registration_an_unregistered_schema_cannot_be_encoded() -> None:
    client = mock_registry()
    with pytest.raises(EncodeError) as info:
        RegistryCodec(client, auto_register=False).encode("Purchase", PURCHASE)
    assert info.value.reason == "registry_error"
    RegistryCodec(client).warm_up()
    data = RegistryCodec(client, auto_register=False).encode("Purchase", PURCHASE)
    assert RegistryCodec(client).decode(data) == ("Purchase", PURCHASE)


def test_build_codec_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURN_SCHEMA_REGISTRY_URL", raising=False)
    monkeypatch.delenv("CHURN_SCHEMA_REGISTRY_AUTH", raising=False)
    single = build_codec(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(single, SingleObjectCodec) and isinstance(single, Codec)

    registry = build_codec(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            schema_registry_url="mock://build-codec",
            schema_registry_auth="user:secret",  # type: ignore[arg-type]
        )
    )
    assert isinstance(registry, RegistryCodec) and isinstance(registry, Codec)
    assert registry.client.config()["basic.auth.user.info"] == "user:secret"
    assert registry.decode(registry.encode("Purchase", PURCHASE)) == ("Purchase", PURCHASE)


def test_keys_are_utf8_customer_ids() -> None:
    assert encode_key("kündin-7") == "kündin-7".encode()
    assert decode_key(encode_key("kündin-7")) == "kündin-7"
    for bad in (None, b"\xff\xfe"):
        with pytest.raises(DecodeError) as info:
            decode_key(bad)
        assert info.value.reason == "malformed"


# --------------------------------------------------------------------------- JSON Lines


@pytest.mark.parametrize("name", ALL_TYPES)
def test_json_round_trip(name: str) -> None:
    obj = json.loads(json.dumps(to_json_record(name, sample(name))))
    assert from_json_record(name, obj) == sample(name)
    line = to_json_line(name, sample(name))
    assert "\n" not in line
    assert json.loads(line) == {"type": name, "record": obj}
    assert from_json_line(line) == (name, sample(name))


def test_json_uses_iso_utc_timestamps_and_base64_bytes() -> None:
    obj = to_json_record("DeadLetter", SAMPLES["DeadLetter"])
    assert obj["failed_at"] == "2026-05-17T08:30:15.123Z"
    assert obj["payload"] == "AP8gZ2FyYmFnZQ=="
    assert obj["key"] == "YzE="


def test_json_fills_defaults_and_accepts_offsets() -> None:
    record = from_json_record(
        "Engagement",
        {
            "event_id": "e",
            "customer_id": "c",
            "occurred_at": "2026-05-17T10:30:15.123+02:00",
            "kind": "session",
        },
    )
    assert record == {
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": T,
        "kind": "session",
        "count": 1,
        "duration_s": None,
        "feature": None,
    }


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("amount_minor", {"amount_minor": "lots"}),
        ("amount_minor", {"amount_minor": 2**70}),
        ("occurred_at", {"occurred_at": "2026-01-01T00:00:00"}),
        ("occurred_at", {"occurred_at": 1767225600000}),
        ("channel", {"channel": "fax"}),
        ("amount_cents", {"amount_cents": 5}),
        ("currency", {"currency": None}),
    ],
)
def test_json_errors_name_the_field(field: str, change: dict[str, Any]) -> None:
    obj = to_json_record("Purchase", PURCHASE) | change
    with pytest.raises(RecordError, match=field):
        from_json_record("Purchase", obj)


def test_json_missing_required_field_and_bad_base64() -> None:
    obj = to_json_record("Purchase", PURCHASE)
    del obj["order_id"]
    with pytest.raises(RecordError, match="order_id") as info:
        from_json_record("Purchase", obj)
    assert info.value.field == "Purchase.order_id"
    dead = to_json_record("DeadLetter", SAMPLES["DeadLetter"]) | {"payload": "not base64!"}
    with pytest.raises(RecordError, match="payload"):
        from_json_record("DeadLetter", dead)


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"type": "Purchase"}',
        '{"type": "Refund", "record": {}}',
        '{"type": "Purchase", "record": {}, "extra": 1}',
        '{"type": "Purchase", "record": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_bad_json_lines_are_rejected(line: str) -> None:
    with pytest.raises(RecordError):
        from_json_line(line)
