"""Explicit time: the wall clock when live, the event-time watermark when replaying.

An event-time clock tracks each input stream (a topic partition) on its own: an event is
too late when it is older than its own stream's latest event time minus the allowed
lateness, so a partition that lags behind others loses nothing. "Now" (for silence
checks) is the slowest active stream's latest event time minus the allowed lateness; a
stream with no new event for ``idle_s`` seconds of wall time stops holding it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Protocol

IDLE_S = 5.0


class Clock(Protocol):
    """Where "now" comes from for silence checks and lateness bounds."""

    def now(self) -> datetime | None:
        """The current time, or None when an event-time clock has seen no event yet."""

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        """Events of ``stream`` older than this are too late (None: no bound yet)."""

    def observe(self, event_time: datetime, stream: Hashable = None) -> None:
        """Tell the clock an event with this time was accepted from ``stream``."""


class WallClock:
    """Live operation: now is the machine's UTC time."""

    def __init__(self, allowed_lateness: timedelta) -> None:
        self._lateness = allowed_lateness

    def now(self) -> datetime | None:
        return datetime.now(UTC)

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        return wall_now - self._lateness

    def observe(self, event_time: datetime, stream: Hashable = None) -> None:
        return None


class EventTimeClock:
    """Replay and backtest: watermarks from the event times seen, per stream."""

    def __init__(self, allowed_lateness: timedelta, *, idle_s: float = IDLE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lateness = allowed_lateness
        self._idle_s = idle_s
        self._monotonic = monotonic
        self._latest: dict[Hashable, datetime] = {}
        self._seen_at: dict[Hashable, float] = {}

    def now(self) -> datetime | None:
        if not self._latest:
            return None
        cutoff = self._monotonic() - self._idle_s
        active = [t for s, t in self._latest.items() if self._seen_at[s] >= cutoff]
        slowest = min(active) if active else max(self._latest.values())
        return slowest - self._lateness

    def watermark(self) -> datetime | None:
        """The event-time "now": the slowest active stream minus the allowed lateness."""
        return self.now()

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        latest = self._latest.get(stream)
        return None if latest is None else latest - self._lateness

    def observe(self, event_time: datetime, stream: Hashable = None) -> None:
        self._seen_at[stream] = self._monotonic()
        latest = self._latest.get(stream)
        if latest is None or event_time > latest:
            self._latest[stream] = event_time


def make_clock(mode: str, allowed_lateness: timedelta) -> Clock:
    """The clock for a settings value of ``wall`` or ``event``."""
    if mode == "event":
        return EventTimeClock(allowed_lateness)
    return WallClock(allowed_lateness)
