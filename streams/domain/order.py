"""Event-time order: accepted events wait here until the low watermark passes them, and
leave in event-time order (ties in arrival order).

A worker reads several topics at their own pace; applying each event as it arrives would
score a customer's support contact at 17:10 before an engagement event at 09:10 that
another topic delivers later. Held until the watermark (see
:meth:`streams.domain.clock.Clock.release_until`), they are applied as a backtest of
the same input applies them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Held(Generic[T]):
    at_ms: int
    seq: int
    item: T
    stream: Hashable
    outlier: bool = False
    received: float = 0.0  # when it was held (monotonic seconds)
    gone: bool = field(default=False, compare=False)


class EventOrder(Generic[T]):
    """A min-heap of held events by (event time, arrival), with lazy removal."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Held[T]]] = []
        self._seq = 0
        self._count = 0
        self._outliers: dict[Hashable, Held[T]] = {}

    def __len__(self) -> int:
        return self._count

    def hold(self, at_ms: int, item: T, stream: Hashable, *, outlier: bool = False,
             at: float = 0.0) -> None:
        """Hold ``item`` of event time ``at_ms`` from ``stream``, received at ``at``."""
        self._seq += 1
        held = Held(at_ms, self._seq, item, stream, outlier, at)
        heapq.heappush(self._heap, (at_ms, self._seq, held))
        self._count += 1
        if outlier:
            self._outliers[stream] = held

    def release(self, until_ms: int | None, *, outliers: bool = False,
                before: float | None = None) -> list[T]:
        """Every held event up to ``until_ms`` (None: all), in event-time order, stopping
        at the first one received after ``before`` (the later ones wait with it). Outliers
        awaiting their stream's verdict stay unless ``outliers``."""
        out: list[T] = []
        kept: list[tuple[int, int, Held[T]]] = []
        heap = self._heap
        while heap and (until_ms is None or heap[0][0] <= until_ms):
            entry = heapq.heappop(heap)
            held = entry[2]
            if held.gone:
                continue
            if before is not None and held.received > before:
                kept.append(entry)
                break
            if held.outlier and not outliers:
                kept.append(entry)
                continue
            self._forget(held)
            out.append(held.item)
        for entry in kept:
            heapq.heappush(heap, entry)
        return out

    def earliest_ms(self) -> int | None:
        """The event time of the earliest event still held (outliers left out)."""
        heap = self._heap
        if heap and not heap[0][2].gone and not heap[0][2].outlier:
            return heap[0][0]
        times = [at for at, _, held in heap if not held.gone and not held.outlier]
        return min(times) if times else None

    def settle_outlier(self, stream: Hashable, *, confirmed: bool) -> T | None:
        """Decide a stream's held outlier: confirmed, it is released in order like any
        other event; refuted, it leaves now and is returned (to be dead-lettered)."""
        held = self._outliers.pop(stream, None)
        if held is None:
            return None
        if confirmed:
            held.outlier = False
            return None
        held.gone = True
        self._count -= 1
        return held.item

    def drop(self, match: Callable[[T], bool]) -> list[T]:
        """Remove and return every held event that ``match`` accepts."""
        out: list[T] = []
        for _, _, held in self._heap:
            if not held.gone and match(held.item):
                held.gone = True
                self._forget(held)
                out.append(held.item)
        if out:
            self._heap = [e for e in self._heap if not e[2].gone]
            heapq.heapify(self._heap)
        return out

    def _forget(self, held: Held[T]) -> None:
        self._count -= 1
        if held.outlier and self._outliers.get(held.stream) is held:
            del self._outliers[held.stream]
