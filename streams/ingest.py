"""One batch of records through a worker: the single Faust hop of every input record.

The ingest agent reads every input topic (and the worker's own tick topic) and hands each
batch to :meth:`Ingest.run`:

1. intake: decode and validate each record; bad ones go to the dead-letter topic;
2. order: accepted events wait in :class:`~streams.domain.order.EventOrder` until the low
   watermark over the input partitions this worker reads passes them, and then go on in
   event-time order, so a customer's score never depends on which topic was read first;
3. step: each released event goes through its family's feature state and the customer's
   score in one step (:func:`~streams.pipeline.step_event`), on state objects kept in
   memory; outputs are published as they come;
4. silence: on the silence timer's turn, the customers whose check is due by "now" are
   checked (between turns, a customer's due checks run before its next event);
5. write: each changed customer's state is written to its tables once, in the stream
   context of its partition (the changelog partition), and the events applied are acked.

An event held for order is acked only once applied, so a crash never commits past it. Ticks
(records on the tick topic, sent by the worker's timers) give the agent a turn, and a
partition's stream context, when no input arrives; the silence timer's ask for the
silence checks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faust.streams import _current_event

from streams.domain.buckets import from_ms, to_ms
from streams.domain.events import CLOCK_OUTLIER, ErasureRequest, Rejection
from streams.domain.order import EventOrder
from streams.families import REGISTRY, Family, FamilyEvent, tie_order
from streams.held import HeldOffsets
from streams.pipeline import (
    HEALTH_TABLE,
    CustomerStates,
    StepResult,
    step_event,
    step_silence,
)
from streams.runtime import SILENCE_TICK, Runtime
from streams.settings import TOPIC_ERASURE, TOPIC_TICKS

log = logging.getLogger("churnwatch.ingest")
STEP = "scorer"  # the step name of scoring and silence checks (log field, metric label)
ERASURE_STEP = "erasure"
#: silence checks run per batch at most (the rest run in the next batches)
MAX_CHECKS = 10_000
#: A partition's kept watermark is written at most this often (seconds); one kept a
#: little behind is safe: a lateness bound a little looser after a restart.
KEEP_WATERMARK_EVERY_S = 1.0


@dataclass(slots=True)
class Pending:
    """An accepted event waiting for its turn, with the Faust event it came in."""

    record: Any  # faust EventT
    event: FamilyEvent
    family: Family


def in_context(record: Any) -> None:
    """Make ``record`` Faust's current event: tables read and write (and send changelog
    records to) the partition of the current event's message."""
    _current_event.set(weakref.ref(record))


class Ingest:
    """The per-process state of the ingest agent: held events, customer states in memory,
    and one recent Faust event per partition (a stream context for writes)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        settings = rt.settings
        self.families = {settings.topic(f.topic): f for f in REGISTRY}
        self.erasure_topic = settings.topic(TOPIC_ERASURE)
        self.tick_topic = settings.topic(TOPIC_TICKS)
        self.states = CustomerStates(
            settings, {f.table: rt.table(f.table, f"{f.name} features per customer")
                       for f in REGISTRY}
            | {HEALTH_TABLE: rt.table(HEALTH_TABLE, "signals, score and alert state per customer")},
            keep=settings.state_cache)
        self.order: EventOrder[Pending] = EventOrder()
        self.contexts: dict[int, Any] = {}  # partition -> a recent Faust event of it
        self.positions: dict[tuple[str, int], int] = {}  # next offset to read per stream
        self.watermarks_moved: set[tuple[str, int]] = set()
        self.kept_at: dict[tuple[str, int], float] = {}  # monotonic time of the last write
        self.stale = True  # after a rebalance: drop what was held and read from the tables
        self.held_partitions: dict[int, int] = {}
        # acks in offset order per stream: the offsets held, and the records done with
        # that wait for an earlier offset still held (see :meth:`finish`)
        # (a record read twice, around a rebalance, is held twice: offsets are counted)
        # (with each one's partition latest event time before it: see kept_watermark)
        self.held_offsets: dict[tuple[str, int], HeldOffsets] = {}
        self.finished: dict[tuple[str, int], list[tuple[int, int, Any]]] = {}
        self.finish_seq = itertools.count()  # ties between copies of one offset
        self.last_batch = 0.0  # monotonic time the last batch ended
        self.mark: datetime | None = None  # held events up to this time have gone on
        self.check_until: datetime | None = None  # this batch's silence checks run to here
        m = rt.metrics
        self.accepted = {f.step: m.events_accepted.labels(f.step) for f in REGISTRY}
        self.duplicates = {f.step: m.duplicates.labels(f.step) for f in REGISTRY}
        self.applied = {f.step: m.applied.labels(f.step) for f in REGISTRY}

    # -- the batch -------------------------------------------------------------------------
    async def run(self, batch: Sequence[Any]) -> None:
        rt = self.rt
        started = time.perf_counter()
        if self.stale:
            self.reset()
        if rt.watermarks_stale and rt.recovered():  # before the first input after a restart
            rt.restore_watermarks({(tp.topic, tp.partition) for tp in self.assigned_inputs()})
        for record in batch:
            await self.take(record)
        self.note_positions()
        released = self.release()
        for pending in released:
            await self.apply(pending)
        if any(r.message.topic == self.tick_topic and r.message.value == SILENCE_TICK
               for r in batch):  # the silence timer's turn
            await self.check_silence()
        for pending in released:
            self.held_partitions[pending.record.message.partition] -= 1
            self.finish(pending.record)
        self.write()
        self.ack_finished()
        self.last_batch = time.monotonic()
        self.states.trim()
        rt.metrics.held.set(len(self.order))
        rt.metrics.processing_seconds.labels("batch").observe(time.perf_counter() - started)

    async def take(self, record: Any) -> None:
        """Intake of one record: dead-letter it, apply an erasure, or hold the event."""
        rt = self.rt
        message = record.message
        partition = message.partition
        stream = (message.topic, partition)
        if message.offset < self.positions.get(stream, -1):
            # read again since this worker got the partition (the consumer delivers what
            # it fetched before seeking back to the committed offset): taken already
            self.keep_back(record)
            return
        self.contexts[partition] = record
        in_context(record)
        self.positions[stream] = message.offset + 1
        if message.topic == self.tick_topic:
            return
        family = self.families.get(message.topic)
        step = family.step if family is not None else ERASURE_STEP
        event = await rt.accept(message, family.record_type if family else "ErasureRequest",
                                step)
        if event is None:
            self.keep_back(record)
            return
        if isinstance(event, ErasureRequest) or family is None:
            await self.erase(event, record)
            self.keep_back(record)
            return
        before = rt.clock.latest(stream)
        arrival = rt.clock.observe(event.occurred_at, stream)
        if arrival.refuted is not None or arrival.confirmed:
            refuted = self.order.settle_outlier(stream, confirmed=arrival.confirmed)
            if refuted is not None:
                await self.drop_outlier(refuted)
        self.watermarks_moved.add(stream)
        record.message.incref()  # acked by :meth:`run` once applied, not with the batch
        self.untrack(record.message)
        self.held_partitions[partition] = self.held_partitions.get(partition, 0) + 1
        held = self.held_offsets.get(stream)
        if held is None:
            held = self.held_offsets[stream] = HeldOffsets()
        held.add(message.offset, before)
        self.order.hold(to_ms(event.occurred_at), Pending(record, event, family), stream,
                        outlier=arrival.outlier, at=time.monotonic(),
                        tie=tie_order(family.record_type, event.event_id))
        if arrival.outlier:
            log.warning("held %s/%s/%s: %s is far ahead of every input; it waits for its "
                        "partition's next record", message.topic, partition, message.offset,
                        event.occurred_at.isoformat(), extra={"step": step})

    def note_positions(self) -> None:
        """Tell the clock which input partitions are read to their end: from the offset
        after the last record read, or, for a partition nothing was read from yet, from its
        committed offset (where this worker started it)."""
        consumer = self.rt.app.consumer
        committed_offsets = getattr(consumer, "_committed_offset", {})
        clock = self.rt.clock
        for tp in self.assigned_inputs():
            stream = (tp.topic, tp.partition)
            end = consumer.highwater(tp)
            position = self.positions.get(stream)
            if position is None:
                position = committed_offsets.get(tp) or 0
            clock.caught_up(stream, None if end is None else position >= end)

    def release(self) -> list[Pending]:
        """The held events that go on now, in event-time order. Sets how far this batch's
        silence checks may run: never past an event still held, and never back (the
        release mark only moves on)."""
        clock = self.rt.clock
        if clock.settled():  # every input read to its end: nothing older is on its way
            self.check_until = clock.now()
            self.mark = max(filter(None, (self.mark, clock.release_until())), default=None)
            return self.order.release(None, outliers=True)
        until = clock.release_until()
        if until is not None and (self.mark is None or until > self.mark):
            self.mark = until
        now = clock.now()
        self.check_until = None if self.mark is None or now is None else min(now, self.mark)
        if self.mark is None:
            return []
        # held for the grace time at least: a record appended a moment before another,
        # on a partition that looked read to its end, still comes first
        released = self.order.release(
            to_ms(self.mark), before=time.monotonic() - self.rt.settings.order_grace_s)
        waiting = self.order.earliest_ms()
        if waiting is not None and self.check_until is not None:
            self.check_until = min(self.check_until, from_ms(waiting - 1))
        return released

    async def apply(self, pending: Pending) -> None:
        rt = self.rt
        record, event, family = pending.record, pending.event, pending.family
        message = record.message
        in_context(record)
        self.applied[family.step].inc()
        try:
            result = step_event(self.states, family, event, rt.scoring, message.partition)
        except (ValueError, TypeError, KeyError) as exc:  # a defect: route it
            await rt.dead_letter(message, Rejection(
                "processing_error", repr(exc), event.event_id, event.customer_id), family.step)
            log.exception("cannot apply event", extra={"step": family.step})
            return
        if not result.changed:
            self.duplicates[family.step].inc()
            return
        self.accepted[family.step].inc()
        await self.done(event.customer_id, result, message.partition,
                        int(message.timestamp * 1000))

    async def done(self, customer: str, result: StepResult, partition: int,
                   input_ms: int | None) -> None:
        rt = self.rt
        if result.due_ms is not None:
            rt.due.schedule(customer, result.due_ms, partition)
        if result.outputs:
            await rt.publish(result.outputs, STEP, input_ms=input_ms)

    async def check_silence(self) -> None:
        """Check the customers whose silence check is due by now (see Clock.now), never
        past the events the batch left held (see :meth:`release`)."""
        rt = self.rt
        now = self.check_until  # set by :meth:`release` for this batch
        if now is None or not rt.recovered():
            return
        behind = rt.clock.behind(datetime.now(UTC)).total_seconds()
        if behind > rt.settings.lapse_pause_behind_s:
            # catching up a backlog: customers' newest events may still be queued
            return
        checked = 0
        for customer, partition in rt.due.pop_due(to_ms(now), MAX_CHECKS):
            context = self.contexts.get(partition)
            if context is None:  # no record of it yet: its tick will come
                rt.due.schedule(customer, to_ms(now), partition)
                continue
            in_context(context)
            result = step_silence(self.states, customer, now, rt.scoring, partition)
            await self.done(customer, result, partition, None)
            checked += 1
        if checked:
            rt.metrics.timer_checked.inc(checked)

    def write(self) -> None:
        """Write each changed customer, and each moved input watermark, once."""
        for partition, customers in self.states.changed().items():
            in_context(self.contexts[partition])
            self.states.write(customers)
        now = time.monotonic()
        later: set[tuple[str, int]] = set()
        for stream in self.watermarks_moved:
            if now - self.kept_at.get(stream, float("-inf")) < KEEP_WATERMARK_EVERY_S:
                later.add(stream)  # written by a batch a little later
                continue
            kept = self.kept_watermark(stream)
            if kept is not None:
                in_context(self.contexts[stream[1]])
                self.rt.keep_watermark(stream, *kept)
                self.kept_at[stream] = now
        self.watermarks_moved = later

    def kept_watermark(self, stream: tuple[str, int]) -> tuple[datetime, int] | None:
        """What to keep of an input partition: the offset up to which its records were
        taken (applied or dead-lettered: those still held do not count), and its latest
        event time before that offset. After a restart, the records read again below
        that offset are not judged again, and the next one is judged exactly as it was
        (see :meth:`streams.runtime.Runtime.restore_watermarks`)."""
        held = self.held_offsets.get(stream)
        if held:
            first = held.first()
            before = held.before_first()
            return None if first is None or before is None else (before, first)
        latest = self.rt.clock.latest(stream)
        return None if latest is None else (latest, self.positions[stream])

    # -- acks in offset order ---------------------------------------------------------------
    def keep_back(self, record: Any) -> None:
        """A record not held (dead-lettered, an erasure) behind one still held in its
        partition is acked only with it (see :meth:`finish`)."""
        message = record.message
        stream = (message.topic, message.partition)
        if self.held_offsets.get(stream):
            message.incref()
            self.untrack(message)
            heapq.heappush(self.finished.setdefault(stream, []),
                           (message.offset, next(self.finish_seq), record))

    def finish(self, record: Any) -> None:
        """``record`` was held and is done with: it is acked once no earlier record of its
        partition is held any more. Faust commits up to the first gap in the acked offsets,
        but misses a gap of one record at the committed offset: acked out of order, a
        crash could lose a record still held."""
        message = record.message
        stream = (message.topic, message.partition)
        if self.held_offsets[stream].remove(message.offset):
            self.watermarks_moved.add(stream)  # the kept watermark may move on
        heapq.heappush(self.finished.setdefault(stream, []),
                       (message.offset, next(self.finish_seq), record))

    def ack_finished(self) -> None:
        for stream, done in self.finished.items():
            held = self.held_offsets.get(stream)
            first_held = held.first() if held else None
            while done and (first_held is None or done[0][0] < first_held):
                heapq.heappop(done)[2].ack()

    def untrack(self, message: Any) -> None:
        """Faust waits for every record it delivered to be acked before it gives its
        partitions up in a rebalance, or stops (``wait_empty``), but a held record is
        acked only once applied: it is taken off that wait, unacked (the partition's next
        owner, maybe this worker again, reads it again from the committed offset)."""
        self.rt.app.consumer._unacked_messages.discard(message)  # type: ignore[attr-defined]  # noqa: SLF001

    # -- erasure, outliers, rebalances ---------------------------------------------------
    async def erase(self, event: ErasureRequest, record: Any) -> None:
        """Forget a customer at once: its held events, its state and its outputs."""
        rt = self.rt
        customer = event.customer_id
        partition = record.message.partition
        for pending in self.order.drop(lambda p: p.event.customer_id == customer):
            self.held_partitions[pending.record.message.partition] -= 1
            self.finish(pending.record)
        self.ack_finished()
        in_context(record)
        self.states.erase(customer, partition)
        self.states.write([customer])
        await rt.erase_outputs(customer)
        rt.metrics.events_accepted.labels(ERASURE_STEP).inc()
        rt.metrics.applied.labels(ERASURE_STEP).inc()
        log.info("erasure requested", extra={"step": ERASURE_STEP,
                                             "customer": rt.customer_ref(customer)})

    async def drop_outlier(self, pending: Pending) -> None:
        message = pending.record.message
        self.held_partitions[message.partition] -= 1
        await self.rt.dead_letter(message, Rejection(
            CLOCK_OUTLIER, f"{pending.event.occurred_at.isoformat()} is far ahead of every "
            "input, and the next record of its partition went on from before it",
            pending.event.event_id, pending.event.customer_id), pending.family.step)
        self.finish(pending.record)
        self.ack_finished()

    def reset(self) -> None:
        """After a rebalance: the held events are read again by whoever owns their
        partition now (they were never acked), and the states are read from the tables."""
        self.order = EventOrder()
        self.mark = self.check_until = None
        self.held_partitions.clear()
        self.held_offsets.clear()
        self.finished.clear()
        self.states.clear()
        self.contexts.clear()
        self.positions.clear()
        self.watermarks_moved.clear()
        self.kept_at.clear()
        # the clock forgets even the partitions this worker keeps: their held records are
        # read again from the committed offset, and must not be judged too late against
        # what it read before (their kept watermarks are restored, as after a restart)
        self.rt.clock.assigned(())
        self.rt.clock.assigned((tp.topic, tp.partition) for tp in self.assigned_inputs())
        self.rt.watermarks_stale = True  # restored again (a timer may have done it before)
        self.stale = False

    def assigned_inputs(self) -> list[Any]:
        """The input topic partitions this worker reads now."""
        return [tp for tp in self.rt.app.consumer.assignment()
                if tp.topic in self.families or tp.topic == self.erasure_topic]

    def partitions_waiting(self) -> list[int]:
        """Partitions with events held for order (a tick lets them go once due)."""
        return [p for p, n in self.held_partitions.items() if n > 0]

