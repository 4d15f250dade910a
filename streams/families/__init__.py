"""The family registry: every event family churnwatch reads, one module each.

Everything per family derives from this list: the input topics and the producers' topic
mapping, the state tables and their changelogs, event dispatch, the ingest agent's steps
and metric labels, the simulator's record fields, the benchmarks' and the demo's step
lists, and the contract test kit (tests/families). To add a family, write its module (see
:mod:`streams.families.base` and docs/adding-an-agent.md), its Avro schema and its lines
in the scoring config, and add its entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.domain.events import InvalidEvent, parse_erasure
from streams.families import billing, engagement, profile, purchases, support
from streams.families.base import Family, FamilyEvent, FeatureState

REGISTRY: tuple[Family, ...] = (
    purchases.FAMILY,
    engagement.FAMILY,
    support.FAMILY,
    profile.FAMILY,
    billing.FAMILY,
)

#: Every family by the Avro record type of its events.
BY_RECORD_TYPE: dict[str, Family] = {f.record_type: f for f in REGISTRY}
#: The record type and the logical topic of erasure requests (not a family: no state).
ERASURE_TYPE = "ErasureRequest"
ERASURE_TOPIC = "customer.erasure"


def parse_event(type_name: str, record: Mapping[str, Any]) -> FamilyEvent:
    """Build a checked event of any input type from a decoded record (InvalidEvent if a
    field is out of its contract, or the type is no input type)."""
    family = BY_RECORD_TYPE.get(type_name)
    if family is not None:
        return family.parse(record)
    if type_name == ERASURE_TYPE:
        return parse_erasure(record)
    raise InvalidEvent("wrong_schema", f"{type_name} is not an input event type")


__all__ = ["BY_RECORD_TYPE", "ERASURE_TOPIC", "ERASURE_TYPE", "REGISTRY", "Family",
           "FamilyEvent", "FeatureState", "parse_event"]
