"""Records to and from the JSON Lines event format of ``docs/events.md``, checked against
their schemas."""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastavro.validation import ValidationError, validate

from streams.codec.base import Record, RecordError, validation_message
from streams.codec.schemas import SchemaInfo, SchemaSet, default_schemas

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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
        raise RecordError(validation_message(exc), first) from exc


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
