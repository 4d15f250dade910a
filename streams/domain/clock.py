"""Explicit time: the wall clock when live, the event-time watermark when replaying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from for silence checks and lateness bounds."""

    def now(self) -> datetime | None:
        """The current time, or None when an event-time clock has seen no event yet."""

    def lower_bound(self, wall_now: datetime) -> datetime | None:
        """Events older than this are too late (None: no bound yet)."""

    def observe(self, event_time: datetime) -> None:
        """Tell the clock an event with this time was accepted."""


class WallClock:
    """Live operation: now is the machine's UTC time."""

    def __init__(self, allowed_lateness: timedelta) -> None:
        self._lateness = allowed_lateness

    def now(self) -> datetime | None:
        return datetime.now(UTC)

    def lower_bound(self, wall_now: datetime) -> datetime | None:
        return wall_now - self._lateness

    def observe(self, event_time: datetime) -> None:
        return None


class EventTimeClock:
    """Replay and backtest: now is the latest event time seen minus the allowed lateness."""

    def __init__(self, allowed_lateness: timedelta) -> None:
        self._lateness = allowed_lateness
        self._max_seen: datetime | None = None

    def now(self) -> datetime | None:
        return self.watermark()

    def lower_bound(self, wall_now: datetime) -> datetime | None:
        return self.watermark()

    def watermark(self) -> datetime | None:
        if self._max_seen is None:
            return None
        return self._max_seen - self._lateness

    def observe(self, event_time: datetime) -> None:
        if self._max_seen is None or event_time > self._max_seen:
            self._max_seen = event_time


def make_clock(mode: str, allowed_lateness: timedelta) -> Clock:
    """The clock for a settings value of ``wall`` or ``event``."""
    if mode == "event":
        return EventTimeClock(allowed_lateness)
    return WallClock(allowed_lateness)
