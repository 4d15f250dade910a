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

    def latest(self, stream: Hashable = None) -> datetime | None:
        """The latest event time accepted from ``stream`` (None before its first event)."""

    def restore(self, event_time: datetime, stream: Hashable = None) -> None:
        """Take a stream's latest event time kept from before a restart; it moves the
        stream's watermark but is not activity (the stream may be idle ever since)."""

    def behind(self, wall_now: datetime) -> timedelta:
        """How far the streams being read trail the wall clock (catching up a backlog)."""


class _Streams:
    """Latest event time per stream and when each stream last delivered one."""

    def __init__(self, idle_s: float, monotonic: Callable[[], float]) -> None:
        self.idle_s = idle_s
        self.monotonic = monotonic
        self.latest: dict[Hashable, datetime] = {}
        self.seen_at: dict[Hashable, float] = {}

    def observe(self, event_time: datetime, stream: Hashable) -> None:
        self.seen_at[stream] = self.monotonic()
        self._advance(event_time, stream)

    def restore(self, event_time: datetime, stream: Hashable) -> None:
        self.seen_at.setdefault(stream, float("-inf"))  # known, but idle until it delivers
        self._advance(event_time, stream)

    def _advance(self, event_time: datetime, stream: Hashable) -> None:
        latest = self.latest.get(stream)
        if latest is None or event_time > latest:
            self.latest[stream] = event_time

    def active(self) -> list[datetime]:
        cutoff = self.monotonic() - self.idle_s
        return [t for s, t in self.latest.items() if self.seen_at[s] >= cutoff]


class WallClock:
    """Live operation: now is the machine's UTC time."""

    def __init__(self, allowed_lateness: timedelta, *, idle_s: float = IDLE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lateness = allowed_lateness
        self._streams = _Streams(idle_s, monotonic)

    def now(self) -> datetime | None:
        return datetime.now(UTC)

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        return wall_now - self._lateness

    def observe(self, event_time: datetime, stream: Hashable = None) -> None:
        self._streams.observe(event_time, stream)

    def latest(self, stream: Hashable = None) -> datetime | None:
        return self._streams.latest.get(stream)

    def restore(self, event_time: datetime, stream: Hashable = None) -> None:
        self._streams.restore(event_time, stream)

    def behind(self, wall_now: datetime) -> timedelta:
        """The slowest stream that delivered events lately against the wall clock: large
        while a worker works through a backlog (after an outage), about zero otherwise."""
        active = self._streams.active()
        return max(timedelta(0), wall_now - min(active)) if active else timedelta(0)


class EventTimeClock:
    """Replay and backtest: watermarks from the event times seen, per stream."""

    def __init__(self, allowed_lateness: timedelta, *, idle_s: float = IDLE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lateness = allowed_lateness
        self._streams = _Streams(idle_s, monotonic)

    def now(self) -> datetime | None:
        if not self._streams.latest:
            return None
        active = self._streams.active()
        slowest = min(active) if active else max(self._streams.latest.values())
        return slowest - self._lateness

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        latest = self._streams.latest.get(stream)
        return None if latest is None else latest - self._lateness

    def observe(self, event_time: datetime, stream: Hashable = None) -> None:
        self._streams.observe(event_time, stream)

    def latest(self, stream: Hashable = None) -> datetime | None:
        return self._streams.latest.get(stream)

    def restore(self, event_time: datetime, stream: Hashable = None) -> None:
        self._streams.restore(event_time, stream)

    def behind(self, wall_now: datetime) -> timedelta:
        """Never: on event time, "now" is the watermark itself."""
        return timedelta(0)


def make_clock(mode: str, allowed_lateness: timedelta) -> Clock:
    """The clock for a settings value of ``wall`` or ``event``."""
    if mode == "event":
        return EventTimeClock(allowed_lateness)
    return WallClock(allowed_lateness)
