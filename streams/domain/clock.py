"""Explicit time: the wall clock when live, the event-time watermark when replaying.

Both clocks track each input stream (a topic partition) on its own: its latest event
time, when it last delivered a record, and whether the worker has read all of it (caught
up). From these they give

- the **lateness bound** of a stream: an event older than its own stream's latest event
  time minus the allowed lateness is too late (event clock), or older than the wall clock
  minus the allowed lateness (wall clock); a partition that lags behind others loses
  nothing;
- when an accepted event may be **applied** (``release_until``), in event-time order with
  the rest. Live (wall clock), once every stream that may still deliver an older event has
  moved past it: the *low watermark*, the earliest latest event time over the streams
  that are not idle (a stream stops holding it back once read to its end and quiet for
  ``grace_s``, or quiet for ``idle_s`` whatever it says), never more than the allowed
  lateness behind the newest stream. On the event clock, once every stream that is not
  idle is the allowed lateness past it, and the newest is too (an idle stream's next
  record may be that late): a late record takes its place as in a backtest of the same
  input, at a cost of the allowed lateness of event time in latency (twice that while a
  stream lags behind, and as long as it takes while a backlog with unread records is
  read); a stream not read yet holds everything until it is idle; once no
  stream has delivered for ``idle_s`` (settled), everything goes;
- **now**, for silence checks: ``release_until`` on the event clock, the machine's time
  on the wall clock.

On the event clock, one record far ahead of everything else (more than ``max_jump``
past the newest stream) does not move the clock: it is an *outlier*, held until its
stream's next record decides. A next record within the allowed lateness of it confirms it
(the stream has moved on, e.g. a backfill turned live); an older one refutes it, and the
caller dead-letters it (:data:`streams.domain.events.CLOCK_OUTLIER`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

IDLE_S = 5.0
GRACE_S = 0.1
MAX_JUMP = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Arrival:
    """What observing one accepted event did to its stream."""

    outlier: bool = False  # held: it did not move the clock (yet)
    confirmed: bool = False  # the stream's earlier outlier is confirmed by this event
    refuted: datetime | None = None  # the stream's earlier outlier, refuted by this event


ON_TIME = Arrival()


class Clock(Protocol):
    """Where "now" comes from for silence checks, lateness bounds and event order."""

    def now(self) -> datetime | None:
        """The current time, or None when an event-time clock has seen no event yet."""

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        """Events of ``stream`` older than this are too late (None: no bound yet)."""

    def observe(self, event_time: datetime, stream: Hashable = None) -> Arrival:
        """Tell the clock an event with this time was accepted from ``stream``."""

    def latest(self, stream: Hashable = None) -> datetime | None:
        """The latest event time accepted from ``stream`` (None before its first event)."""

    def restore(self, event_time: datetime, stream: Hashable = None) -> None:
        """Take a stream's latest event time kept from before a restart: it moves the low
        watermark but is not activity (the stream may be idle ever since), and it counts
        for the lateness bound as if read. The caller keeps, for each stream, the latest
        event time before the first record it had not taken yet (see
        :meth:`streams.ingest.Ingest.kept_watermark`)."""

    def caught_up(self, stream: Hashable, caught_up: bool | None) -> None:
        """Tell the clock whether the worker has read everything ``stream`` holds (None:
        not known)."""

    def assigned(self, streams: Iterable[Hashable]) -> None:
        """The streams the worker reads now; others are forgotten."""

    def release_until(self) -> datetime | None:
        """Events up to this time can be applied in event-time order (None: none yet)."""

    def settled(self) -> bool:
        """No stream has delivered for a while: the worker has read all there is."""

    def behind(self, wall_now: datetime) -> timedelta:
        """How far the streams being read trail the wall clock (catching up a backlog)."""


class _Streams:
    """Latest event time per stream, when each stream last delivered one, and whether
    the worker has read it to its end."""

    def __init__(self, lateness: timedelta, idle_s: float, grace_s: float,
                 max_jump: timedelta | None, monotonic: Callable[[], float]) -> None:
        self.lateness = lateness
        self.idle_s = idle_s
        self.grace_s = grace_s
        self.max_jump = max_jump
        self.monotonic = monotonic
        self.latest: dict[Hashable, datetime] = {}  # from records read since the start
        self.restored: dict[Hashable, datetime] = {}  # kept from before a restart
        self.seen_at: dict[Hashable, float] = {}
        self.caught: dict[Hashable, bool | None] = {}  # None: its end is not known
        self.held: dict[Hashable, datetime] = {}  # a stream's outlier awaiting its next record
        self._newest: datetime | None = None  # cache of newest(), valid unless _stale
        self._stale = False

    def observe(self, event_time: datetime, stream: Hashable) -> Arrival:
        self.seen_at[stream] = self.monotonic()
        refuted = None
        confirmed = False
        pending = self.held.pop(stream, None)
        if pending is not None:
            if event_time >= pending - self.lateness:
                self._advance(pending, stream)  # confirmed: the stream has moved on
                confirmed = True
            else:
                refuted = pending
        newest = self.newest()
        if (self.max_jump is not None and newest is not None
                and event_time > newest + self.max_jump):
            self.held[stream] = event_time
            return Arrival(True, confirmed, refuted)
        self._advance(event_time, stream)
        return ON_TIME if pending is None else Arrival(False, confirmed, refuted)

    def restore(self, event_time: datetime, stream: Hashable) -> None:
        self.seen_at.setdefault(stream, float("-inf"))  # known, but idle until it delivers
        kept = self.restored.get(stream)
        if kept is None or event_time > kept:
            self.restored[stream] = event_time
            self._stale = True

    def _advance(self, event_time: datetime, stream: Hashable) -> None:
        latest = self.latest.get(stream)
        if latest is None or event_time > latest:
            self.latest[stream] = event_time
            if not self._stale and (self._newest is None or event_time > self._newest):
                self._newest = event_time

    def position(self, stream: Hashable) -> datetime | None:
        latest, kept = self.latest.get(stream), self.restored.get(stream)
        if latest is None or kept is None:
            return latest if kept is None else kept
        return max(latest, kept)

    def newest(self) -> datetime | None:
        """The latest event time over every stream (read or restored)."""
        if self._stale:
            positions = [p for s in self.seen_at if (p := self.position(s)) is not None]
            self._newest = max(positions) if positions else None
            self._stale = False
        return self._newest

    def assigned(self, streams: Iterable[Hashable]) -> None:
        keep = set(streams)
        now = self.monotonic()
        for name in (self.latest, self.restored, self.seen_at, self.caught, self.held):
            for stream in [s for s in name if s not in keep]:
                del name[stream]
        self._stale = True
        for stream in keep:
            self.seen_at.setdefault(stream, now)  # unread yet: holds back until idle

    def idle(self, stream: Hashable, now: float) -> bool:
        """Read to its end and quiet for the grace time; or quiet for the idle time,
        whatever it says (its end not known, or a backlog that delivers nothing: an
        offset this worker cannot see may be behind it)."""
        quiet = now - self.seen_at.get(stream, float("-inf"))
        if self.caught.get(stream) is True and quiet >= self.grace_s:
            return True
        return quiet >= self.idle_s

    def low_watermark(self) -> datetime | None:
        newest = self.newest()
        if newest is None:
            return None
        now = self.monotonic()
        holding = [self.position(s) for s in self.seen_at if not self.idle(s, now)]
        if not holding:
            return newest
        if any(p is None for p in holding):  # a stream not read yet: wait for it
            return newest - self.lateness
        return max(min(p for p in holding if p is not None), newest - self.lateness)

    def settled(self) -> bool:
        """No stream has delivered for ``idle_s``: all there is has been read."""
        quiet_since = self.monotonic() - self.idle_s
        return all(t <= quiet_since for t in self.seen_at.values())

    def lateness_safe(self) -> datetime | None:
        """Up to when no stream can still deliver an older event, on the event clock: the
        earliest latest event time over the streams that are not idle, minus the allowed
        lateness (a stream's later records are at most that late), and never later than
        the newest minus the lateness (an idle stream's next record may be that late). A
        backlog (a stream with unread records, read more slowly than the others) holds
        back to its own progress minus the lateness however far behind it is; any other
        stream that lags holds back no further than twice the lateness; one not read yet
        holds everything until it is idle."""
        newest = self.newest()
        if newest is None:
            return None
        now = self.monotonic()
        bound = newest - self.lateness
        floor = newest - 2 * self.lateness
        for stream in self.seen_at:
            if self.idle(stream, now):
                continue
            position = self.position(stream)
            if position is None:
                return None
            if self.caught.get(stream) is False:  # a backlog: whatever it holds may come
                bound = min(bound, position - self.lateness)
            else:
                bound = min(bound, max(position - self.lateness, floor))
        return bound

    def active(self) -> list[datetime]:
        cutoff = self.monotonic() - self.idle_s
        return [t for s, t in self.latest.items() if self.seen_at[s] >= cutoff]


class _TrackedClock:
    """What both clocks share: the streams and their low watermark."""

    def __init__(self, allowed_lateness: timedelta, *, idle_s: float = IDLE_S,
                 grace_s: float = GRACE_S, max_jump: timedelta | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lateness = allowed_lateness
        self._streams = _Streams(allowed_lateness, idle_s, grace_s, max_jump, monotonic)

    def observe(self, event_time: datetime, stream: Hashable = None) -> Arrival:
        return self._streams.observe(event_time, stream)

    def latest(self, stream: Hashable = None) -> datetime | None:
        return self._streams.latest.get(stream)

    def restore(self, event_time: datetime, stream: Hashable = None) -> None:
        self._streams.restore(event_time, stream)

    def caught_up(self, stream: Hashable, caught_up: bool | None) -> None:
        self._streams.caught[stream] = caught_up

    def assigned(self, streams: Iterable[Hashable]) -> None:
        self._streams.assigned(streams)

    def settled(self) -> bool:
        return self._streams.settled()


class WallClock(_TrackedClock):
    """Live operation: now is the machine's UTC time."""

    def now(self) -> datetime | None:
        return datetime.now(UTC)

    def release_until(self) -> datetime | None:
        """Live, events go on as soon as every input that may deliver an older one has
        moved past them: the low watermark, without waiting for late records."""
        return self._streams.low_watermark()

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        return wall_now - self._lateness

    def behind(self, wall_now: datetime) -> timedelta:
        """The slowest stream that delivered events lately against the wall clock: large
        while a worker works through a backlog (after an outage), about zero otherwise."""
        active = self._streams.active()
        return max(timedelta(0), wall_now - min(active)) if active else timedelta(0)


class EventTimeClock(_TrackedClock):
    """Replay and backtest: watermarks from the event times seen, per stream."""

    def __init__(self, allowed_lateness: timedelta, *, idle_s: float = IDLE_S,
                 grace_s: float = GRACE_S, max_jump: timedelta | None = MAX_JUMP,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(allowed_lateness, idle_s=idle_s, grace_s=grace_s,
                         max_jump=max_jump, monotonic=monotonic)

    def now(self) -> datetime | None:
        return self.release_until()

    def release_until(self) -> datetime | None:
        """On event time, events go on once no input can deliver an older one within the
        allowed lateness, so late records take their place in event-time order as in a
        backtest; once every input has been read (settled), everything goes."""
        if self._streams.settled():
            return self._streams.newest()
        return self._streams.lateness_safe()

    def lower_bound(self, wall_now: datetime, stream: Hashable = None) -> datetime | None:
        # a restored stream: its kept latest event time counts as read (the caller keeps
        # it as of the first record it read again that was not taken before)
        position = self._streams.position(stream)
        return None if position is None else position - self._lateness

    def behind(self, wall_now: datetime) -> timedelta:
        """Never: on event time, "now" is the watermark itself."""
        return timedelta(0)


def make_clock(mode: str, allowed_lateness: timedelta, *, grace_s: float = GRACE_S,
               max_jump: timedelta = MAX_JUMP) -> Clock:
    """The clock for a settings value of ``wall`` or ``event``."""
    if mode == "event":
        return EventTimeClock(allowed_lateness, grace_s=grace_s, max_jump=max_jump)
    return WallClock(allowed_lateness, grace_s=grace_s)
