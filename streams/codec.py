"""The one codec of churnwatch: Avro records to and from Kafka bytes.

Two wire formats, both carrying the writer's schema identity so readers can resolve it:

* Avro single-object encoding (the default): marker ``C3 01``, the 8-byte little-endian
  CRC-64-AVRO fingerprint of the schema's parsing canonical form, then the Avro body.
  The writer schema is looked up among the schemas shipped in ``streams/schemas``.
* Confluent Schema Registry framing (when ``CHURN_SCHEMA_REGISTRY_URL`` is set): magic byte
  ``00``, a 4-byte big-endian schema id, then the Avro body. Schemas are registered under
  their full record name (record name strategy).

Every failure to decode becomes a :class:`DecodeError` with a stable ``reason`` that ends
up in the dead-letter record.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

import fastavro
from fastavro.schema import parse_schema, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from streams.settings import Settings

MARKER = b"\xc3\x01"
MAGIC = b"\x00"
_EMPTY = 0xC15D213AA4D7A795


@functools.cache
def _rabin_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


def fingerprint(canonical: str) -> bytes:
    """CRC-64-AVRO (Rabin) fingerprint of a canonical schema, little-endian bytes."""
    table, fp = _rabin_table(), _EMPTY
    for byte in canonical.encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


class DecodeError(ValueError):
    """Bytes that cannot be turned into the expected record; ``reason`` is stable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """The shipped schemas, parsed once: by short name and by fingerprint."""

    parsed: dict[str, Any]
    raw: dict[str, str]
    full_name: dict[str, str]
    fingerprints: dict[str, bytes]
    by_fingerprint: dict[bytes, str]

    def schema(self, name: str) -> Any:
        try:
            return self.parsed[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {sorted(self.parsed)}") from None


@functools.cache
def default_schemas() -> SchemaSet:
    """Parse every ``streams/schemas/*.avsc`` once per process."""
    parsed, raw, full, fps = {}, {}, {}, {}
    for entry in sorted(resources.files("streams").joinpath("schemas").iterdir(),
                        key=lambda e: e.name):
        if not entry.name.endswith(".avsc"):
            continue
        text = entry.read_text("utf-8")
        schema = parse_schema(json.loads(text))
        name = schema["name"].rsplit(".", 1)[-1]
        parsed[name], raw[name], full[name] = schema, text, schema["name"]
        fps[name] = fingerprint(to_parsing_canonical_form(schema))
    return SchemaSet(parsed, raw, full, fps, {fp: n for n, fp in fps.items()})


def _expected_set(expected: str | Collection[str] | None) -> Collection[str] | None:
    return (expected,) if isinstance(expected, str) else expected


def _body(schema: Any, record: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, dict(record))
    return buf.getvalue()


def _read(schema: Any, body: bytes, name: str) -> dict[str, Any]:
    buf = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(buf, schema, None)
    except Exception as exc:  # noqa: BLE001 - any failure in the body is malformed input
        raise DecodeError("malformed", f"cannot decode {name} body: {exc!r}") from exc
    if buf.tell() != len(body):
        raise DecodeError("malformed", f"{len(body) - buf.tell()} trailing bytes after {name}")
    if not isinstance(record, dict):
        raise DecodeError("malformed", f"{name} body is not a record")
    return record


def _check_expected(name: str, expected: Collection[str] | None) -> None:
    if expected is not None and name not in expected:
        raise DecodeError("wrong_schema", f"got a {name} record, expected {'/'.join(expected)}")


class Codec(Protocol):
    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes: ...

    def decode(self, data: bytes | None,
               expected: str | Collection[str] | None = None) -> tuple[str, dict[str, Any]]: ...


class SingleObjectCodec:
    """Avro single-object encoding against the shipped schemas."""

    def __init__(self, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas if schemas is not None else default_schemas()

    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes:
        schema = self.schemas.schema(type_name)
        return MARKER + self.schemas.fingerprints[type_name] + _body(schema, record)

    def decode(self, data: bytes | None,
               expected: str | Collection[str] | None = None) -> tuple[str, dict[str, Any]]:
        if not data or len(data) < 10 or data[:2] != MARKER:
            raise DecodeError("malformed", "not Avro single-object encoded (no C3 01 marker)")
        name = self.schemas.by_fingerprint.get(bytes(data[2:10]))
        if name is None:
            raise DecodeError("unknown_schema",
                              f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
        _check_expected(name, _expected_set(expected))
        return name, _read(self.schemas.schema(name), bytes(data[10:]), name)


class RegistryCodec:
    """Confluent Schema Registry framing; ``client`` is a SchemaRegistryClient."""

    def __init__(self, client: Any, schemas: SchemaSet | None = None) -> None:
        self.client = client
        self.schemas = schemas if schemas is not None else default_schemas()
        self._ids: dict[str, int] = {}
        self._readers: dict[int, tuple[str, Any]] = {}

    def _schema_id(self, type_name: str) -> int:
        if type_name not in self._ids:
            from confluent_kafka.schema_registry import Schema

            subject = self.schemas.full_name[type_name]
            schema = Schema(self.schemas.raw[type_name], "AVRO")
            self._ids[type_name] = int(self.client.register_schema(subject, schema))
        return self._ids[type_name]

    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes:
        schema = self.schemas.schema(type_name)
        return MAGIC + struct.pack(">I", self._schema_id(type_name)) + _body(schema, record)

    def _reader(self, schema_id: int) -> tuple[str, Any]:
        if schema_id not in self._readers:
            try:
                text = self.client.get_schema(schema_id).schema_str
            except Exception as exc:  # noqa: BLE001 - registry client raises many kinds
                raise DecodeError("registry_error",
                                  f"cannot fetch schema id {schema_id}: {exc!r}") from exc
            schema = parse_schema(json.loads(text))
            self._readers[schema_id] = (schema["name"].rsplit(".", 1)[-1], schema)
        return self._readers[schema_id]

    def decode(self, data: bytes | None,
               expected: str | Collection[str] | None = None) -> tuple[str, dict[str, Any]]:
        if not data or len(data) < 5 or data[:1] != MAGIC:
            raise DecodeError("malformed", "not Schema Registry framed (no magic byte 0)")
        (schema_id,) = struct.unpack(">I", data[1:5])
        name, writer = self._reader(schema_id)
        _check_expected(name, _expected_set(expected))
        return name, _read(writer, bytes(data[5:]), name)


def build_codec(settings: Settings, client: Any = None) -> Codec:
    """The codec the settings ask for: registry framing when a registry URL is set."""
    if not settings.schema_registry_url:
        return SingleObjectCodec()
    if client is None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, str] = {"url": settings.schema_registry_url}
        if settings.schema_registry_auth is not None:
            conf["basic.auth.user.info"] = settings.schema_registry_auth.get_secret_value()
        client = SchemaRegistryClient.new_client(conf)
    return RegistryCodec(client)


# -- JSON Lines ---------------------------------------------------------------------------
def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def to_json_record(type_name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a JSON-friendly dict: timestamps as ISO-8601 UTC, bytes as base64."""
    default_schemas().schema(type_name)
    return {k: _to_json(v) for k, v in record.items()}


def _from_json(schema: Any, value: Any, where: str) -> Any:
    if isinstance(schema, list):  # union: the first branch that accepts the value
        if value is None and "null" in schema:
            return None
        for branch in schema:
            if branch == "null":
                continue
            try:
                return _from_json(branch, value, where)
            except (ValueError, TypeError):
                continue
        raise ValueError(f"{where}: {value!r} fits no branch of {schema}")
    if isinstance(schema, dict):
        kind = schema.get("type")
        if schema.get("logicalType") == "timestamp-millis":
            if not isinstance(value, str):
                raise TypeError(f"{where}: expected an ISO-8601 timestamp string")
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(f"{where}: timestamp {value!r} has no time zone")
            return moment.astimezone(UTC)
        if kind == "record":
            if not isinstance(value, Mapping):
                raise TypeError(f"{where}: expected an object")
            return {f["name"]: _from_json(f["type"], value[f["name"]], f"{where}.{f['name']}")
                    for f in schema["fields"] if f["name"] in value}
        if kind == "array":
            return [_from_json(schema["items"], v, f"{where}[{i}]") for i, v in enumerate(value)]
        if kind == "map":
            return {k: _from_json(schema["values"], v, f"{where}.{k}") for k, v in value.items()}
        return _from_json(kind, value, where)
    if schema == "bytes":
        return base64.b64decode(value)
    return value


def from_json_record(type_name: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a JSON-friendly dict into an Avro record, validated against the schema.

    Raises ValueError naming the field when the object does not fit the schema.
    """
    schema = default_schemas().schema(type_name)
    try:
        record = _from_json(schema, obj, type_name)
        validate(record, schema, raise_errors=True)
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"invalid {type_name}: {exc}") from exc
    return dict(record)
