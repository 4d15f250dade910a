"""Confluent Schema Registry framing: magic byte ``0``, the 4-byte schema id, then the
Avro body; subjects follow the record name strategy."""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn

from streams.codec.base import (
    DecodeError,
    EncodeError,
    Record,
    check_expected,
    read_body,
    write_body,
)
from streams.codec.schemas import SchemaInfo, SchemaSet, default_schemas, schema_info

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

CONFLUENT_MAGIC: Final = 0
"""First byte of every Confluent Schema Registry framed message."""

_CONFLUENT_HEADER: Final = 5
_MAX_UNKNOWN_IDS: Final = 1024


class RegistryUnavailable(RuntimeError):
    """The Schema Registry did not answer (down, timing out, a server error)."""


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
        write_body(info, record, out)
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
        record = read_body(bytes(data), _CONFLUENT_HEADER, registered.writer, registered.reader)
        check_expected(registered.reader.name, expected)
        return registered.reader.name, record

    def missing_schema(self, data: bytes | None) -> int | None:
        """The schema id ``data`` is framed with when it is neither known nor known to be
        unusable (so decoding it would ask the registry), else None."""
        if not data or len(data) < _CONFLUENT_HEADER or data[0] != CONFLUENT_MAGIC:
            return None
        schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        if schema_id in self._writers or schema_id in self._unknown_ids:
            return None
        return schema_id

    def fetch_schema(self, schema_id: int) -> None:
        """Ask the registry for ``schema_id`` and remember the answer (a blocking call: run
        it off the event loop). RegistryUnavailable when the registry cannot answer now;
        an id it does not know, or cannot be used, is remembered as unknown."""
        try:
            self._writer(schema_id)
        except DecodeError as exc:
            if exc.reason == "registry_error":
                raise RegistryUnavailable(str(exc)) from exc

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
            writer = schema_info(json.loads(schema.schema_str or ""))
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
