"""What an event family is: one input topic, one record type, one feature state.

A family module defines its event (a frozen dataclass with ``event_id``, ``customer_id``,
``occurred_at``), ``parse`` (a decoded record to a checked event, or InvalidEvent), its
feature state (``apply``, ``signals``, ``to_json``, ``from_json``) and one
:class:`Family` entry; the registry (:mod:`streams.families`) lists the entries. Its topic
(``customer.<step>``), its table (``<name>-features``), its step name (log field and
metric label) and its signal prefix (``<name>.``) all derive from the entry. Add to that
the family's Avro schema in ``streams/schemas/`` and its lines in the scoring config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

#: An event of any family (each family's own dataclass).
FamilyEvent = Any


class FeatureState(Protocol):
    """A customer's state for one family."""

    def apply(self, event: Any) -> bool:
        """Take one event in; False for a duplicate (an event id seen recently)."""

    def signals(self) -> dict[str, float]:
        """The family's signals as of the latest event, by name (``<family>.<signal>``)."""

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-ready data (its table value)."""


@dataclass(frozen=True, slots=True)
class Family:
    """One event family's entry in the registry."""

    name: str  # signal prefix and table name stem, e.g. "purchase"
    step: str  # processing step (log field, metric label) and topic stem, e.g. "purchases"
    record_type: str  # Avro record name of its events, e.g. "Purchase"
    parse: Callable[[Mapping[str, Any]], FamilyEvent]
    #: a new state, given the id memory window (ms of event time) and the weeks kept
    new_state: Callable[[int, int], FeatureState]
    #: a state from its JSON data, given the same
    load_state: Callable[[dict[str, Any], int, int], FeatureState]
    #: a valid record of this family (as decoded from Avro) for the contract test kit and
    #: examples: event ``n`` of ``customer`` at ``at``
    sample: Callable[[int, str, datetime], dict[str, Any]]
    #: the most bytes one customer's state may take after a year of events
    state_budget: int = 1024

    @property
    def topic(self) -> str:
        """Its logical input topic."""
        return f"customer.{self.step}"

    @property
    def table(self) -> str:
        """Its per-customer state table."""
        return f"{self.name}-features"
