"""The offsets of one input partition's records that the ingest agent still holds for
event-time order (see :mod:`streams.ingest`): which is the first, and the partition's
latest event time before each, in logarithmic time however many are held."""

from __future__ import annotations

import heapq
from datetime import datetime


class HeldOffsets:
    """Held offsets of one partition. A record read twice (around a rebalance) is held
    twice: offsets are counted."""

    def __init__(self) -> None:
        self._count: dict[int, int] = {}
        self._heap: list[int] = []  # with offsets no longer held, dropped lazily
        self._before: dict[int, datetime | None] = {}

    def __bool__(self) -> bool:
        return bool(self._count)

    def __len__(self) -> int:
        return len(self._count)

    def add(self, offset: int, before: datetime | None) -> None:
        """Hold ``offset``; ``before`` is the partition's latest event time before it."""
        count = self._count.get(offset, 0)
        self._count[offset] = count + 1
        if count == 0:
            heapq.heappush(self._heap, offset)
            self._before[offset] = before

    def remove(self, offset: int) -> bool:
        """Let one hold of ``offset`` go; True when it is no longer held at all."""
        count = self._count[offset] - 1
        if count > 0:
            self._count[offset] = count
            return False
        del self._count[offset]
        del self._before[offset]
        return True

    def first(self) -> int | None:
        """The lowest offset held (None: none)."""
        heap = self._heap
        while heap and heap[0] not in self._count:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def before_first(self) -> datetime | None:
        """The partition's latest event time before its first held record."""
        first = self.first()
        return None if first is None else self._before[first]
