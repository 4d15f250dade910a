"""Signals of every customer at cutoffs, from a replay through the workers' own code.

:class:`SignalReplay` is the in-process pipeline (:class:`streams.replay.LocalPipeline`:
the same parsing, time checks, de-duplication and feature states as a worker) with the
scoring left out: each feature update only merges its signals into the customer's health,
as the scorer would before it scores. At each cutoff a copy of every customer's signals is
kept; the label is whether the customer was active (a purchase or an engagement) within
the horizon after the cutoff.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.features import ProfileState, finite
from streams.domain.health import CustomerHealth, Output, segment_of, tenure_days
from streams.domain.scoring import Score, ScoringConfig, compute_score
from streams.domain.stored import loads
from streams.replay import LocalPipeline

#: Records that make a customer count as active (``[retention]`` of the scoring config).
ACTIVITY_TYPES = frozenset({"Purchase", "Engagement"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One customer's signals as of a cutoff, and what it did after."""

    customer_id: str
    cutoff_d: float  # days since the epoch
    signals: dict[str, float]
    segment: str
    tenure_d: float | None
    active_after: bool  # active within the horizon after the cutoff

    @property
    def left(self) -> bool:
        return not self.active_after

    def score(self, config: ScoringConfig) -> Score | None:
        """The snapshot scored under ``config`` as of its cutoff."""
        return compute_score(config, self.signals, now_d=self.cutoff_d, segment=self.segment,
                             tenure_d=self.tenure_d)


def days_since_activity(signals: Mapping[str, float], now_d: float) -> float:
    """Days since the latest purchase or engagement (the one-line baseline); infinite
    without either."""
    last = max((signals[k] for k in ("purchase.last_at_d", "engagement.last_at_d")
                if k in signals), default=None)
    return math.inf if last is None else now_d - last


class ActivityWindows:
    """Who was active (a purchase or an engagement) within ``horizon`` after each cutoff,
    from records seen in any order; cutoffs can be added later, in time order."""

    def __init__(self, cutoffs: Sequence[datetime], horizon: timedelta) -> None:
        self.cutoffs: list[datetime] = []
        self.horizon = horizon
        self.active: list[set[str]] = []
        self.last_seen: datetime | None = None
        for cutoff in sorted(cutoffs):
            self.add(cutoff)

    def add(self, cutoff: datetime) -> int:
        """A new cutoff, later than the others; returns its index."""
        self.cutoffs.append(cutoff)
        self.active.append(set())
        return len(self.cutoffs) - 1

    def see(self, type_name: str, record: Mapping[str, Any]) -> None:
        at: datetime = record["occurred_at"]
        if self.last_seen is None or at > self.last_seen:
            self.last_seen = at
        customer = record.get("customer_id")
        if type_name not in ACTIVITY_TYPES or not isinstance(customer, str):
            return
        cutoffs = self.cutoffs
        # the cutoffs c with c < at <= c + horizon
        for i in range(bisect_left(cutoffs, at - self.horizon), bisect_right(cutoffs, at)):
            if cutoffs[i] < at:
                self.active[i].add(customer)

    def complete(self, i: int) -> bool:
        """Whether the records seen cover cutoff i's whole horizon (records are seen in
        any order, so this assumes none is missing before the latest seen)."""
        return self.last_seen is not None and self.last_seen >= self.cutoffs[i] + self.horizon


class SignalReplay(LocalPipeline):
    """The pipeline's feature steps, with the signals merged but not scored."""

    def _score(self, update: dict[str, Any]) -> list[Output]:
        customer = update["customer_id"]
        health = self.health.get(customer)
        if health is None:
            health = self.health[customer] = CustomerHealth()
        health.update_signals(update["family"], to_ms(update["occurred_at"]),
                              finite(dict(update["signals"])))
        profile = update.get("profile")
        if profile is not None:
            health.profile = ProfileState.from_json(loads(profile.encode()), 0)
        return []


def monthly_cutoffs(start: datetime, end: datetime, *, every: timedelta,
                    warm_up: timedelta) -> list[datetime]:
    """Cutoffs every ``every`` from ``start + warm_up`` up to ``end`` (inclusive)."""
    cutoffs = []
    at = start + warm_up
    while at <= end:
        cutoffs.append(at)
        at += every
    return cutoffs


def take_snapshots(replay: SignalReplay, records: Iterable[tuple[str, dict[str, Any]]],
                   cutoffs: Sequence[datetime], horizon: timedelta) -> list[Snapshot]:
    """Replay ``records`` (sorted by event time), keep every customer's signals at each
    cutoff, and label each snapshot by activity within ``horizon`` after its cutoff."""
    cutoffs = sorted(cutoffs)
    if not cutoffs:
        return []
    taken: list[list[tuple[str, dict[str, float], str, float | None]]] = []
    windows = ActivityWindows(cutoffs, horizon)
    active = windows.active
    end = cutoffs[-1] + horizon
    for type_name, record in records:
        at: datetime = record["occurred_at"]
        while len(taken) < len(cutoffs) and at > cutoffs[len(taken)]:
            taken.append(_signals_now(replay, cutoffs[len(taken)]))
        if at > end:
            break
        windows.see(type_name, record)
        if len(taken) < len(cutoffs):
            replay.process(type_name, record)
    while len(taken) < len(cutoffs):
        taken.append(_signals_now(replay, cutoffs[len(taken)]))
    snapshots: list[Snapshot] = []
    for cutoff, rows, came in zip(cutoffs, taken, active, strict=True):
        cutoff_d = to_ms(cutoff) / DAY_MS
        snapshots.extend(Snapshot(customer, cutoff_d, signals, segment, tenure,
                                  customer in came)
                         for customer, signals, segment, tenure in rows)
    return snapshots


def _signals_now(replay: SignalReplay,
                 cutoff: datetime) -> list[tuple[str, dict[str, float], str, float | None]]:
    now_ms = to_ms(cutoff)
    rows = []
    for customer, health in replay.health.items():
        if not health.signals:
            continue
        profile = health.profile
        rows.append((customer, dict(health.signals), segment_of(profile),
                     tenure_days(profile, now_ms)))
    return rows
