"""Avro single-object encoding: marker ``C3 01``, the writer schema's 8-byte fingerprint,
then the Avro body, resolved against the shipped schemas (the default wire format)."""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from typing import Any, Final

from streams.codec.base import (
    DecodeError,
    EncodeError,
    Record,
    check_expected,
    read_body,
    write_body,
)
from streams.codec.schemas import SchemaSet, default_schemas

SINGLE_OBJECT_MARKER: Final = b"\xc3\x01"
"""First two bytes of every Avro single-object encoded message."""

_FINGERPRINT_SIZE: Final = 8
_SINGLE_OBJECT_HEADER: Final = len(SINGLE_OBJECT_MARKER) + _FINGERPRINT_SIZE


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
        write_body(info, record, out)
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
        record = read_body(bytes(data), _SINGLE_OBJECT_HEADER, writer, reader)
        check_expected(reader.name, expected)
        return reader.name, record
