"""Event-time weekly buckets: a bounded, order-independent per-customer history.

Each bucket is one week of event time (days since the Unix epoch // 7) holding a 7-bit
mask of the days with activity and a fixed number of counters. Only the ``keep_weeks``
weeks up to the latest week seen are kept, so the final state depends on the set of
events, not on the order they arrived in, and stays small however long the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from streams.domain.rounding import round_to

DAY_MS: Final = 86_400_000


def day_of(moment: datetime) -> int:
    """Days since the Unix epoch of a timezone-aware datetime."""
    return int(moment.timestamp() * 1000) // DAY_MS


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True, init=False)
class WeekBuckets:
    """Sorted per-week rows: week number, mask of active days, ``width`` counters."""

    width: int
    weeks: list[int] = field(default_factory=list)
    masks: list[int] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)

    def __init__(self, width: int, weeks: list[int] | None = None,
                 masks: list[int] | None = None,
                 values: list[list[float]] | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.width = width
        self.weeks = [] if weeks is None else weeks
        self.masks = [] if masks is None else masks
        self.values = [] if values is None else values

    def add(self, day: int, increments: list[float], keep_weeks: int) -> None:
        """Add counters to the week of ``day``, then evict weeks out of the window."""
        if len(increments) != self.width:
            raise ValueError(f"expected {self.width} counters, got {len(increments)}")
        week = day // 7
        latest = max(self.weeks[-1], week) if self.weeks else week
        if week <= latest - keep_weeks:
            return
        index = self._index(week)
        if index < len(self.weeks) and self.weeks[index] == week:
            self.masks[index] |= 1 << (day % 7)
            row = self.values[index]
            for i, inc in enumerate(increments):
                row[i] += inc
        else:
            self.weeks.insert(index, week)
            self.masks.insert(index, 1 << (day % 7))
            self.values.insert(index, list(increments))
        cut = self._index(latest - keep_weeks + 1)
        if cut:
            del self.weeks[:cut], self.masks[:cut], self.values[:cut]

    def _index(self, week: int) -> int:
        lo, hi = 0, len(self.weeks)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.weeks[mid] < week:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _rows(self, first_week: int, last_week: int) -> range:
        """The rows of the weeks first_week..last_week (the weeks are sorted)."""
        return range(self._index(first_week), self._index(last_week + 1))

    def total(self, first_week: int, last_week: int) -> list[float]:
        """Sum of each counter over the weeks first_week..last_week inclusive."""
        rows = self._rows(first_week, last_week)
        sums: list[float] = []
        for j in range(self.width):  # a counter at a time: its sum stays a float, unboxed
            total = 0.0
            for i in rows:
                total += self.values[i][j]
            sums.append(total)
        return sums

    def active_weeks(self, first_week: int, last_week: int) -> int:
        return len(self._rows(first_week, last_week))

    def active_days(self, first_week: int, last_week: int) -> list[int]:
        """The days with activity in the weeks first_week..last_week, ascending."""
        return [self.weeks[i] * 7 + bit for i in self._rows(first_week, last_week)
                for bit in range(7) if self.masks[i] >> bit & 1]

    def active_span(self, first_week: int, last_week: int) -> tuple[int, int, int]:
        """How many days had activity in the weeks first_week..last_week, and the first
        and the last of them (0 and 0 when none): :meth:`active_days` without the list."""
        count = first = last = 0
        for i in self._rows(first_week, last_week):
            mask = self.masks[i]
            for bit in range(7):
                if mask >> bit & 1:
                    day = self.weeks[i] * 7 + bit
                    if count == 0:
                        first = day
                    last = day
                    count += 1
        return count, first, last

    def to_json(self) -> list[float]:
        """One flat list: per week, its number (after the first: the weeks since the
        previous one), its mask of active days and its counters."""
        out: list[float] = []
        previous = 0
        for week, mask, row in zip(self.weeks, self.masks, self.values, strict=True):
            out += (week - previous, mask, *_compact(row))
            previous = week
        return out

    @classmethod
    def from_json(cls, width: int, rows: list[float] | list[list[float]]) -> WeekBuckets:
        """From :meth:`to_json`, or from the former list of ``[week, mask, *counters]``."""
        if rows and isinstance(rows[0], list):
            old: list[list[float]] = rows
            return cls(width, [int(r[0]) for r in old], [int(r[1]) for r in old],
                       [list(map(float, r[2:])) for r in old])
        flat: list[float] = rows  # type: ignore[assignment]
        stride = width + 2
        weeks: list[int] = []
        week = 0
        for i in range(0, len(flat), stride):
            week += int(flat[i])
            weeks.append(week)
        return cls(width, weeks, [int(flat[i + 1]) for i in range(0, len(flat), stride)],
                   [list(map(float, flat[i + 2:i + stride]))
                    for i in range(0, len(flat), stride)])


def _compact(row: list[float]) -> list[float]:
    return [int(v) if float(v).is_integer() else round_to(v, 3) for v in row]
