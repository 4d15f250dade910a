"""A due-time index: which customers need a silence check, without scanning them all.

A min-heap of (due time, customer, partition) with lazy deletion: rescheduling a customer
pushes a new entry and the stale one is skipped when popped. Each worker keeps one for the
partitions it holds and rebuilds it from its table after a rebalance.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str, int]] = []
        self._due: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, customer_id: str, due_ms: int, partition: int) -> None:
        if self._due.get(customer_id) == (due_ms, partition):
            return
        self._due[customer_id] = (due_ms, partition)
        heapq.heappush(self._heap, (due_ms, customer_id, partition))
        if len(self._heap) > 2 * len(self._due) + 1024:  # drop stale entries
            self._heap = [(d, c, p) for c, (d, p) in self._due.items()]
            heapq.heapify(self._heap)

    def forget(self, customer_id: str) -> None:
        self._due.pop(customer_id, None)

    def pop_due(self, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` (customer, partition) pairs due at or before ``now_ms``."""
        out: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now_ms and len(out) < limit:
            due_ms, customer_id, partition = heapq.heappop(self._heap)
            if self._due.get(customer_id) == (due_ms, partition):
                del self._due[customer_id]
                out.append((customer_id, partition))
        return out

    def partition_counts(self) -> dict[int, int]:
        """How many scheduled customers each partition holds."""
        counts: dict[int, int] = {}
        for _, partition in self._due.values():
            counts[partition] = counts.get(partition, 0) + 1
        return counts

    def keep_partitions(self, partitions: Collection[int]) -> None:
        """Drop every customer of a partition this worker no longer holds."""
        keep = set(partitions)
        self._due = {c: v for c, v in self._due.items() if v[1] in keep}
        self._heap = [e for e in self._heap if e[2] in keep]
        heapq.heapify(self._heap)
