"""What every codec shares: the decoded record type, the errors, the :class:`Codec`
protocol, the Avro binary body both wire formats carry, and the Kafka key."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from streams.codec.schemas import SchemaInfo

Record: TypeAlias = dict[str, Any]
"""A decoded Avro record: field name to value (datetimes are timezone-aware UTC)."""

DECODE_REASONS: Final = ("malformed", "unknown_schema", "wrong_schema", "registry_error")
"""Every ``reason`` a :class:`DecodeError` can carry."""


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


def check_expected(name: str, expected: str | Collection[str] | None) -> None:
    names = _expected_names(expected)
    if names is not None and name not in names:
        raise DecodeError(
            "wrong_schema", f"got a {name} record, expected {' or '.join(sorted(names))}"
        )


_SCALARS = (str, int, float, bool, bytes, type(None))


def _naive_datetime_path(value: Any, path: str) -> str | None:
    """The path of the first naive datetime inside ``value``, or None."""
    steps = _naive_datetime_steps(value)
    if steps is None:
        return None
    out = path
    for step in reversed(steps):
        out = f"{out}[{step}]" if isinstance(step, int) else (
            f"{out}.{step}" if out else str(step))
    return out


def _naive_datetime_steps(value: Any) -> list[Any] | None:
    """The keys and indexes (innermost first) leading to the first naive datetime inside
    ``value``, or None; no path is built unless one is found."""
    if type(value) in _SCALARS:
        return None
    if isinstance(value, datetime):
        return [] if value.utcoffset() is None else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(item) in _SCALARS:
                continue
            found = _naive_datetime_steps(item)
            if found is not None:
                found.append(key)
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            found = _naive_datetime_steps(item)
            if found is not None:
                found.append(index)
                return found
    return None


def validation_message(error: ValidationError) -> str:
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


def write_body(info: SchemaInfo, record: Mapping[str, Any], out: io.BytesIO) -> None:
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
            message = validation_message(invalid)
        raise EncodeError("invalid_record", message) from exc


def read_body(data: bytes, offset: int, writer: SchemaInfo, reader: SchemaInfo | None) -> Record:
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
