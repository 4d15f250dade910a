"""Event-time daily buckets: a bounded, order-independent per-customer history.

Each bucket is one UTC day (days since the Unix epoch) holding a fixed number of
counters. Only the ``keep_days`` days up to the latest day seen are kept, so the final
state depends on the set of events, not on the order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

DAY_MS = 86_400_000


def day_of(moment: datetime) -> int:
    """Days since the Unix epoch of a timezone-aware datetime."""
    return int(moment.timestamp() * 1000) // DAY_MS


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True)
class DailyBuckets:
    """Sorted per-day counters; ``width`` values per day."""

    width: int
    days: list[int] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)

    def add(self, day: int, increments: list[float], keep_days: int) -> None:
        """Add counters to a day, then evict days older than the kept window."""
        if len(increments) != self.width:
            raise ValueError(f"expected {self.width} counters, got {len(increments)}")
        latest = max(self.days[-1], day) if self.days else day
        if day <= latest - keep_days:
            return
        index = self._index(day)
        if index < len(self.days) and self.days[index] == day:
            row = self.values[index]
            for i, inc in enumerate(increments):
                row[i] += inc
        else:
            self.days.insert(index, day)
            self.values.insert(index, list(increments))
        cut = self._index(latest - keep_days + 1)
        if cut:
            del self.days[:cut]
            del self.values[:cut]

    def _index(self, day: int) -> int:
        lo, hi = 0, len(self.days)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.days[mid] < day:
                lo = mid + 1
            else:
                hi = mid
        return lo

    @property
    def latest_day(self) -> int | None:
        return self.days[-1] if self.days else None

    def total(self, first_day: int, last_day: int) -> list[float]:
        """Sum of each counter over the days first_day..last_day inclusive."""
        sums = [0.0] * self.width
        for day, row in zip(self.days, self.values, strict=True):
            if first_day <= day <= last_day:
                for i, value in enumerate(row):
                    sums[i] += value
        return sums

    def active_days(self, first_day: int, last_day: int) -> list[int]:
        return [d for d in self.days if first_day <= d <= last_day]

    def to_json(self) -> list[list[float]]:
        return [[day, *_compact(row)] for day, row in zip(self.days, self.values, strict=True)]

    @classmethod
    def from_json(cls, width: int, rows: list[list[float]]) -> DailyBuckets:
        return cls(width, [int(r[0]) for r in rows], [list(map(float, r[1:])) for r in rows])


def _compact(row: list[float]) -> list[float]:
    return [int(v) if float(v).is_integer() else round(v, 4) for v in row]
