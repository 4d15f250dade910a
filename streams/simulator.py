"""A seeded customer population with realistic behaviour, known churn and noisy delivery.

:func:`simulate` builds the input records (``Purchase``, ``Engagement``, ``SupportEvent``,
``ProfileChange``) of a whole customer base over a period, delivers them the way a real
feed does (some twice, some late, a few broken) and says which customers really churned.
It feeds the backtest (``churnwatch backtest``), load tests and demos; ``churnwatch
simulate`` writes it to JSON Lines or to the input topics. The population is not tuned to
any detector: personas, rhythms, quiet spells and churn dates are drawn from broad,
documented distributions. docs/simulator.md describes it in full.

Segments and personas
---------------------
About 70% of the customers are B2C shoppers and 30% B2B subscribers (``b2b_share``).
Each customer follows one persona, drawn with these shares within its segment:

===================  =====  =====  =======  ===============================================
persona              b2c    b2b    overall  behaviour
===================  =====  =====  =======  ===============================================
steady               38%    52%    42.2%    own purchase rhythm and engagement, mild drift,
                                            0-2 holidays of 1-3 weeks; never churns
champion             7%     7%     7%       frequent, high spend, promoter, refers others,
                                            takes more products; never churns
seasonal (b2c)       9%     -      6.3%     buys in bursts (summer, Black Friday to
                                            Christmas), quiet in between but opens emails
one_time (b2c)       7%     -      4.9%     appears during the period, buys once, engages a
                                            little for 1-5 weeks, then nothing: churns
newcomer             8%     8%     8%       signs up during the period; 65% settle in, 35%
                                            fail onboarding and leave 30-90 days in
declining            14%    17%    14.9%    3-12 week decline (wider gaps, thinner and
                                            quieter engagement, 35% with souring feedback,
                                            b2b: team stops using it, half downgrade),
                                            then stops; b2b invoices run to the cancellation
sudden               4%     4%     4%       healthy until the day it leaves, no warning
recovering           7%     7%     7%       declines for 2-5 weeks, stays low 1-4 weeks,
                                            comes back to its old rhythm; never churns
complaining          6%     5%     5.7%     tickets pile up, negative sentiment, low CSAT,
                                            detractor NPS for 3-12 weeks while activity
                                            fades, then leaves
===================  =====  =====  =======  ===============================================

The departure day of a leaving persona is drawn uniformly from its earliest possible day
to 90 days after the horizon, so departures are spread over the period and some fall after
it (those customers are not churned in the truth).

Ground truth
------------
A customer has churned when it leaves for good within the horizon; ``churned_at`` is the
time of its last genuine event (noise excluded). A customer whose history simply reaches
the end of the period, or who would leave only after it, has not churned.

Noise
-----
Every genuine record is delivered once, at its event time unless it is late. On top of
that, with the shares
of :class:`SimulationConfig`: a duplicate delivery (same record, 1 s to 6 h later); a late
delivery (1 minute to 48 hours after its event time, within the default 3-day allowed
lateness) or a very late one (4 to 10 days, beyond it); a :class:`Malformed` item next to
the record (bytes that cannot be decoded); an invalid copy under a new event id (a value
the pipeline must reject). Noise never removes or alters a genuine record.

Determinism
-----------
Each customer has its own random generators, seeded from (seed, customer index): one for
its behaviour and one for the noise on its records. A customer's history does not depend
on the other customers, nor on the noise shares. The same configuration always gives the
same items in the same order, and the writers give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.table import Table

from streams.codec import to_json_record
from streams.jsonl import envelope_line, write_lines
from streams.scenario import Record

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from streams.codec import Codec
    from streams.settings import Settings

__all__ = [
    "DEFAULT_START",
    "DELIVERY_NAMES",
    "DUPLICATE",
    "INVALID",
    "LATE",
    "MALFORMED",
    "ON_TIME",
    "PERSONAS",
    "VERY_LATE",
    "Counts",
    "Item",
    "Malformed",
    "ProduceError",
    "Simulation",
    "SimulationConfig",
    "TruthRow",
    "customer_id",
    "iter_customers",
    "iter_jsonl",
    "json_record",
    "persona_table",
    "produce_items",
    "simulate",
    "summary_table",
    "write_jsonl",
    "write_truth",
]

# --------------------------------------------------------------------------- constants

STEADY = "steady"
CHAMPION = "champion"
SEASONAL = "seasonal"
ONE_TIME = "one_time"
NEWCOMER = "newcomer"
DECLINING = "declining"
SUDDEN = "sudden"
RECOVERING = "recovering"
COMPLAINING = "complaining"

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
)
#: Persona shares within each segment (each adds up to 1).
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
    (STEADY, 0.52),
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

#: Field order of the input records, as in their schemas (checked by the tests).
FIELDS: dict[str, tuple[str, ...]] = {
    "Purchase": (
        "event_id",
        "customer_id",
        "occurred_at",
        "order_id",
        "amount_minor",
        "currency",
        "items",
        "channel",
    ),
    "Engagement": (
        "event_id",
        "customer_id",
        "occurred_at",
        "kind",
        "count",
        "duration_s",
        "feature",
    ),
    "SupportEvent": (
        "event_id",
        "customer_id",
        "occurred_at",
        "kind",
        "ticket_id",
        "csat",
        "nps",
        "sentiment",
        "category",
    ),
    "ProfileChange": (
        "event_id",
        "customer_id",
        "occurred_at",
        "segment",
        "signup_at",
        "plan",
        "mrr_minor",
        "cost_to_serve_minor",
        "currency",
        "products",
        "referrals",
        "consent",
    ),
}
TYPES = tuple(FIELDS)

_DAY_S = 86_400
_MS_PER_DAY = 86_400_000
_B2C_KINDS = ("session", "login", "page_view", "feature_used", "community_post")
_B2C_FEATURES = ("wishlist", "reviews", "search", "size_guide", "order_tracking")
_B2B_FEATURES = ("reports", "dashboards", "export", "integrations", "api", "billing", "admin")
_CHANNELS = ("web", "app", "store", "marketplace")
_CHANNEL_WEIGHTS = (0.5, 0.3, 0.1, 0.1)
_B2C_CATEGORIES = ("delivery", "returns", "billing", "product_quality", "account")
_B2B_CATEGORIES = ("how_to", "bug", "billing", "integration", "missing_feature", "performance")
_SOUR_CATEGORIES = ("bug", "missing_feature", "billing", "performance", "product_quality")


# --------------------------------------------------------------------------- public types


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
            days.setdefault(arrived // _MS_PER_DAY, []).append(item)
        return [(datetime.fromtimestamp(day * _DAY_S, tz=UTC), batch)
                for day, batch in sorted(days.items())]


def customer_id(index: int) -> str:
    """The id of the simulated customer with this index."""
    return f"sim-{index:06d}"


# --------------------------------------------------------------------------- helpers


def _between(rng: random.Random, low: float, high: float) -> float:
    return low if high <= low else rng.uniform(low, high)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _pick(rng: random.Random, mix: Sequence[tuple[str, float]]) -> str:
    point = rng.random()
    for name, share in mix:
        point -= share
        if point < 0:
            return name
    return mix[-1][0]


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


def _json_line(type_name: str, record: Mapping[str, Any]) -> str:
    return envelope_line(type_name, json_record(type_name, record))


# --------------------------------------------------------------------------- one customer


@dataclass(slots=True)
class _Profile:
    segment: str
    signup_at: datetime
    plan: str | None
    mrr_minor: int | None
    cost_to_serve_minor: int | None
    currency: str | None
    products: int
    referrals: int
    consent: tuple[bool, bool, bool, bool]

    def fields(self) -> dict[str, Any]:
        email, sms, phone, push = self.consent
        return {
            "segment": self.segment,
            "signup_at": self.signup_at,
            "plan": self.plan,
            "mrr_minor": self.mrr_minor,
            "cost_to_serve_minor": self.cost_to_serve_minor,
            "currency": self.currency,
            "products": self.products,
            "referrals": self.referrals,
            "consent": {"email": email, "sms": sms, "phone": phone, "push": push},
        }


# internal event: (time in days since the origin, order, type name, payload)
_Event = tuple[float, int, str, tuple[Any, ...]]


class _Customer:
    """Builds one customer's genuine history. Times are days since ``origin`` (midnight
    of the start day); the period is [begin, end)."""

    def __init__(self, index: int, config: SimulationConfig) -> None:
        self.index = index
        self.cid = customer_id(index)
        self.rng = random.Random(f"churnwatch-sim:{config.seed}:{index}")
        begin = config.begin
        self.origin = begin.replace(hour=0, minute=0, second=0, microsecond=0)
        self.begin = (begin - self.origin).total_seconds() / _DAY_S
        self.end = self.begin + config.horizon_days
        self.days = math.ceil(self.end) + 1
        self.weekday0 = self.origin.weekday()
        self.events: list[_Event] = []
        self.segment = "b2b" if self.rng.random() < config.b2b_share else "b2c"
        self.persona = _pick(self.rng, B2B_MIX if self.segment == "b2b" else B2C_MIX)
        self.t0 = self.begin
        self.leave = math.inf
        self.mrr_changes: list[tuple[float, int]] = []
        self.life: list[float] = []
        self.mood: list[float] = []
        self.decline_from = math.inf
        self.sour = False
        self.failed = False
        self.dip: tuple[float, float, float, float] | None = None
        self.dip_low = 1.0
        self.bursts: list[tuple[float, float]] = []
        self.holidays: list[tuple[float, float]] = []
        self.tickets = 0
        self.signup_day = 1
        self.hour_centre = self.rng.uniform(8.0, 21.0)

    # -- time helpers
    def weekday(self, day: int) -> int:
        return (self.weekday0 + day) % 7

    def date_of(self, day: float) -> date:
        return (self.origin + timedelta(days=day)).date()

    def day_of(self, when: date) -> float:
        return float((when - self.origin.date()).days)

    def hour(self) -> float:
        if self.segment == "b2b":
            return self.rng.uniform(8.0, 18.5)
        return _clamp(self.rng.gauss(self.hour_centre, 2.5), 6.0, 23.9)

    def at(self, day: float) -> float:
        """A time on ``day`` at one of the customer's usual hours."""
        return math.floor(day) + self.hour() / 24.0

    def add(self, t: float, type_name: str, payload: tuple[Any, ...]) -> None:
        self.events.append((t, len(self.events), type_name, payload))

    # -- the plan: when it appears, whether and when it leaves, how active it is
    def plan(self) -> None:
        rng = self.rng
        persona = self.persona
        begin, end = self.begin, self.end
        self.t0 = begin + rng.uniform(0.0, min(1.0, end - begin) * 0.9)
        if persona in (NEWCOMER, ONE_TIME):
            self.t0 = rng.uniform(begin, end)
        if persona == ONE_TIME:
            self.leave = self.t0 + rng.uniform(7.0, 35.0)
            self.decline_from = self.t0
        elif persona == NEWCOMER and rng.random() < ONBOARDING_FAILURE:
            self.failed = True
            self.leave = self.t0 + rng.uniform(30.0, 90.0)
            self.decline_from = self.t0 + rng.uniform(7.0, 0.5 * (self.leave - self.t0))
            self.sour = rng.random() < 0.4
        elif persona in (DECLINING, COMPLAINING):
            phase = rng.uniform(21.0, 84.0)
            self.leave = _between(rng, self.t0 + phase + 14.0, end + 90.0)
            self.decline_from = self.leave - phase
            self.sour = persona == COMPLAINING or rng.random() < 0.35
        elif persona == SUDDEN:
            self.leave = _between(rng, self.t0 + 30.0, end + 90.0)
        elif persona == RECOVERING:
            start = _between(rng, self.t0 + 21.0, end - 50.0)
            down = rng.uniform(14.0, 35.0)
            hold = rng.uniform(7.0, 28.0)
            up = rng.uniform(7.0, 21.0)
            self.dip = (start, start + down, start + down + hold, start + down + hold + up)
            self.dip_low = rng.uniform(0.08, 0.3)
            self.decline_from = start
        if persona == SEASONAL:
            self.bursts = self._bursts()
        holidays = rng.choices((0, 1, 2), (0.4, 0.45, 0.15))[0]
        if persona in (ONE_TIME, SEASONAL):
            holidays = 0
        for _ in range(holidays):
            first = rng.uniform(begin, end)
            self.holidays.append((first, first + rng.uniform(7.0, 21.0)))
        self.life = self._life()
        self.mood = self._mood()

    def _bursts(self) -> list[tuple[float, float]]:
        """Shopping seasons of a seasonal buyer: a summer burst and Black Friday to
        Christmas, every year the period touches."""
        rng = self.rng
        out = []
        first, last = self.date_of(self.begin).year, self.date_of(self.end).year
        for year in range(first - 1, last + 1):
            summer = self.day_of(date(year, 6, 1)) + rng.uniform(0.0, 60.0)
            out.append((summer, summer + rng.uniform(14.0, 28.0)))
            winter = self.day_of(date(year, 11, 20)) + rng.uniform(-7.0, 10.0)
            out.append((winter, max(winter + 14.0, self.day_of(date(year, 12, 24)))))
        return out

    def _life(self) -> list[float]:
        """Activity intensity per day: 1 is the customer's own normal."""
        rng = self.rng
        block = 28.0
        knots = [rng.uniform(0.8, 1.2) for _ in range(int(self.days / block) + 2)]
        b2c = self.segment == "b2c"
        holiday_factor = 0.03 if b2c else rng.uniform(0.2, 0.45)
        life = [0.0] * (self.days + 1)
        for day in range(self.days + 1):
            t = day + 0.5
            if t < math.floor(self.t0) or t >= self.leave + 1.0:
                continue
            k = t / block
            i = int(k)
            m = knots[i] + (knots[i + 1] - knots[i]) * (k - i)
            if self.persona == SEASONAL:
                m = 1.0 if any(a <= t < b for a, b in self.bursts) else 0.04
            elif self.persona == ONE_TIME:
                m = 0.6 * max(0.0, 1.0 - (t - self.t0) / (self.leave - self.t0))
            elif self.persona == NEWCOMER and t - self.t0 < 21.0:
                m *= 1.4  # onboarding: setting up, exploring
            if t >= self.decline_from and self.persona != ONE_TIME:
                m *= self._decline(t)
            for a, b in self.holidays:
                if a <= t < b and t < self.decline_from:
                    m *= holiday_factor
            life[day] = m
        return life

    def _decline(self, t: float) -> float:
        if self.dip is not None:
            start, low_from, low_to, back = self.dip
            if t < start:
                return 1.0
            if t < low_from:
                return 1.0 - (1.0 - self.dip_low) * (t - start) / (low_from - start)
            if t < low_to:
                return self.dip_low
            if t < back:
                return self.dip_low + (1.0 - self.dip_low) * (t - low_to) / (back - low_to)
            return 1.0
        if t >= self.leave:
            return 0.0
        x = (t - self.decline_from) / (self.leave - self.decline_from)
        return float((1.0 - 0.92 * x) ** 1.4)

    def _mood(self) -> list[float]:
        """How the customer feels about the business, 0 (angry) to 1 (delighted)."""
        rng = self.rng
        persona = self.persona
        if persona == CHAMPION:
            base = rng.uniform(0.85, 0.98)
        elif persona in (ONE_TIME, SEASONAL):
            base = rng.uniform(0.5, 0.85)
        elif persona == NEWCOMER:
            base = rng.uniform(0.55, 0.85)
        else:
            base = rng.uniform(0.5, 0.9)
        floor = 0.05 if self.sour else 0.4
        mood = [base] * (self.days + 1)
        for day in range(self.days + 1):
            t = day + 0.5
            if self.dip is not None:
                mood[day] = base - (base - 0.35) * (1.0 - self._decline(t))
            elif t >= self.decline_from and persona != ONE_TIME:
                x = _clamp((t - self.decline_from) / (self.leave - self.decline_from), 0, 1)
                speed = 0.5 if persona == COMPLAINING else 1.0
                mood[day] = base - (base - floor) * x**speed
        return mood

    def m(self, t: float) -> float:
        day = int(t)
        return self.life[day] if 0 <= day < len(self.life) else 0.0

    def advance(self, t: float, need: float, until: float) -> float | None:
        """The time at which ``need`` days of normal activity have passed after ``t``
        (slower while the customer is less active), or None if not before ``until``."""
        while t < until:
            day = int(t)
            m = self.life[day] if day < len(self.life) else 0.0
            stop = min(day + 1.0, until)
            if m * (stop - t) >= need:
                return t + need / m
            need -= m * (stop - t)
            t = stop
        return None

    @property
    def stop(self) -> float:
        """Nothing happens from this time on."""
        return min(self.leave, self.end)

    # -- the profile and its changes
    def profile(self) -> None:
        rng = self.rng
        persona = self.persona
        b2b = self.segment == "b2b"
        if persona in (NEWCOMER, ONE_TIME):
            signup = self.t0 - rng.uniform(0.0, 0.08)
        else:
            signup = self.t0 - _log_uniform(rng, 30.0, 6 * 365.0)
        if b2b:
            mrr = int(_clamp(rng.lognormvariate(math.log(60_000), 0.8), 9_900, 900_000))
            mrr = mrr // 100 * 100
            products = rng.choices((1, 2, 3, 4, 5), (0.35, 0.3, 0.2, 0.1, 0.05))[0]
            plan = rng.choice(("starter", "team", "business", "enterprise"))
            cost = int(mrr * rng.uniform(0.2, 1.1)) // 100 * 100
        else:
            mrr = cost = 0
            products = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
            plan = rng.choice(("basic", "basic", "plus", "premium"))
        if persona == CHAMPION:
            products = min(products + rng.randint(1, 2), 6)
        referrals = rng.randint(1, 6) if persona == CHAMPION else int(rng.random() < 0.08)
        if rng.random() < 0.2:
            consent = (False, False, False, False)
        else:
            consent = (
                rng.random() < 0.85,
                rng.random() < 0.3,
                rng.random() < 0.25 if b2b else rng.random() < 0.1,
                rng.random() < 0.4 and not b2b,
            )
        current = _Profile(
            segment=self.segment,
            signup_at=self.origin + timedelta(seconds=int(signup * _DAY_S)),
            plan=plan,
            mrr_minor=mrr if b2b else None,
            cost_to_serve_minor=cost if b2b else None,
            currency=CURRENCY if b2b else None,
            products=products,
            referrals=referrals,
            consent=consent,
        )
        self.signup_day = current.signup_at.day
        self.add(self.t0, "ProfileChange", (current.fields(),))
        self.mrr_changes = [(self.t0, mrr)]

        changes: list[tuple[float, str]] = []
        stop = self.stop
        withdraw = 0.08 if self.sour else 0.03
        if rng.random() < withdraw:
            changes.append((_between(rng, self.t0 + 1.0, stop), "withdraw"))
        upsell = {CHAMPION: 0.5, STEADY: 0.12, RECOVERING: 0.2}.get(persona, 0.0)
        if persona == NEWCOMER and not self.failed and rng.random() < 0.3:
            changes.append((self.t0 + rng.uniform(60.0, 120.0), "upsell"))
        if rng.random() < upsell:
            earliest = self.dip[3] if self.dip is not None else self.t0 + 20.0
            changes.append((_between(rng, earliest, stop), "upsell"))
        if persona == CHAMPION:
            for _ in range(rng.randint(0, 3)):
                changes.append((_between(rng, self.t0 + 7.0, stop), "referral"))
        if (
            b2b
            and persona in (DECLINING, COMPLAINING)
            and rng.random() < (0.5 if persona == DECLINING else 0.3)
        ):
            span = self.leave - self.decline_from
            changes.append((self.decline_from + span * rng.uniform(0.3, 0.8), "downgrade"))
        changes.sort()
        for t, what in changes:
            if not self.t0 < t < stop:
                continue
            when = self.at(t)
            if not self.t0 < when < stop:
                when = t
            if what == "withdraw":
                keep_email = rng.random() < 0.3 and current.consent[0]
                current.consent = (keep_email, False, False, False)
            elif what == "upsell":
                current.products = min(current.products + 1, 8)
                if b2b and current.mrr_minor is not None:
                    current.mrr_minor = int(current.mrr_minor * rng.uniform(1.15, 1.5)) // 100 * 100
            elif what == "referral":
                current.referrals += 1
            elif what == "downgrade":
                current.products = max(1, current.products - 1)
                if current.mrr_minor is not None:
                    current.mrr_minor = int(current.mrr_minor * rng.uniform(0.5, 0.8)) // 100 * 100
                    if current.cost_to_serve_minor is not None:
                        current.cost_to_serve_minor = (
                            int(current.cost_to_serve_minor * rng.uniform(0.8, 1.0)) // 100 * 100
                        )
            else:
                continue
            self.add(when, "ProfileChange", (current.fields(),))
            self.mrr_changes.append((when, current.mrr_minor or 0))

    def mrr_at(self, t: float) -> int:
        value = self.mrr_changes[0][1]
        for when, mrr in self.mrr_changes:
            if when <= t:
                value = mrr
        return value

    # -- purchases
    def purchases(self) -> None:
        rng = self.rng
        stop = self.stop
        if self.segment == "b2b":
            self._invoices()
            gap = rng.uniform(40.0, 150.0)
            t = self.advance(self.t0, gap * rng.random(), stop)
            while t is not None:
                when = self.at(t)
                if self.t0 < when < stop:
                    amount = int(self.mrr_at(when) * rng.uniform(0.1, 0.6)) // 100 * 100
                    channel = rng.choice(("web", "phone", "other"))
                    self.add(
                        when, "Purchase", (None, max(amount, 500), rng.randint(1, 20), channel)
                    )
                t = self.advance(t, gap * rng.lognormvariate(0.0, 0.4), stop)
            return
        if self.persona == ONE_TIME:
            amount = int(rng.lognormvariate(math.log(3_500), 0.6))
            when = self.t0 + rng.uniform(0.003, 0.1)
            if when < stop:
                self.add(
                    when,
                    "Purchase",
                    (
                        None,
                        max(amount, 199),
                        rng.randint(1, 3),
                        rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0],
                    ),
                )
            return
        if self.persona == CHAMPION:
            gap = _log_uniform(rng, 3.0, 10.0)
            base = rng.lognormvariate(math.log(9_000), 0.5)
        elif self.persona == SEASONAL:
            gap = rng.uniform(3.0, 9.0)
            base = rng.lognormvariate(math.log(5_500), 0.5)
        else:
            gap = _log_uniform(rng, 5.0, 45.0)
            base = rng.lognormvariate(math.log(4_500), 0.55)
        base = _clamp(base, 800.0, 60_000.0)
        preferred = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        t = self.advance(self.t0, gap * rng.random(), stop)
        if self.persona == NEWCOMER:
            t = self.t0 + rng.uniform(0.003, 0.5)  # the first order comes with the signup
        while t is not None:
            when = self.at(t) if int(t) != int(self.t0) else t
            if self.t0 < when < stop:
                amount = int(round(base * rng.lognormvariate(0.0, 0.35)))
                channel = preferred if rng.random() < 0.75 else rng.choice(_CHANNELS)
                items = 1 + min(int(rng.expovariate(0.7)), 11)
                self.add(when, "Purchase", (None, max(amount, 99), items, channel))
            t = self.advance(t, gap * rng.lognormvariate(0.0, 0.35), stop)

    def _invoices(self) -> None:
        """Monthly invoices of the subscription, on the signup day of the month, until
        the customer cancels."""
        rng = self.rng
        bill_day = min(self.signup_day, 28)
        first = self.date_of(self.t0)
        year, month = first.year, first.month
        while True:
            due = self.day_of(date(year, month, bill_day)) + rng.uniform(2.0, 6.0) / 24.0
            if due >= self.stop:
                return
            if (
                due <= self.t0
                and self.persona == NEWCOMER
                and (year, month)
                == (
                    first.year,
                    first.month,
                )
            ):
                due = self.t0 + rng.uniform(0.003, 0.05)  # the first month is paid at signup
            if due > self.t0:
                order = f"{self.cid}-inv-{year:04d}{month:02d}"
                self.add(due, "Purchase", (order, self.mrr_at(due), 1, "other"))
            month += 1
            if month > 12:
                year, month = year + 1, 1

    # -- engagement
    def engagement(self) -> None:
        rng = self.rng
        b2b = self.segment == "b2b"
        stop = self.stop
        champion = self.persona == CHAMPION
        if b2b:
            p_day = rng.uniform(0.4, 0.85)
            seats = int(_clamp(rng.lognormvariate(math.log(6), 0.7), 1, 200))
            p_feature = rng.uniform(0.15, 0.45)
        else:
            weekly = rng.uniform(3.0, 5.5) if champion else rng.uniform(0.7, 3.5)
            p_day = weekly / 7.0
            seats = 1
            p_feature = 0.0
        p_open = rng.uniform(0.1, 0.7)
        first_day = int(self.t0)
        quiet = False
        for day in range(first_day, min(self.days, math.ceil(stop))):
            m = self.life[day]
            if (day - first_day) % 7 == 0:
                quiet = rng.random() < 0.6 * max(0.0, 0.85 - m)
            self._newsletter(day, m, p_open, stop)
            if m <= 0.0 or quiet:
                continue
            weekday = self.weekday(day)
            if b2b:
                chance = p_day * m if weekday < 5 else 0.04 * m
                if rng.random() >= min(chance, 0.98):
                    continue
                users = max(1, round(seats * rng.uniform(0.3, 0.9) * min(m, 1.2)))
                t = self.at(day)
                self.add(t, "Engagement", ("login", users, None, None))
                if rng.random() < p_feature * min(m, 1.0):
                    self.add(
                        t + rng.uniform(0.0, 0.2),
                        "Engagement",
                        (
                            "feature_used",
                            rng.randint(1, max(1, users)),
                            None,
                            rng.choice(_B2B_FEATURES),
                        ),
                    )
                if rng.random() < 0.02 * (3 if champion else 1):
                    self.add(self.at(day), "Engagement", ("community_post", 1, None, None))
                continue
            if rng.random() >= min(p_day * m, 0.95):
                continue
            events = 1 + (rng.random() < 0.25) + (rng.random() < 0.06)
            t = self.at(day)
            for _ in range(events):
                kind = rng.choices(_B2C_KINDS, (45, 15, 30, 8, 6 if champion else 1))[0]
                self._engage(t, kind)
                t += rng.uniform(0.01, 0.2)

    def _engage(self, t: float, kind: str) -> None:
        rng = self.rng
        if kind == "session":
            duration = int(_clamp(rng.lognormvariate(math.log(300), 0.9), 10, 14_400))
            self.add(t, "Engagement", ("session", 1, duration, None))
        elif kind == "page_view":
            self.add(t, "Engagement", ("page_view", rng.randint(1, 12), None, None))
        elif kind == "feature_used":
            self.add(t, "Engagement", ("feature_used", 1, None, rng.choice(_B2C_FEATURES)))
        else:
            self.add(t, "Engagement", (kind, 1, None, None))

    def _newsletter(self, day: int, m: float, p_open: float, stop: float) -> None:
        """The business mails b2c customers every Tuesday and b2b customers every other
        Thursday at 09:00; the customer opens some of them."""
        weekday = self.weekday(day)
        if self.segment == "b2c":
            if weekday != 1:
                return
        elif weekday != 3 or (day // 7) % 2:
            return
        rng = self.rng
        interest = 1.0 if self.persona == SEASONAL else 0.35 + 0.65 * min(m, 1.0)
        if day + 0.5 < self.t0 or m <= 0.0 or rng.random() >= p_open * interest:
            return
        t = day + 9.0 / 24.0 + min(rng.expovariate(1 / 10.0), 72.0) / 24.0
        if self.t0 < t < stop:
            self.add(t, "Engagement", ("email_open", 1, None, None))

    # -- support
    def support(self) -> None:
        rng = self.rng
        stop = self.stop
        b2b = self.segment == "b2b"
        rate = rng.uniform(1.0, 6.0) if b2b else rng.uniform(0.3, 2.0)
        categories = _B2B_CATEGORIES if b2b else _B2C_CATEGORIES
        t = self.t0 + rng.expovariate(rate / 365.0)
        while t < stop:
            self._ticket(t, rng.choice(categories), sour=False)
            t += rng.expovariate(rate / 365.0)
        if self.sour:
            every = (3.0, 10.0) if self.persona == COMPLAINING else (6.0, 16.0)
            t = self.decline_from + rng.uniform(0.0, every[1])
            while t < stop:
                self._ticket(t, rng.choice(_SOUR_CATEGORIES), sour=True)
                if rng.random() < 0.5:
                    self._support(
                        t + rng.uniform(0.5, 4.0),
                        "feedback",
                        None,
                        None,
                        None,
                        self._sentiment(t, -0.3),
                        rng.choice(_SOUR_CATEGORIES),
                    )
                t += rng.uniform(*every)
        if self.dip is not None and rng.random() < 0.5:
            start, _, low_to, _ = self.dip
            ticket = self._ticket_id()
            category = rng.choice(categories)
            self._support(
                start + rng.uniform(0.0, 7.0),
                "ticket_opened",
                ticket,
                None,
                None,
                self._sentiment(start, -0.4),
                category,
            )
            done = low_to + rng.uniform(0.0, 5.0)
            self._support(done, "ticket_resolved", ticket, None, None, None, category)
            if rng.random() < 0.6:
                self._support(
                    done + rng.uniform(0.1, 2.0),
                    "csat_response",
                    ticket,
                    rng.randint(4, 5),
                    None,
                    round(rng.uniform(0.3, 0.9), 2),
                    None,
                )
        self._surveys()

    def _ticket_id(self) -> str:
        self.tickets += 1
        return f"{self.cid}-t-{self.tickets}"

    def _ticket(self, t: float, category: str, *, sour: bool) -> None:
        rng = self.rng
        ticket = self._ticket_id()
        opened = self.at(t)
        self._support(
            opened,
            "ticket_opened",
            ticket,
            None,
            None,
            self._sentiment(t, -0.45 if sour else -0.25),
            category,
        )
        if rng.random() >= (0.4 if sour else 0.92):
            return  # stays open
        done = opened + rng.lognormvariate(math.log(6.0 if sour else 1.0), 0.9)
        self._support(done, "ticket_resolved", ticket, None, None, None, category)
        if rng.random() < 0.35:
            mood = self.mood_at(done)
            csat = round(_clamp(1.5 + 4.0 * mood + rng.gauss(0.0, 0.7), 1, 5))
            self._support(
                done + rng.uniform(0.02, 2.0),
                "csat_response",
                ticket,
                csat,
                None,
                self._sentiment(done, 0.0) if rng.random() < 0.5 else None,
                None,
            )

    def _surveys(self) -> None:
        """NPS surveys every ~4 months; newcomers also get one after 30 days."""
        rng = self.rng
        persona = self.persona
        respond = rng.uniform(0.3, 0.6)
        t = self.t0 + rng.uniform(20.0, 120.0)
        times = []
        if persona == NEWCOMER:
            times.append(self.t0 + 30.0)
        while t < self.stop:
            times.append(t)
            t += rng.uniform(100.0, 140.0)
        for asked in times:
            answered = asked + rng.expovariate(1 / 1.5)
            m = min(self.m(answered), 1.0)
            chance = respond * (
                1.3 if self.sour and answered >= self.decline_from else 0.4 + 0.6 * m
            )
            if not answered < self.stop or rng.random() >= chance:
                continue
            mood = self.mood_at(answered)
            nps = round(_clamp(10.0 * mood + 0.8 + rng.gauss(0.0, 1.1), 0, 10))
            sentiment = self._sentiment(answered, 0.0) if rng.random() < 0.4 else None
            self._support(self.at(answered), "nps_response", None, None, nps, sentiment, None)

    def mood_at(self, t: float) -> float:
        day = int(t)
        return self.mood[day] if 0 <= day < len(self.mood) else self.mood[-1]

    def _sentiment(self, t: float, shift: float) -> float:
        value = 2.0 * self.mood_at(t) - 1.0 + shift + self.rng.gauss(0.0, 0.2)
        return round(_clamp(value, -1.0, 1.0), 2)

    def _support(
        self,
        t: float,
        kind: str,
        ticket: str | None,
        csat: int | None,
        nps: int | None,
        sentiment: float | None,
        category: str | None,
    ) -> None:
        if self.t0 < t < self.stop:
            self.add(t, "SupportEvent", (kind, ticket, csat, nps, sentiment, category))

    # -- records
    def build(self) -> tuple[list[Record], TruthRow]:
        """The genuine records in event-time order and the truth row."""
        self.plan()
        self.profile()
        self.purchases()
        self.engagement()
        self.support()
        stop = self.stop
        events = sorted(e for e in self.events if self.t0 <= e[0] < stop)
        cid = self.cid
        origin = self.origin
        counters = {"Purchase": 0, "Engagement": 0, "SupportEvent": 0, "ProfileChange": 0}
        prefix = {"Purchase": "p", "Engagement": "e", "SupportEvent": "s", "ProfileChange": "pr"}
        records: list[Record] = []
        for t, _, type_name, payload in events:
            n = counters[type_name] + 1
            counters[type_name] = n
            occurred = origin + timedelta(seconds=int(t * _DAY_S))
            event_id = f"{cid}-{prefix[type_name]}-{n}"
            record: dict[str, Any]
            if type_name == "Engagement":
                kind, count, duration, feature = payload
                record = {
                    "event_id": event_id,
                    "customer_id": cid,
                    "occurred_at": occurred,
                    "kind": kind,
                    "count": count,
                    "duration_s": duration,
                    "feature": feature,
                }
            elif type_name == "Purchase":
                order, amount, items, channel = payload
                record = {
                    "event_id": event_id,
                    "customer_id": cid,
                    "occurred_at": occurred,
                    "order_id": order or f"{cid}-o-{n}",
                    "amount_minor": amount,
                    "currency": CURRENCY,
                    "items": items,
                    "channel": channel,
                }
            elif type_name == "SupportEvent":
                kind, ticket, csat, nps, sentiment, category = payload
                record = {
                    "event_id": event_id,
                    "customer_id": cid,
                    "occurred_at": occurred,
                    "kind": kind,
                    "ticket_id": ticket,
                    "csat": csat,
                    "nps": nps,
                    "sentiment": sentiment,
                    "category": category,
                }
            else:
                record = {
                    "event_id": event_id,
                    "customer_id": cid,
                    "occurred_at": occurred,
                    **payload[0],
                }
            records.append((type_name, record))
        churned = self.leave < self.end and bool(records)
        churned_at = records[-1][1]["occurred_at"] if churned else None
        truth = TruthRow(cid, churned, churned_at, self.persona, self.segment)
        return records, truth


# --------------------------------------------------------------------------- noise


def _garbage(rng: random.Random) -> bytes:
    """Bytes that are no record: control characters, symbols and a few non-ASCII ones.

    Always valid UTF-8 without line breaks, so that a JSON Lines reader sees one bad
    line rather than a broken file."""
    alphabet = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x00, 0x09)]
    alphabet += [chr(c) for c in range(0x0E, 0x1C)] + ["\u00e9", "\u00ff", "\u0394", "\ufffd"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 120)))
    return ("\u00ff\u00fe" + text).encode("utf-8")


def _malformed(rng: random.Random, type_name: str, record: Mapping[str, Any]) -> Malformed:
    kind = rng.choice(MALFORMED_KINDS)
    cid = str(record["customer_id"])
    if kind == "garbage_bytes":
        return Malformed(type_name, cid, _garbage(rng), kind)
    body = json_record(type_name, record)
    if kind == "truncated_json":
        line = _json_line(type_name, record)
        return Malformed(type_name, cid, line[: rng.randint(1, len(line) - 1)].encode(), kind)
    if kind == "missing_field":
        if rng.random() < 0.25:
            envelope: dict[str, Any] = {"record": body}  # no "type"
        else:
            del body[rng.choice(("event_id", "customer_id", "occurred_at"))]
            envelope = {"type": type_name, "record": body}
    else:  # wrong_type
        if rng.random() < 0.5:
            body["occurred_at"] = int(record["occurred_at"].timestamp() * 1000)
        else:
            body["customer_id"] = rng.randint(1, 10**6)
        envelope = {"type": type_name, "record": body}
    payload = json.dumps(envelope, separators=(",", ":")).encode()
    return Malformed(type_name, cid, payload, kind)


def _invalid(
    rng: random.Random, type_name: str, record: Mapping[str, Any], event_id: str
) -> Record:
    """A well-formed copy of ``record`` with a new id and one absurd value."""
    out = dict(record)
    out["event_id"] = event_id
    if type_name == "ProfileChange":
        out["consent"] = dict(record["consent"])
    choices = {
        "Purchase": ("negative_amount", "negative_amount", "future_time", "empty_customer_id"),
        "SupportEvent": (
            "nps_out_of_range",
            "csat_out_of_range",
            "sentiment_out_of_range",
            "future_time",
            "empty_customer_id",
        ),
        "Engagement": ("negative_count", "future_time", "empty_customer_id"),
        "ProfileChange": ("signup_after_event", "future_time", "empty_customer_id"),
    }[type_name]
    kind = rng.choice(choices)
    if kind == "negative_amount":
        out["amount_minor"] = -abs(int(record["amount_minor"]) or 100)
    elif kind == "nps_out_of_range":
        out.update(kind="nps_response", ticket_id=None, csat=None, nps=rng.choice((11, 14, 99)))
    elif kind == "csat_out_of_range":
        out.update(kind="csat_response", csat=rng.choice((0, 6, 9)), nps=None)
    elif kind == "sentiment_out_of_range":
        out["sentiment"] = rng.choice((-3.5, 1.5, 7.0))
    elif kind == "negative_count":
        out["count"] = -rng.randint(1, 50)
    elif kind == "signup_after_event":
        out["signup_at"] = record["occurred_at"] + timedelta(days=rng.randint(30, 400))
    elif kind == "future_time":
        out["occurred_at"] = record["occurred_at"] + timedelta(days=5 * 365)
    else:
        out["customer_id"] = ""
    return type_name, out


# (arrival ms, customer index, order within the customer, item, delivery kind)
_Delivery = tuple[int, int, int, Item, int]


def _deliver(index: int, config: SimulationConfig, records: Sequence[Record]) -> list[_Delivery]:
    """Every genuine record once, plus the noise drawn for it, with arrival times."""
    rng = random.Random(f"churnwatch-sim-noise:{config.seed}:{index}")
    very_late = config.very_late_share
    late = very_late + config.late_share
    out: list[_Delivery] = []
    invalid = 0
    for type_name, record in records:
        arrival = int(record["occurred_at"].timestamp()) * 1000
        how = ON_TIME
        draw = rng.random()
        if draw < very_late:
            arrival += int(rng.uniform(4.0, 10.0) * _MS_PER_DAY)
            how = VERY_LATE
        elif draw < late:
            arrival += int(_log_uniform(rng, 60.0, 48 * 3600.0) * 1000)
            how = LATE
        out.append((arrival, index, len(out), (type_name, record), how))
        if rng.random() < config.duplicate_share:
            copy = dict(record)
            if type_name == "ProfileChange":
                copy["consent"] = dict(record["consent"])
            again = arrival + int(_log_uniform(rng, 1.0, 6 * 3600.0) * 1000)
            out.append((again, index, len(out), (type_name, copy), DUPLICATE))
        if rng.random() < config.malformed_share:
            bad = _malformed(rng, type_name, record)
            out.append((arrival + rng.randint(0, 60_000), index, len(out), bad, MALFORMED))
        if rng.random() < config.invalid_share:
            invalid += 1
            item = _invalid(rng, type_name, record, f"{customer_id(index)}-x-{invalid}")
            out.append((arrival + rng.randint(0, 60_000), index, len(out), item, INVALID))
    return out


# --------------------------------------------------------------------------- simulate


def iter_customers(config: SimulationConfig) -> Iterator[tuple[list[Record], TruthRow]]:
    """Each customer's genuine records (event-time order) and truth row, one at a time."""
    for index in range(config.customers):
        yield _Customer(index, config).build()


def simulate(
    config: SimulationConfig | None = None,
    *,
    progress: Callable[[int], object] | None = None,
    now: datetime | None = None,
) -> Simulation:
    """Simulate the population of ``config``; deterministic for the same configuration.

    ``progress`` is called with the number of customers done since its previous call.
    ValueError if the period does not lie in the past of ``now`` (default: the wall
    clock), since a worker rejects events from the future.
    """
    config = config or SimulationConfig()
    moment = now or datetime.now(UTC)
    if config.end > moment:
        raise ValueError(
            f"the simulated period ends {config.end:%Y-%m-%d %H:%M} UTC, after now "
            f"({moment:%Y-%m-%d %H:%M} UTC); workers reject events from the future: "
            "start earlier or simulate a shorter period"
        )
    deliveries: list[_Delivery] = []
    truth: list[TruthRow] = []
    counts = Counts(records=dict.fromkeys(TYPES, 0), customers=config.customers)
    personas: Counter[str] = Counter()
    churners: Counter[str] = Counter()
    pending = 0
    for index, (records, row) in enumerate(iter_customers(config)):
        truth.append(row)
        personas[row.persona] += 1
        if row.churned:
            churners[row.persona] += 1
        for type_name, _ in records:
            counts.records[type_name] += 1
        deliveries.extend(_deliver(index, config, records))
        pending += 1
        if progress is not None and pending >= 100:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    deliveries.sort(key=lambda d: (d[0], d[1], d[2]))
    items: list[Item] = [d[3] for d in deliveries]
    arrived = array("q", (d[0] for d in deliveries))
    delivery = bytearray(d[4] for d in deliveries)
    del deliveries
    tally = Counter(delivery)
    counts.delivered = len(items)
    counts.duplicates = tally[DUPLICATE]
    counts.late = tally[LATE]
    counts.very_late = tally[VERY_LATE]
    counts.malformed = tally[MALFORMED]
    counts.invalid = tally[INVALID]
    counts.churners = sum(churners.values())
    counts.personas = {p: personas[p] for p in PERSONAS}
    counts.churners_by_persona = {p: churners[p] for p in PERSONAS}
    return Simulation(config, items, arrived, delivery, truth, counts)


# --------------------------------------------------------------------------- writers


def iter_jsonl(items: Iterable[Item]) -> Iterator[str]:
    """The JSON Lines lines (without line break) of ``items``: the documented envelope
    ``{"type": ..., "record": {...}}`` for a record, the raw payload for a malformed item."""
    for item in items:
        if isinstance(item, Malformed):
            yield item.payload.decode("utf-8")
        else:
            yield _json_line(*item)


def write_jsonl(
    items: Iterable[Item],
    target: str | Path | TextIO,
    *,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write ``items`` as JSON Lines to a path or a text stream; return the lines written.

    ``streams.backtest.load_events`` reads the records back and reports each malformed
    line as a line error."""
    return write_lines(iter_jsonl(items), target, progress=progress)


TRUTH_HEADER = ("customer_id", "churned", "churned_at", "persona", "segment")


def write_truth(rows: Iterable[TruthRow], target: str | Path | TextIO) -> int:
    """Write the truth CSV read by ``streams.backtest.load_truth``; return the rows."""
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8", newline="") as out:
            return write_truth(rows, out)
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(TRUTH_HEADER)
    count = 0
    for row in rows:
        when = (
            row.churned_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if (row.churned_at is not None)
            else ""
        )
        writer.writerow(
            (row.customer_id, "true" if row.churned else "false", when, row.persona, row.segment)
        )
        count += 1
    return count


# --------------------------------------------------------------------------- Kafka


class ProduceError(RuntimeError):
    """The cluster cannot take the simulation (unreachable, or input topics missing)."""


def _check_topics(settings: Settings, client: Producer, timeout: float = 10.0) -> None:
    from confluent_kafka import KafkaException

    from streams.kafka_io import INPUT_TOPIC_OF

    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ProduceError(
            f"cannot reach the Kafka cluster at {settings.kafka_bootstrap} within "
            f"{timeout:g}s: {exc}"
        ) from exc
    needed = [settings.topic(INPUT_TOPIC_OF[t]) for t in TYPES]
    missing = [name for name in needed if name not in metadata.topics]
    if missing:
        raise ProduceError(
            f"input topic(s) {', '.join(missing)} do not exist on "
            f"{settings.kafka_bootstrap}: create them with `churnwatch topics` first"
        )


def produce_items(
    settings: Settings,
    codec: Codec,
    items: Iterable[Item],
    *,
    rate: float = 0.0,
    progress: Callable[[int], object] | None = None,
    producer: Producer | None = None,
    batch: int = 5_000,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Produce ``items`` in order to the input topics, keyed by customer id; return the
    number produced.

    Records are encoded with ``codec`` (``streams.kafka_io.produce_records``); a malformed
    item's payload is produced as it is to the topic of its family. ``rate`` limits the
    records per second (0: as fast as possible). Without ``producer``, checks first that
    the cluster answers and has the input topics (:class:`ProduceError` if not). Raises
    ``DeliveryError`` when any record was not acknowledged.
    """
    from streams.kafka_io import INPUT_TOPIC_OF, DeliveryError, make_producer, produce_records

    if producer is None:
        client = make_producer(settings)
        _check_topics(settings, client, settings.kafka_timeout_s)
    else:
        client = producer
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err}")

    size = max(1, min(batch, int(rate / 10) or 1)) if rate > 0 else batch
    pending: list[Record] = []
    count = 0
    started = clock()

    def send_pending() -> None:
        nonlocal count
        if pending:
            count += produce_records(settings, codec, pending, producer=client, progress=progress)
            pending.clear()

    for item in items:
        if rate > 0 and len(pending) == 0:
            due = started + count / rate
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        if isinstance(item, Malformed):
            send_pending()
            topic = settings.topic(INPUT_TOPIC_OF[item.type_name])
            while True:
                try:
                    client.produce(
                        topic,
                        key=item.customer_id.encode(),
                        value=item.payload,
                        headers=[("churnwatch.type", item.type_name.encode())],
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    client.poll(0.1)
            client.poll(0)
            count += 1
            if progress is not None:
                progress(1)
            continue
        pending.append(item)
        if len(pending) >= size:
            send_pending()
    send_pending()
    remaining = client.flush(60.0)
    if remaining:
        failures.append(f"{remaining} records still queued after 60s")
    if failures:
        raise DeliveryError(failures, count)
    return count


# --------------------------------------------------------------------------- summary


def summary_table(sim: Simulation, *, generated_s: float, output_s: float, output: str) -> Table:
    """The summary ``churnwatch simulate`` prints."""
    counts = sim.counts
    config = sim.config
    table = Table(
        title=(
            f"Seed {config.seed}, {config.horizon_days:g} days from "
            f"{config.begin:%Y-%m-%d %H:%M} UTC"
        ),
        title_justify="left",
    )
    table.add_column("", justify="left")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")

    def share(n: int, of: int) -> str:
        return f"{n / of:.2%}" if of else "-"

    genuine = counts.genuine
    for type_name in TYPES:
        table.add_row(
            type_name, f"{counts.records[type_name]:,}", share(counts.records[type_name], genuine)
        )
    table.add_row("genuine records", f"{genuine:,}", "", end_section=True)
    table.add_row("duplicates", f"{counts.duplicates:,}", share(counts.duplicates, genuine))
    table.add_row("late (1 min - 48 h)", f"{counts.late:,}", share(counts.late, genuine))
    table.add_row(
        "very late (4 - 10 days)", f"{counts.very_late:,}", share(counts.very_late, genuine)
    )
    table.add_row("malformed", f"{counts.malformed:,}", share(counts.malformed, genuine))
    table.add_row("invalid values", f"{counts.invalid:,}", share(counts.invalid, genuine))
    table.add_row("delivered items", f"{counts.delivered:,}", "", end_section=True)
    table.add_row("customers", f"{counts.customers:,}", "")
    table.add_row(
        "churned within the period",
        f"{counts.churners:,}",
        share(counts.churners, counts.customers),
        end_section=True,
    )
    rate = counts.delivered / generated_s if generated_s > 0 else 0.0
    table.add_row("generation", f"{generated_s:.1f} s", f"{rate:,.0f} items/s")
    rate = counts.delivered / output_s if output_s > 0 else 0.0
    table.add_row(output, f"{output_s:.1f} s", f"{rate:,.0f} items/s")
    return table


def persona_table(sim: Simulation) -> Table:
    """Customers and churners per persona."""
    counts = sim.counts
    table = Table(title="Personas", title_justify="left")
    for column in ("persona", "customers", "share", "churned"):
        table.add_column(column, justify="left" if column == "persona" else "right")
    for persona in PERSONAS:
        n = counts.personas.get(persona, 0)
        table.add_row(
            persona,
            f"{n:,}",
            f"{n / counts.customers:.1%}" if counts.customers else "-",
            f"{counts.churners_by_persona.get(persona, 0):,}",
        )
    return table
