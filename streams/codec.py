"""The one codec of churnwatch: Avro records to bytes and back.

Every record type has an Avro schema in ``streams/schemas/<Record>.avsc``. The schemas are
parsed once per process into a :class:`SchemaSet` (see :func:`default_schemas`).

Two wire formats are supported, picked by :func:`build_codec` from the settings:

* :class:`SingleObjectCodec` (default): Avro single-object encoding, i.e. the marker
  ``C3 01``, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the writer schema's
  parsing canonical form, then the Avro binary body. The writer schema is resolved by
  fingerprint against the schemas shipped with the package.
* :class:`RegistryCodec`: Confluent Schema Registry framing, i.e. the magic byte ``0``, the
  4-byte big-endian schema id, then the Avro binary body. Subjects follow the record name
  strategy (subject = fully qualified record name), so encoding needs no topic.

Every decoding failure raises :class:`DecodeError` whose ``reason`` is a stable machine code
that the worker copies into the dead-letter record. :func:`to_json_record` and
:func:`from_json_record` convert records to and from the JSON Lines event format
documented in ``docs/events.md``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import io
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, TypeAlias, runtime_checkable

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from streams.settings import Settings

__all__ = [
    "CONFLUENT_MAGIC",
    "DECODE_REASONS",
    "SINGLE_OBJECT_MARKER",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "Record",
    "RecordError",
    "RegistryCodec",
    "SchemaInfo",
    "SchemaSet",
    "SingleObjectCodec",
    "build_codec",
    "decode_key",
    "default_schemas",
    "encode_key",
    "from_json_line",
    "from_json_record",
    "to_json_line",
    "to_json_record",
]

Record: TypeAlias = dict[str, Any]
"""A decoded Avro record: field name to value (datetimes are timezone-aware UTC)."""

SINGLE_OBJECT_MARKER: Final = b"\xc3\x01"
"""First two bytes of every Avro single-object encoded message."""

CONFLUENT_MAGIC: Final = 0
"""First byte of every Confluent Schema Registry framed message."""

DECODE_REASONS: Final = ("malformed", "unknown_schema", "wrong_schema", "registry_error")
"""Every ``reason`` a :class:`DecodeError` can carry."""

_FINGERPRINT_SIZE: Final = 8
_SINGLE_OBJECT_HEADER: Final = len(SINGLE_OBJECT_MARKER) + _FINGERPRINT_SIZE
_CONFLUENT_HEADER: Final = 5
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_UNKNOWN_IDS: Final = 1024


# --------------------------------------------------------------------------- errors


class CodecError(ValueError):
    """Base of the codec's errors: a stable machine ``reason`` and a human ``message``.

    ``str(error)`` is the message alone; the reason is kept apart for dead letters, log
    fields and metric labels.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class DecodeError(CodecError):
    """Bytes could not be turned into the expected record.

    ``reason`` is one of :data:`DECODE_REASONS`:

    * ``malformed``: the bytes are not a framed Avro body (bad header, truncated, garbage,
      trailing bytes, out-of-range values);
    * ``unknown_schema``: the fingerprint or schema id is not known;
    * ``wrong_schema``: the record decoded but is not a type expected on this topic, or
      its writer schema cannot be resolved against the shipped schema of the same name;
    * ``registry_error``: the Schema Registry could not be asked.
    """


class EncodeError(CodecError):
    """A record could not be encoded.

    ``reason`` is ``unknown_type`` (no shipped schema of that name), ``invalid_record``
    (the record does not match its schema; the message names the field) or
    ``registry_error`` (the schema could not be registered or looked up).
    """


class RecordError(ValueError):
    """A JSON record does not match its schema; ``field`` is the dotted path at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """One parsed schema version of a record type."""

    name: str
    """Short record name, e.g. ``"Purchase"``."""
    full_name: str
    """Fully qualified record name, e.g. ``"io.churnwatch.events.Purchase"``."""
    raw: Mapping[str, Any] = field(repr=False)
    """The schema as written in its ``.avsc`` file."""
    parsed: dict[str, Any] = field(repr=False)
    """The schema as returned by ``fastavro.parse_schema``."""
    canonical: str = field(repr=False)
    """Parsing canonical form of the schema."""
    fingerprint: bytes
    """CRC-64-AVRO fingerprint of the canonical form, 8 bytes little-endian."""


def _schema_info(raw: Mapping[str, Any]) -> SchemaInfo:
    parsed = fastavro.parse_schema(copy.deepcopy(dict(raw)))
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError("a churnwatch schema must be an Avro record")
    full_name = str(parsed["name"])
    canonical = to_parsing_canonical_form(parsed)
    return SchemaInfo(
        name=full_name.rsplit(".", 1)[-1],
        full_name=full_name,
        raw=raw,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaSet:
    """The parsed record schemas a process knows, by short name, full name and fingerprint.

    ``schemas`` are the current versions (one per record type, short names unique).
    ``previous`` are earlier versions still accepted as writer schemas when decoding
    single-object messages; each must have the same full name as a current schema.
    """

    def __init__(
        self,
        schemas: Iterable[Mapping[str, Any]],
        previous: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self._current: dict[str, SchemaInfo] = {}
        self._by_full_name: dict[str, SchemaInfo] = {}
        self._by_fingerprint: dict[bytes, SchemaInfo] = {}
        for raw in schemas:
            info = _schema_info(raw)
            if info.name in self._current:
                raise ValueError(f"two schemas share the record name {info.name!r}")
            self._current[info.name] = info
            self._by_full_name[info.full_name] = info
            self._by_fingerprint[info.fingerprint] = info
        for raw in previous:
            info = _schema_info(raw)
            if info.full_name not in self._by_full_name:
                raise ValueError(f"previous schema {info.full_name} has no current version")
            self._by_fingerprint.setdefault(info.fingerprint, info)

    @classmethod
    def from_directory(cls, directory: Traversable) -> SchemaSet:
        """Load every ``*.avsc`` file of ``directory``.

        ``<Record>.avsc`` is the current version of a record type and must define the
        record ``<Record>``. ``<Record>.<tag>.avsc`` (e.g. ``Purchase.v1.avsc``) is an
        earlier version kept so that messages written with it still decode.
        """
        current: list[Mapping[str, Any]] = []
        previous: list[Mapping[str, Any]] = []
        for entry in sorted(directory.iterdir(), key=lambda item: item.name):
            if not entry.is_file() or not entry.name.endswith(".avsc"):
                continue
            stem = entry.name.removesuffix(".avsc")
            record_name, _, tag = stem.partition(".")
            try:
                raw = json.loads(entry.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{entry.name}: cannot read schema: {exc}") from exc
            declared = str(raw.get("name", "")).rsplit(".", 1)[-1]
            if declared != record_name:
                raise ValueError(f"{entry.name} defines record {declared!r}, not {record_name!r}")
            (previous if tag else current).append(raw)
        return cls(current, previous)

    @classmethod
    def from_package(cls) -> SchemaSet:
        """Load the schemas shipped in ``streams/schemas``."""
        return cls.from_directory(resources.files("streams").joinpath("schemas"))

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the current record types, sorted."""
        return tuple(sorted(self._current))

    def __iter__(self) -> Iterator[SchemaInfo]:
        """The current schema of every record type, sorted by short name."""
        return iter(self._current[name] for name in self.names)

    def __len__(self) -> int:
        """Number of record types."""
        return len(self._current)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` (short or fully qualified) is a known record type."""
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> SchemaInfo | None:
        """The current schema of a record type by short or full name, or None."""
        return self._current.get(name) or self._by_full_name.get(name)

    def get(self, name: str) -> SchemaInfo:
        """The current schema of a record type by short or full name; KeyError if unknown."""
        info = self.find(name)
        if info is None:
            raise KeyError(f"unknown record type {name!r}; known: {', '.join(self.names)}")
        return info

    def by_fingerprint(self, fp: bytes) -> SchemaInfo | None:
        """The schema version (current or previous) with this 8-byte fingerprint, or None."""
        return self._by_fingerprint.get(bytes(fp))


@functools.cache
def default_schemas() -> SchemaSet:
    """The schemas shipped with the package, loaded and parsed once per process."""
    return SchemaSet.from_package()


# --------------------------------------------------------------------------- codecs


@runtime_checkable
class Codec(Protocol):
    """Turns records into message values and back."""

    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record`` as the record type ``type_name`` (short or full name).

        Raises :class:`EncodeError`.
        """
        ...

    def decode(
        self, data: bytes | None, expected: str | Collection[str] | None = None
    ) -> tuple[str, Record]:
        """Decode a message value into (short record name, record).

        ``expected`` names the record type(s) allowed on the topic; anything else raises
        ``DecodeError("wrong_schema")``. A missing or empty value is ``malformed``.
        Raises only :class:`DecodeError`.
        """
        ...


def _expected_names(expected: str | Collection[str] | None) -> frozenset[str] | None:
    if expected is None:
        return None
    if isinstance(expected, str):
        expected = (expected,)
    return frozenset(name.rsplit(".", 1)[-1] for name in expected)


def _check_expected(name: str, expected: str | Collection[str] | None) -> None:
    names = _expected_names(expected)
    if names is not None and name not in names:
        raise DecodeError(
            "wrong_schema", f"got a {name} record, expected {' or '.join(sorted(names))}"
        )


def _naive_datetime_path(value: Any, path: str) -> str | None:
    """The path of the first naive datetime inside ``value``, or None."""
    if isinstance(value, datetime):
        return path if value.utcoffset() is None else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _naive_datetime_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _naive_datetime_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors:
        schema = item.schema
        if isinstance(schema, dict):
            kind = str(schema.get("type"))
            if kind == "enum":
                kind = "one of " + ", ".join(schema.get("symbols", ()))
        else:
            kind = str(schema)
        parts.append(f"{item.field}: {item.datum!r} is not a valid {kind}")
    return "; ".join(parts) or str(error)


def _write_body(info: SchemaInfo, record: Mapping[str, Any], out: io.BytesIO) -> None:
    """Append the Avro binary body of ``record`` to ``out``; EncodeError if invalid."""
    naive = _naive_datetime_path(record, info.name)
    if naive is not None:
        raise EncodeError("invalid_record", f"{naive}: datetime must be timezone-aware")
    try:
        fastavro.schemaless_writer(out, info.parsed, record, strict_allow_default=True)
    except Exception as exc:
        message = f"{info.name}: {exc}"
        try:
            validate(record, info.parsed, raise_errors=True)
        except ValidationError as invalid:
            message = _validation_message(invalid)
        raise EncodeError("invalid_record", message) from exc


def _read_body(data: bytes, offset: int, writer: SchemaInfo, reader: SchemaInfo | None) -> Record:
    """Decode the Avro body of ``data`` starting at ``offset``; DecodeError on any failure."""
    fo = io.BytesIO(data)
    fo.seek(offset)
    reader_schema = None if reader is None or reader is writer else reader.parsed
    try:
        record = fastavro.schemaless_reader(fo, writer.parsed, reader_schema)
    except SchemaResolutionError as exc:
        raise DecodeError(
            "wrong_schema", f"{writer.full_name} cannot be read with the shipped schema: {exc}"
        ) from exc
    except Exception as exc:
        raise DecodeError(
            "malformed", f"invalid {writer.name} body: {type(exc).__name__}: {exc}"
        ) from exc
    trailing = len(data) - fo.tell()
    if trailing:
        raise DecodeError("malformed", f"{trailing} trailing bytes after the {writer.name} body")
    if not isinstance(record, dict):
        raise DecodeError("malformed", f"{writer.name} body is not a record")
    return record


class SingleObjectCodec:
    """Avro single-object encoding resolved against the shipped schemas."""

    def __init__(self, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas if schemas is not None else default_schemas()

    def header(self, type_name: str) -> bytes:
        """The 10-byte header (marker and fingerprint) of the current ``type_name`` schema."""
        return SINGLE_OBJECT_MARKER + self.schemas.get(type_name).fingerprint

    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record`` with the current schema of ``type_name``."""
        info = self.schemas.find(type_name)
        if info is None:
            raise EncodeError("unknown_type", f"no schema for record type {type_name!r}")
        out = io.BytesIO()
        out.write(SINGLE_OBJECT_MARKER)
        out.write(info.fingerprint)
        _write_body(info, record, out)
        return out.getvalue()

    def decode(
        self, data: bytes | None, expected: str | Collection[str] | None = None
    ) -> tuple[str, Record]:
        """Decode a single-object message into (short record name, record)."""
        if not data:
            raise DecodeError("malformed", "empty record value")
        if len(data) < _SINGLE_OBJECT_HEADER:
            raise DecodeError("malformed", f"{len(data)} bytes is too short for a message")
        if data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError("malformed", "no Avro single-object marker C3 01")
        fp = bytes(data[2:_SINGLE_OBJECT_HEADER])
        writer = self.schemas.by_fingerprint(fp)
        if writer is None:
            raise DecodeError("unknown_schema", f"unknown schema fingerprint {fp.hex()}")
        reader = self.schemas.get(writer.full_name)
        record = _read_body(bytes(data), _SINGLE_OBJECT_HEADER, writer, reader)
        _check_expected(reader.name, expected)
        return reader.name, record


@dataclass(frozen=True, slots=True)
class _RegisteredWriter:
    writer: SchemaInfo
    reader: SchemaInfo


class RegistryCodec:
    """Confluent Schema Registry framing with the record name subject strategy.

    Schemas are registered lazily on first encode (or all at once with :meth:`warm_up`)
    and schema ids are cached both ways, so the registry is asked at most once per schema
    per process. The client's calls block: call :meth:`warm_up` at start-up, before the
    agents run, so that encoding and decoding the shipped schemas never waits on it.
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        schemas: SchemaSet | None = None,
        *,
        auto_register: bool = True,
    ) -> None:
        self.client = client
        self.schemas = schemas if schemas is not None else default_schemas()
        self.auto_register = auto_register
        self._ids: dict[str, int] = {}
        self._writers: dict[int, _RegisteredWriter] = {}
        self._unknown_ids: dict[int, str] = {}

    @staticmethod
    def subject(info: SchemaInfo) -> str:
        """Registry subject of a record type: its fully qualified name."""
        return info.full_name

    def schema_id(self, type_name: str) -> int:
        """Registry id of the current schema of ``type_name``, registering it if allowed."""
        info = self.schemas.find(type_name)
        if info is None:
            raise EncodeError("unknown_type", f"no schema for record type {type_name!r}")
        cached = self._ids.get(info.name)
        if cached is not None:
            return cached
        from confluent_kafka.schema_registry import Schema

        schema = Schema(json.dumps(info.raw, separators=(",", ":")), "AVRO")
        subject = self.subject(info)
        try:
            if self.auto_register:
                schema_id = self.client.register_schema(subject, schema)
            else:
                found = self.client.lookup_schema(subject, schema)
                if found.schema_id is None:
                    raise LookupError("registry returned no schema id")
                schema_id = found.schema_id
        except Exception as exc:
            raise EncodeError(
                "registry_error", f"cannot get a schema id for subject {subject}: {exc}"
            ) from exc
        self._ids[info.name] = schema_id
        self._writers[schema_id] = _RegisteredWriter(writer=info, reader=info)
        return schema_id

    def warm_up(self) -> dict[str, int]:
        """Register (or look up) every shipped schema now; returns record name to id."""
        return {name: self.schema_id(name) for name in self.schemas.names}

    def encode(self, type_name: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record``: magic byte, 4-byte big-endian schema id, Avro body."""
        schema_id = self.schema_id(type_name)
        info = self.schemas.get(type_name)
        out = io.BytesIO()
        out.write(bytes((CONFLUENT_MAGIC,)))
        out.write(schema_id.to_bytes(4, "big"))
        _write_body(info, record, out)
        return out.getvalue()

    def decode(
        self, data: bytes | None, expected: str | Collection[str] | None = None
    ) -> tuple[str, Record]:
        """Decode a registry-framed message into (short record name, record)."""
        if not data:
            raise DecodeError("malformed", "empty record value")
        if len(data) < _CONFLUENT_HEADER:
            raise DecodeError("malformed", f"{len(data)} bytes is too short for a message")
        if data[0] != CONFLUENT_MAGIC:
            raise DecodeError("malformed", f"magic byte is {data[0]}, not {CONFLUENT_MAGIC}")
        schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        registered = self._writer(schema_id)
        record = _read_body(bytes(data), _CONFLUENT_HEADER, registered.writer, registered.reader)
        _check_expected(registered.reader.name, expected)
        return registered.reader.name, record

    def _writer(self, schema_id: int) -> _RegisteredWriter:
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        known_bad = self._unknown_ids.get(schema_id)
        if known_bad is not None:
            raise DecodeError("unknown_schema", known_bad)
        try:
            schema = self.client.get_schema(schema_id)
        except Exception as exc:
            if getattr(exc, "http_status_code", None) == 404:
                self._unknown(schema_id, f"schema id {schema_id} is not in the registry")
            raise DecodeError(
                "registry_error", f"cannot fetch schema id {schema_id}: {exc}"
            ) from exc
        if (schema.schema_type or "AVRO") != "AVRO":
            self._unknown(schema_id, f"schema id {schema_id} is {schema.schema_type}, not AVRO")
        try:
            writer = _schema_info(json.loads(schema.schema_str or ""))
        except Exception as exc:
            self._unknown(schema_id, f"schema id {schema_id} is not a usable Avro record: {exc}")
        reader = self.schemas.find(writer.full_name)
        if reader is None:
            self._unknown(schema_id, f"schema id {schema_id} is {writer.full_name}, not shipped")
        registered = _RegisteredWriter(writer=writer, reader=reader)
        self._writers[schema_id] = registered
        return registered

    def _unknown(self, schema_id: int, message: str) -> NoReturn:
        """Remember a schema id that cannot be used (bounded) and raise unknown_schema."""
        if len(self._unknown_ids) >= _MAX_UNKNOWN_IDS:
            self._unknown_ids.pop(next(iter(self._unknown_ids)))
        self._unknown_ids[schema_id] = message
        raise DecodeError("unknown_schema", message)


def build_codec(
    settings: Settings,
    client: SchemaRegistryClient | None = None,
    schemas: SchemaSet | None = None,
) -> Codec:
    """The codec the settings ask for.

    A :class:`RegistryCodec` when ``schema_registry_url`` is set, otherwise a
    :class:`SingleObjectCodec`. Without ``client`` a registry client is made from the
    settings (basic auth from ``schema_registry_auth`` as ``user:password``); a
    ``mock://`` URL gives confluent-kafka's in-memory registry, private to this process.
    """
    if not settings.schema_registry_url:
        return SingleObjectCodec(schemas)
    if client is None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": settings.schema_registry_url}
        if settings.schema_registry_auth is not None:
            conf["basic.auth.user.info"] = settings.schema_registry_auth.get_secret_value()
        client = SchemaRegistryClient.new_client(conf)
    return RegistryCodec(client, schemas)


def encode_key(customer_id: str) -> bytes:
    """The Kafka key of a customer's records: its id as UTF-8 bytes."""
    return customer_id.encode("utf-8")


def decode_key(key: bytes | None) -> str:
    """The customer id of a Kafka key; DecodeError("malformed") if absent or not UTF-8."""
    if key is None:
        raise DecodeError("malformed", "record has no key (customer id)")
    try:
        return bytes(key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("malformed", f"key is not UTF-8: {exc}") from exc


# --------------------------------------------------------------------------- JSON


def _timestamp_to_json(value: Any, path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = _EPOCH + timedelta(milliseconds=value)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise RecordError(f"{path}: expected a timezone-aware datetime, got {value!r}", path)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def _timestamp_from_json(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.utcoffset() is not None:
            return parsed.astimezone(UTC)
    raise RecordError(
        f"{path}: expected an ISO-8601 timestamp with a time zone such as "
        f"2024-05-01T12:00:00Z, got {value!r}",
        path,
    )


def _resolve(schema: Any, named: Mapping[str, Any]) -> Any:
    while isinstance(schema, str) and schema in named:
        schema = named[schema]
    return schema


def _matches(schema: Any, value: Any, named: Mapping[str, Any]) -> bool:
    """Whether a Python ``value`` could belong to the (non-union) ``schema``."""
    schema = _resolve(schema, named)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical in ("timestamp-millis", "timestamp-micros"):
        return isinstance(value, datetime) or (
            isinstance(value, int) and not isinstance(value, bool)
        )
    checks: dict[str, Any] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "bytes": lambda v: isinstance(v, bytes | bytearray),
        "enum": lambda v: isinstance(v, str) and v in schema.get("symbols", ()),
        "record": lambda v: isinstance(v, Mapping),
        "map": lambda v: isinstance(v, Mapping),
        "array": lambda v: isinstance(v, list | tuple),
    }
    check = checks.get(str(kind))
    return bool(check(value)) if check is not None else False


def _to_json(schema: Any, value: Any, path: str, named: Mapping[str, Any]) -> Any:
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        if value is None:
            return None
        for branch in schema:
            if branch != "null" and _matches(branch, value, named):
                return _to_json(branch, value, path, named)
        raise RecordError(f"{path}: {value!r} matches no branch of {schema}", path)
    if not isinstance(schema, dict):
        if schema == "bytes" and isinstance(value, bytes | bytearray):
            return base64.b64encode(bytes(value)).decode("ascii")
        return value
    if schema.get("logicalType") == "timestamp-millis":
        return _timestamp_to_json(value, path)
    kind = schema["type"]
    if kind == "record":
        out: dict[str, Any] = {}
        for fld in schema["fields"]:
            name = fld["name"]
            item = value[name] if name in value else copy.deepcopy(fld.get("default"))
            out[name] = _to_json(fld["type"], item, f"{path}.{name}", named)
        return out
    if kind == "array":
        return [
            _to_json(schema["items"], item, f"{path}[{i}]", named) for i, item in enumerate(value)
        ]
    if kind == "map":
        return {
            str(k): _to_json(schema["values"], item, f"{path}.{k}", named)
            for k, item in value.items()
        }
    return _to_json(kind, value, path, named) if isinstance(kind, str | list) else value


def _from_json(schema: Any, value: Any, path: str, named: Mapping[str, Any]) -> Any:
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        if value is None and "null" in schema:
            return None
        errors = []
        for branch in schema:
            if branch == "null":
                continue
            try:
                return _from_json(branch, value, path, named)
            except RecordError as exc:
                errors.append(str(exc))
        raise RecordError("; ".join(errors) or f"{path}: {value!r} is not valid", path)
    if not isinstance(schema, dict):
        if schema == "bytes":
            if not isinstance(value, str):
                raise RecordError(f"{path}: expected base64 text, got {value!r}", path)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RecordError(f"{path}: invalid base64: {exc}", path) from exc
        if schema in ("int", "long") and isinstance(value, float) and value.is_integer():
            return int(value)
        if schema in ("int", "long", "float", "double", "string", "boolean", "null"):
            if not _matches(schema, value, named):
                raise RecordError(f"{path}: {value!r} is not a valid {schema}", path)
        return value
    if schema.get("logicalType") == "timestamp-millis":
        return _timestamp_from_json(value, path)
    kind = schema["type"]
    if kind == "record":
        if not isinstance(value, Mapping):
            raise RecordError(f"{path}: expected an object, got {value!r}", path)
        names = [fld["name"] for fld in schema["fields"]]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise RecordError(f"{path}: unknown field(s) {', '.join(unknown)}", path)
        out: dict[str, Any] = {}
        for fld in schema["fields"]:
            name = fld["name"]
            if name in value:
                item = value[name]
            elif "default" in fld:
                item = copy.deepcopy(fld["default"])
            else:
                raise RecordError(f"{path}.{name}: required field is missing", f"{path}.{name}")
            out[name] = _from_json(fld["type"], item, f"{path}.{name}", named)
        return out
    if kind == "array":
        if not isinstance(value, list):
            raise RecordError(f"{path}: expected an array, got {value!r}", path)
        return [
            _from_json(schema["items"], item, f"{path}[{i}]", named) for i, item in enumerate(value)
        ]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise RecordError(f"{path}: expected an object, got {value!r}", path)
        return {
            str(k): _from_json(schema["values"], item, f"{path}.{k}", named)
            for k, item in value.items()
        }
    if kind == "enum":
        if not isinstance(value, str) or value not in schema["symbols"]:
            symbols = ", ".join(schema["symbols"])
            raise RecordError(f"{path}: {value!r} is not one of {symbols}", path)
        return value
    return _from_json(kind, value, path, named) if isinstance(kind, str | list) else value


def _validated(info: SchemaInfo, record: Mapping[str, Any]) -> None:
    try:
        validate(record, info.parsed, raise_errors=True)
    except ValidationError as exc:
        first = exc.errors[0].field if exc.errors else None
        raise RecordError(_validation_message(exc), first) from exc


def to_json_record(
    type_name: str, record: Mapping[str, Any], schemas: SchemaSet | None = None
) -> dict[str, Any]:
    """A JSON-friendly copy of an Avro record, validated against its schema.

    Timestamps become ISO-8601 UTC strings ending in ``Z`` (millisecond precision), bytes
    become base64 text, missing fields with defaults get their default. Raises
    :class:`RecordError` naming the field at fault.
    """
    info = (schemas or default_schemas()).get(type_name)
    named = info.parsed.get("__named_schemas", {})
    out: dict[str, Any] = _to_json(info.parsed, record, info.name, named)
    _validated(info, _from_json(info.parsed, out, info.name, named))
    return out


def from_json_record(
    type_name: str, obj: Mapping[str, Any], schemas: SchemaSet | None = None
) -> Record:
    """The Avro record of a JSON object written by :func:`to_json_record` (or by hand).

    Timestamps must be ISO-8601 strings with a time zone (``Z`` or an offset) and come
    back as UTC datetimes; bytes are base64 text; omitted fields take their schema
    default; unknown fields are rejected. Raises :class:`RecordError` naming the field.
    """
    info = (schemas or default_schemas()).get(type_name)
    named = info.parsed.get("__named_schemas", {})
    record: Record = _from_json(info.parsed, obj, info.name, named)
    _validated(info, record)
    return record


def to_json_line(
    type_name: str, record: Mapping[str, Any], schemas: SchemaSet | None = None
) -> str:
    """One JSON Lines line (without newline): ``{"type": ..., "record": {...}}``."""
    schema_set = schemas or default_schemas()
    name = schema_set.get(type_name).name
    payload = {"type": name, "record": to_json_record(name, record, schema_set)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def from_json_line(line: str, schemas: SchemaSet | None = None) -> tuple[str, Record]:
    """Parse one JSON Lines line into (short record name, record); RecordError if invalid."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"not a JSON object: {exc}") from exc
    except RecursionError as exc:
        raise RecordError("not a JSON object: nested too deeply") from exc
    if not isinstance(obj, dict) or set(obj) != {"type", "record"}:
        raise RecordError('expected exactly {"type": ..., "record": {...}}')
    schema_set = schemas or default_schemas()
    type_name = obj["type"]
    if not isinstance(type_name, str) or type_name not in schema_set:
        raise RecordError(f"unknown record type {type_name!r}", "type")
    name = schema_set.get(type_name).name
    return name, from_json_record(name, obj["record"], schema_set)
