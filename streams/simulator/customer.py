"""One simulated customer's state and plan: when it appears, whether and when it leaves,
how active it is and how it feels from day to day, and its time helpers. Times are days
since ``origin`` (midnight of the start day). The behaviour modules (profile, purchases,
engagement, support, billing) are functions of the customer, named ``c`` there, that add
its events; :mod:`.history` turns them into records."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from streams.simulator.draws import between, clamp, pick
from streams.simulator.model import (
    B2B_MIX,
    B2C_MIX,
    CHAMPION,
    COMPLAINING,
    DAY_S,
    DECLINING,
    DOWNGRADING,
    INVOLUNTARY,
    NEWCOMER,
    ONBOARDING_FAILURE,
    ONE_TIME,
    RECOVERING,
    SEASONAL,
    SUDDEN,
    SimulationConfig,
    customer_id,
)


@dataclass(slots=True)
class Profile:
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


class Customer:
    """Builds one customer's genuine history. Times are days since ``origin`` (midnight
    of the start day); the period is [begin, end)."""

    def __init__(self, index: int, config: SimulationConfig) -> None:
        self.index = index
        self.cid = customer_id(index)
        self.rng = random.Random(f"churnwatch-sim:{config.seed}:{index}")
        begin = config.begin
        self.origin = begin.replace(hour=0, minute=0, second=0, microsecond=0)
        self.begin = (begin - self.origin).total_seconds() / DAY_S
        self.end = self.begin + config.horizon_days
        self.days = math.ceil(self.end) + 1
        self.weekday0 = self.origin.weekday()
        self.events: list[_Event] = []
        self.segment = "b2b" if self.rng.random() < config.b2b_share else "b2c"
        self.persona = pick(self.rng, B2B_MIX if self.segment == "b2b" else B2C_MIX)
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
        #: a downgrader's usage falling to a lower level: (from, to, level)
        self.shrink: tuple[float, float, float] | None = None
        #: times of the plan downgrades (ProfileChange), for the billing events
        self.downgrades: list[float] = []
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
        return clamp(self.rng.gauss(self.hour_centre, 2.5), 6.0, 23.9)

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
            self.leave = between(rng, self.t0 + phase + 14.0, end + 90.0)
            self.decline_from = self.leave - phase
            self.sour = persona == COMPLAINING or rng.random() < 0.35
        elif persona == SUDDEN:
            self.leave = between(rng, self.t0 + 30.0, end + 90.0)
        elif persona == INVOLUNTARY:
            # uses the product as usual until the subscription ends after failed payments
            self.leave = between(rng, self.t0 + 45.0, end + 90.0)
        elif persona == DOWNGRADING:
            start = between(rng, self.t0 + 28.0, end - 7.0)  # the downgrade
            self.shrink = (start, start + rng.uniform(14.0, 42.0), rng.uniform(0.4, 0.75))
            self.decline_from = start
            if rng.random() < 0.4:  # gives up later (perhaps after the period)
                self.leave = self.shrink[1] + rng.uniform(42.0, 180.0)
        elif persona == RECOVERING:
            start = between(rng, self.t0 + 21.0, end - 50.0)
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
        if self.shrink is not None:
            start, low_from, low = self.shrink
            if t < start:
                return 1.0
            if t < low_from:
                return 1.0 - (1.0 - low) * (t - start) / (low_from - start)
            if self.leave == math.inf:
                return low
            x = (t - low_from) / (self.leave - low_from)
            return float(low * (1.0 - 0.92 * x) ** 1.4)
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
                x = clamp((t - self.decline_from) / (self.leave - self.decline_from), 0, 1)
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

    def bill_days(self) -> Iterator[tuple[int, int, float]]:
        """The subscription's billing days (midnight, as days since the origin) with their
        year and month: the signup day of every month (the 28th at most), from the month
        the customer appears in, without end."""
        bill_day = min(self.signup_day, 28)
        first = self.date_of(self.t0)
        year, month = first.year, first.month
        while True:
            yield year, month, self.day_of(date(year, month, bill_day))
            month += 1
            if month > 12:
                year, month = year + 1, 1

    @property
    def stop(self) -> float:
        """Nothing happens from this time on."""
        return min(self.leave, self.end)

    def mrr_at(self, t: float) -> int:
        value = self.mrr_changes[0][1]
        for when, mrr in self.mrr_changes:
            if when <= t:
                value = mrr
        return value

    def mood_at(self, t: float) -> float:
        day = int(t)
        return self.mood[day] if 0 <= day < len(self.mood) else self.mood[-1]
