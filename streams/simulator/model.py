"""What the simulator is about: personas, delivery kinds, record fields, its public types
(configuration, truth, the simulation) and the JSON form of the records it makes."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.codec import default_schemas, to_json_record
from streams.families import REGISTRY
from streams.jsonl import envelope_line
from streams.scenario import Record

#: The personas.
STEADY = "steady"
CHAMPION = "champion"
SEASONAL = "seasonal"
ONE_TIME = "one_time"
NEWCOMER = "newcomer"
DECLINING = "declining"
SUDDEN = "sudden"
RECOVERING = "recovering"
COMPLAINING = "complaining"
INVOLUNTARY = "involuntary"
DOWNGRADING = "downgrading"

#: Every persona, in a fixed order.
PERSONAS = (
    STEADY,
    CHAMPION,
    SEASONAL,
    ONE_TIME,
    NEWCOMER,
    DECLINING,
    SUDDEN,
    RECOVERING,
    COMPLAINING,
    INVOLUNTARY,
    DOWNGRADING,
)
#: Persona shares within each segment (each adds up to 1). The subscription personas
#: (b2b only) come right after ``steady``, whose share they take, so that every other
#: persona keeps the customers it had before they were added.
B2C_MIX: tuple[tuple[str, float], ...] = (
    (STEADY, 0.38),
    (CHAMPION, 0.07),
    (SEASONAL, 0.09),
    (ONE_TIME, 0.07),
    (NEWCOMER, 0.08),
    (DECLINING, 0.14),
    (SUDDEN, 0.04),
    (RECOVERING, 0.07),
    (COMPLAINING, 0.06),
)
B2B_MIX: tuple[tuple[str, float], ...] = (
    (STEADY, 0.46),
    (INVOLUNTARY, 0.03),
    (DOWNGRADING, 0.03),
    (CHAMPION, 0.07),
    (NEWCOMER, 0.08),
    (DECLINING, 0.17),
    (SUDDEN, 0.04),
    (RECOVERING, 0.07),
    (COMPLAINING, 0.05),
)
#: Share of newcomers who fail onboarding and leave within their first 30-90 days.
ONBOARDING_FAILURE = 0.35

DEFAULT_START = datetime(2025, 1, 6, tzinfo=UTC)
DAYS_PER_MONTH = 30.44
CURRENCY = "EUR"

#: What happened to a delivered item (``Simulation.delivery``).
ON_TIME = 0
LATE = 1
VERY_LATE = 2
DUPLICATE = 3
MALFORMED = 4
INVALID = 5
DELIVERY_NAMES = ("on_time", "late", "very_late", "duplicate", "malformed", "invalid")

#: Kinds of malformed items.
MALFORMED_KINDS = ("garbage_bytes", "truncated_json", "missing_field", "wrong_type")

#: Field order of the input records of every registered family, as in their schemas.
FIELDS: dict[str, tuple[str, ...]] = {
    f.record_type: tuple(field["name"] for field in default_schemas().get(f.record_type)
                         .raw["fields"])
    for f in REGISTRY}
TYPES = tuple(FIELDS)

DAY_S = 86_400
MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class Malformed:
    """A delivered item that cannot be decoded: ``payload`` is what arrives.

    In JSON Lines it is the whole line (valid UTF-8, no line break); on Kafka it is the
    record value on the topic of ``type_name``'s family, keyed by ``customer_id``.
    ``kind`` is one of :data:`MALFORMED_KINDS`.
    """

    type_name: str
    customer_id: str
    payload: bytes
    kind: str


Item = Record | Malformed


@dataclass(frozen=True, slots=True)
class TruthRow:
    """Whether a customer churned within the horizon, when, and what it was."""

    customer_id: str
    churned: bool
    churned_at: datetime | None
    persona: str
    segment: str


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate. Shares are per genuine record."""

    customers: int = 10_000
    months: float = 12.0
    #: Length of the period in days; overrides ``months`` when set.
    days: float | None = None
    seed: int = 42
    start: datetime = DEFAULT_START
    b2b_share: float = 0.3
    duplicate_share: float = 0.01
    late_share: float = 0.03
    very_late_share: float = 0.0005
    malformed_share: float = 0.002
    invalid_share: float = 0.001

    def __post_init__(self) -> None:
        if self.customers < 0:
            raise ValueError("customers must not be negative")
        if self.horizon_days <= 0:
            raise ValueError("the period (months or days) must be positive")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        for name in (
            "b2b_share",
            "duplicate_share",
            "late_share",
            "very_late_share",
            "malformed_share",
            "invalid_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in 0..1, not {value}")
        if self.late_share + self.very_late_share > 1.0:
            raise ValueError("late_share + very_late_share must not exceed 1")

    @property
    def horizon_days(self) -> float:
        return float(self.days) if self.days is not None else self.months * DAYS_PER_MONTH

    @property
    def begin(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The end of the period (exclusive)."""
        return self.begin + timedelta(days=self.horizon_days)


@dataclass(slots=True)
class Counts:
    """What a simulation holds."""

    #: Genuine records per type (each delivered at least once).
    records: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    duplicates: int = 0
    late: int = 0
    very_late: int = 0
    malformed: int = 0
    invalid: int = 0
    customers: int = 0
    churners: int = 0
    personas: dict[str, int] = field(default_factory=dict)
    churners_by_persona: dict[str, int] = field(default_factory=dict)

    @property
    def genuine(self) -> int:
        return sum(self.records.values())


@dataclass(slots=True)
class Simulation:
    """A simulated population: the delivered items in arrival order and the truth.

    ``items[i]`` arrived at ``arrived_at[i]`` (milliseconds since the Unix epoch) and
    ``delivery[i]`` says how (:data:`ON_TIME`, :data:`LATE`, :data:`VERY_LATE`,
    :data:`DUPLICATE`, :data:`MALFORMED` or :data:`INVALID`).
    """

    config: SimulationConfig
    items: list[Item]
    arrived_at: array[int]
    delivery: bytearray
    truth: list[TruthRow]
    counts: Counts

    def records(self) -> Iterator[Record]:
        """The decodable records as delivered (duplicates, late and invalid included)."""
        for item in self.items:
            if not isinstance(item, Malformed):
                yield item

    def genuine(self) -> Iterator[Record]:
        """Every genuine record once, in arrival order (no duplicates, no noise)."""
        for item, how in zip(self.items, self.delivery, strict=True):
            if how in (ON_TIME, LATE, VERY_LATE) and not isinstance(item, Malformed):
                yield item

    def arrival_days(self) -> list[tuple[datetime, list[Item]]]:
        """The items grouped by the UTC day they arrive on, in order (for a feed that is
        produced a day at a time)."""
        days: dict[int, list[Item]] = {}
        for item, arrived in zip(self.items, self.arrived_at, strict=True):
            days.setdefault(arrived // MS_PER_DAY, []).append(item)
        return [(datetime.fromtimestamp(day * DAY_S, tz=UTC), batch)
                for day, batch in sorted(days.items())]


def customer_id(index: int) -> str:
    """The id of the simulated customer with this index."""
    return f"sim-{index:06d}"


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def json_record(type_name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of an input record, as :func:`streams.codec.to_json_record` gives it.

    Records with every field of their schema in schema order (all the simulator makes) are
    converted directly; anything else goes through ``to_json_record``.
    """
    names = FIELDS.get(type_name)
    if names is None or tuple(record) != names:
        return to_json_record(type_name, record)
    out = dict(record)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = _timestamp(value)
        elif isinstance(value, dict):
            out[key] = dict(value)
    return out


def json_line(type_name: str, record: Mapping[str, Any]) -> str:
    """The JSON Lines line (without line break) of an input record."""
    return envelope_line(type_name, json_record(type_name, record))
