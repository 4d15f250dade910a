"""The record schemas a process knows: ``streams/schemas/*.avsc`` parsed once into a
:class:`SchemaSet`, found by short name, full name or fingerprint."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form


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


def schema_info(raw: Mapping[str, Any]) -> SchemaInfo:
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
            info = schema_info(raw)
            if info.name in self._current:
                raise ValueError(f"two schemas share the record name {info.name!r}")
            self._current[info.name] = info
            self._by_full_name[info.full_name] = info
            self._by_fingerprint[info.fingerprint] = info
        for raw in previous:
            info = schema_info(raw)
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
