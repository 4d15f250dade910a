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

One module per job: :mod:`.schemas` (loading and finding schemas), :mod:`.base` (record
type, errors, the :class:`Codec` protocol, the Avro body, keys), :mod:`.single_object`
and :mod:`.registry` (the two wire formats), :mod:`.build` (:func:`build_codec`) and
:mod:`.jsonform` (the JSON Lines event format).
"""

from __future__ import annotations

from streams.codec.base import (
    DECODE_REASONS,
    Codec,
    CodecError,
    DecodeError,
    EncodeError,
    Record,
    RecordError,
    decode_key,
    encode_key,
)
from streams.codec.build import build_codec
from streams.codec.jsonform import from_json_line, from_json_record, to_json_line, to_json_record
from streams.codec.registry import CONFLUENT_MAGIC, RegistryCodec, RegistryUnavailable
from streams.codec.schemas import SchemaInfo, SchemaSet, default_schemas
from streams.codec.single_object import SINGLE_OBJECT_MARKER, SingleObjectCodec

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
    "RegistryUnavailable",
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
