"""Producing a feed a simulated day at a time, paced, with a progress bar."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from streams.codec import Codec
from streams.kafka_io import (
    make_producer,
)
from streams.scenario import Record, iter_days
from streams.settings import Settings
from streams.simulator import Item


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("records  [cyan]{task.fields[day]}"), TimeElapsedColumn(),
        console=console)


def produce_paced(settings: Settings, codec: Codec, records: list[Record], *, pace: float,
                  console: Console, progress: Progress | None = None,
                  wait: Callable[[float], None] = time.sleep,
                  stop: Callable[[], bool] | None = None,
                  gate: Callable[[int], None] | None = None) -> int:
    """:func:`produce_days` of records sorted by event time, a day of event time at a time."""
    days: list[tuple[datetime, list[Item]]] = [
        (day, list(batch)) for day, batch in iter_days(records)]
    return produce_days(settings, codec, days, pace=pace, console=console,
                        progress=progress, wait=wait, stop=stop, gate=gate)


def produce_days(settings: Settings, codec: Codec, days: list[tuple[datetime, list[Item]]],
                 *, pace: float, console: Console, progress: Progress | None = None,
                 wait: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] | None = None,
                 gate: Callable[[int], None] | None = None,
                 sent: Callable[[int], object] | None = None) -> int:
    """Produce the items one day at a time, ``pace`` days per second of wall time (0: as
    fast as possible), with a progress bar. Returns the records produced. A malformed item
    is produced as its raw bytes.

    ``gate(n)``, when given, is called before each day with the number of records of all
    days but the last two produced so far, and should return once the consumer has read
    them: a replaying worker's event-time clock then never runs more than two days ahead
    of any record still to be read, so nothing falls behind its allowed lateness.
    ``sent(n)``, when given, is called with the records produced since its last call.
    """
    from streams.simulator import produce_items

    producer = make_producer(settings)
    own = progress is None
    bar = progress if progress is not None else make_progress(console)
    task = bar.add_task("producing", total=sum(len(batch) for _, batch in days), day="")
    count = 0
    through: list[int] = []  # records produced up to and including each day

    def advance(n: int) -> None:
        bar.advance(task, n)
        if sent is not None:
            sent(n)

    with bar if own else contextlib.nullcontext():
        started = time.monotonic()
        first: datetime | None = None
        for day, batch in days:
            if stop is not None and stop():
                break
            first = first or day
            if pace > 0:
                due = started + (day - first).days / pace
                while (remaining := due - time.monotonic()) > 0:
                    wait(remaining)
            if gate is not None and len(through) >= 2:
                gate(through[-2])
            count += produce_items(settings, codec, batch, producer=producer,
                                   progress=advance)
            through.append(count)
            bar.update(task, day=day.date().isoformat())
    return count
