"""What every agent of one worker shares: settings, codec, scoring config, clock, metrics,
topic handles, and the routing of outputs and dead letters.

One ``Runtime`` is built per process by ``streams.worker`` and passed to each agent
module's ``register`` function; nothing here is module-global.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import faust
from aiokafka.partitioner import murmur2

from streams.broker_link import BrokerLink
from streams.codec import Codec, RegistryUnavailable, build_codec
from streams.domain.buckets import from_ms, to_ms
from streams.domain.clock import Clock, make_clock
from streams.domain.due import DueIndex
from streams.domain.events import Rejection
from streams.domain.scoring import ScoringConfig, load_config
from streams.families import FamilyEvent
from streams.intake import dead_letter_record, intake
from streams.logs import customer_ref
from streams.metrics import Metrics
from streams.pipeline import WATERMARK_TABLE
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_RECOVERED,
    TOPIC_TICKS,
    Settings,
)

if TYPE_CHECKING:
    from streams.ingest import Ingest

log = logging.getLogger("churnwatch")
#: a worker reports not ready for this long after an agent crashed
CRASH_WINDOW_S = 60.0

#: the value of a tick that asks for the silence checks due (others only give a turn)
SILENCE_TICK = b"silence"
#: first wait, and longest, between attempts to reach an unavailable Schema Registry
REGISTRY_RETRY_S = 0.5
REGISTRY_RETRY_MAX_S = 30.0

#: Output record type -> logical topic.
OUTPUT_TOPIC_OF = {
    "HealthScoreChanged": TOPIC_HEALTH,
    "CustomerAtRisk": TOPIC_AT_RISK,
    "CustomerRecovered": TOPIC_RECOVERED,
    "CustomerChampion": TOPIC_CHAMPIONS,
}


class Message(Protocol):
    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Any


class Runtime:
    """Per-process shared services for the agents."""

    def __init__(self, app: faust.App, settings: Settings, *, codec: Codec | None = None,
                 scoring: ScoringConfig | None = None, clock: Clock | None = None,
                 metrics: Metrics | None = None) -> None:
        self.app = app
        self.settings = settings
        self.codec = codec if codec is not None else build_codec(settings)
        self.scoring = scoring if scoring is not None else load_config(settings.scoring_config)
        lateness = timedelta(seconds=settings.allowed_lateness_s)
        self.clock = clock if clock is not None else make_clock(
            settings.clock, lateness, grace_s=settings.order_grace_s,
            max_jump=timedelta(seconds=settings.max_jump_s))
        self.max_future = timedelta(seconds=settings.max_future_s)
        self.metrics = metrics if metrics is not None else Metrics()
        self._topics: dict[str, faust.TopicT] = {}
        self.tables: dict[str, Any] = {}
        self.ready = False
        self.broker = BrokerLink()  # the link to Kafka, told by the client's failures
        self._crashed_at: dict[str, float] = {}  # agent name -> monotonic time of crash
        self.metrics.lag.source = self.consumer_lag
        self.due = DueIndex()  # silence checks of this worker's customers
        self.due_stale = True  # rebuild the index from the health table after a rebalance
        self.watermarks = self.table(WATERMARK_TABLE, "latest event time per input partition")
        # (event time ms, offset) last written per input partition
        self._kept: dict[tuple[str, int], tuple[int, int]] = {}
        # per input partition, the offset below which records were taken before a restart
        self.taken_before: dict[tuple[str, int], int] = {}
        self.watermarks_stale = True  # read them again after a rebalance
        self.ingest: Ingest | None = None  # the ingest agent's state, once registered

    def watch(self, agent: Any) -> Any:
        """Have an agent's crashes counted and reported by /ready (Faust's own error
        handling, which tells the consumer, still runs after ours)."""
        original = agent._on_error

        async def on_error(crashed: Any, exc: BaseException) -> None:
            await self.on_agent_error(crashed, exc)
            if original is not None:
                await original(crashed, exc)

        agent._on_error = on_error
        return agent

    async def on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """Called by Faust when an agent raises: log, count, and report not ready."""
        name = str(getattr(agent, "name", agent))
        self._crashed_at[name] = time.monotonic()
        self.metrics.agent_crashes.labels(name).inc()
        log.error("agent %s crashed and is restarted: %r", name, exc, exc_info=exc,
                  extra={"step": name})

    def not_ready_because(self) -> str | None:
        """Why the worker is not ready, or None when it is."""
        self.broker.check()
        down = self.broker.unreachable_for()
        if down is not None:
            return f"Kafka unreachable for {down:.0f}s"
        if not self.ready:
            return "partitions not assigned"
        if not self.recovered():
            return "tables recovering"
        now = time.monotonic()
        crashed = sorted(n for n, t in self._crashed_at.items() if now - t < CRASH_WINDOW_S)
        if crashed:
            return f"agent crashed within {CRASH_WINDOW_S:g}s: {', '.join(crashed)}"
        return None

    def recovered(self) -> bool:
        """True once this worker's tables are recovered from their changelogs."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        return not self.app.in_recovery and bool(recovery.completed.is_set())

    # -- topics and tables ---------------------------------------------------------------
    def topic(self, logical: str) -> faust.TopicT:
        """The Faust topic for a logical name (raw bytes keys and values)."""
        if logical not in self._topics:
            self._topics[logical] = self.app.topic(
                self.settings.topic(logical), key_type=bytes, value_type=bytes,
                key_serializer="raw", value_serializer="raw",
                partitions=self.settings.partitions)
        return self._topics[logical]

    def table(self, name: str, help_text: str) -> Any:
        """A per-customer state table (bytes keys and values), shared by name."""
        if name not in self.tables:
            self.tables[name] = self.app.Table(
                name, default=None, key_type=bytes, value_type=bytes,  # raw serializers
                partitions=self.settings.partitions, help=help_text)
        return self.tables[name]

    # -- intake --------------------------------------------------------------------------
    async def accept(self, message: Message, expected: str, step: str) -> FamilyEvent | None:
        """Decode and validate one input record; route it away and return None if bad.
        A record taken before a restart (below its partition's kept offset) is never too
        late: it was judged then.

        A record whose Kafka key is not its customer id is re-sent with the right key (so
        that all of a customer's state stays on one partition) and not processed here.
        """
        self.metrics.events_consumed.labels(message.topic, step).inc()
        await self.schema_ready(message.value)
        stream = (message.topic, message.partition)
        result = intake(message.value, expected, codec=self.codec, clock=self.clock,
                        max_future=self.max_future, wall_now=datetime.now(UTC),
                        stream=stream,
                        read_before=message.offset < self.taken_before.get(stream, 0))
        if isinstance(result, Rejection):
            await self.dead_letter(message, result, step)
            return None
        age = datetime.now(UTC) - result.occurred_at
        self.metrics.event_age.labels(step).observe(max(0.0, age.total_seconds()))
        key = result.customer_id.encode()
        if message.key != key or message.partition != self.partition_of(key):
            # keyed otherwise, or partitioned by another hash than murmur2: re-send it so
            # that it lands on the partition holding the rest of the customer's state
            self.metrics.rekeyed.labels(step).inc()
            log.info("re-sent record %s/%s/%s keyed by its customer id", message.topic,
                     message.partition, message.offset, extra={"step": step})
            await self.app.producer.send(message.topic, key, message.value, None, None, None)
            return None
        return result

    async def schema_ready(self, raw: bytes | None) -> None:
        """With a Schema Registry: fetch the schema ``raw`` is framed with when it is not
        known yet, off the event loop, retrying with backoff while the registry cannot
        answer (its outage delays records; it never dead-letters them). An id the
        registry does not know is remembered, and the record is dead-lettered by intake."""
        missing = getattr(self.codec, "missing_schema", None)
        if missing is None or (schema_id := missing(raw)) is None:
            return
        loop = asyncio.get_running_loop()
        delay = REGISTRY_RETRY_S
        while True:
            try:
                await loop.run_in_executor(None, self.codec.fetch_schema, schema_id)  # type: ignore[attr-defined]
            except RegistryUnavailable as exc:
                if delay == REGISTRY_RETRY_S:
                    log.error("Schema Registry unavailable, retrying with backoff: %s", exc,
                              extra={"step": "intake"})
                self.metrics.registry_retries.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, REGISTRY_RETRY_MAX_S)
                continue
            if delay != REGISTRY_RETRY_S:
                log.warning("Schema Registry answers again", extra={"step": "intake"})
            return

    def keep_watermark(self, stream: tuple[str, int], latest: datetime, offset: int) -> None:
        """Write an input partition's kept event time, and the offset up to which its
        records were taken, to the watermark table when they moved (in the stream context
        of that partition: the table's changelog partition)."""
        kept = (to_ms(latest), offset)
        if kept > self._kept.get(stream, (-1, -1)):
            self.watermarks[f"{stream[0]}/{stream[1]}".encode()] = (
                f"{kept[0]} {offset}".encode())
            self._kept[stream] = kept

    def restore_watermarks(self, held: set[tuple[str, int]] | None = None) -> int:
        """Give the clock the latest event times kept for the input partitions this worker
        holds (after a restart or a rebalance, once the tables are recovered): its lateness
        bound and its silence checks go on from where they were, before any new input."""
        if held is None:
            held = {(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}
        count = 0
        for key, raw in self.watermarks.items():
            topic, _, partition = key.decode().rpartition("/")
            stream = (topic, int(partition))
            if stream in held:
                ms_text, _, offset_text = raw.decode().partition(" ")
                kept = (int(ms_text), int(offset_text or 0))
                self.clock.restore(from_ms(kept[0]), stream)
                self.taken_before[stream] = kept[1]
                self._kept[stream] = max(self._kept.get(stream, kept), kept)
                count += 1
        self.watermarks_stale = False
        return count

    def partition_of(self, key: bytes) -> int:
        """The partition a key belongs on: murmur2, as Java clients and Faust do."""
        return int(murmur2(key) & 0x7FFFFFFF) % self.settings.partitions

    async def dead_letter(self, message: Message, rejection: Rejection, step: str) -> None:
        """Send a rejected record to the dead-letter topic: a bounded copy (see
        :func:`~streams.intake.dead_letter_record`), so it fits whatever the input's size."""
        now = datetime.now(UTC)
        record = dead_letter_record(
            rejection, topic=message.topic, partition=message.partition,
            offset=message.offset, key=message.key, payload=message.value, step=step,
            failed_at=now)
        headers = [("churnwatch.reason", rejection.reason.encode()),
                   ("churnwatch.step", step.encode()),
                   ("churnwatch.source", f"{message.topic}/{message.partition}/"
                                         f"{message.offset}".encode()),
                   ("churnwatch.payload_size", str(record["payload_size"]).encode()),
                   ("churnwatch.payload_sha256", record["payload_sha256"].encode())]
        await self.topic(TOPIC_DEAD_LETTER).send(
            key=record["key"], value=self.codec.encode("DeadLetter", record), headers=headers)
        self.metrics.dead_letters.labels(step, rejection.reason).inc()
        log.warning("dead-lettered %s/%s/%s: %s (%s)", message.topic, message.partition,
                    message.offset, rejection.reason, record["error"],
                    extra={"step": step, "reason": rejection.reason,
                           "customer": self.customer_ref(record["customer_id"])})

    def customer_ref(self, customer_id: str | None) -> str | None:
        return customer_ref(customer_id, hashed=self.settings.hash_customer_ids_in_logs)

    # -- outputs ---------------------------------------------------------------------------
    async def send_tick(self, partition: int, *, silence: bool = False) -> None:
        """Give the ingest agent a turn on ``partition`` (see streams.ingest); with
        ``silence``, one in which it runs the silence checks that are due."""
        await self.topic(TOPIC_TICKS).send(key=None, value=SILENCE_TICK if silence else b"",
                                           partition=partition)

    async def publish(self, outputs: list[tuple[str, dict[str, Any]]], step: str,
                      input_ms: int | None = None) -> None:
        """Send output records, each keyed by its customer id; ``input_ms`` is the append
        time of the input record that caused them (None for timer ticks)."""
        for type_name, record in outputs:
            await self.topic(OUTPUT_TOPIC_OF[type_name]).send(
                key=record["customer_id"].encode(), value=self.codec.encode(type_name, record),
                headers=[("churnwatch.type", type_name.encode()),
                         ("churnwatch.event_id", record["event_id"].encode())])
            self.metrics.outputs.labels(type_name, record.get("band") or "").inc()
            if input_ms is not None:
                self.metrics.end_to_end.labels(type_name).observe(
                    max(0.0, time.time() - input_ms / 1000))
            if type_name == "HealthScoreChanged":
                self.metrics.scores.observe(record["score"])
            elif type_name == "CustomerAtRisk":
                self.metrics.at_risk.labels(record["churn_reason"], record["route_to_team"]).inc()
            if type_name != "HealthScoreChanged" or log.isEnabledFor(logging.DEBUG):
                # alerts at INFO; score changes, most of the outputs, only at DEBUG
                log.log(logging.DEBUG if type_name == "HealthScoreChanged" else logging.INFO,
                        "published %s %s", type_name, record["event_id"],
                        extra={"step": step,
                               "customer": self.customer_ref(record["customer_id"])})

    async def erase_outputs(self, customer_id: str) -> None:
        """Forget a customer's silence check and tombstone its key on every output topic."""
        self.due.forget(customer_id)
        key = customer_id.encode()
        for logical in OUTPUT_TOPIC_OF.values():
            await self.topic(logical).send(key=key, value=None)
        log.info("erased customer", extra={"step": "scorer",
                                           "customer": self.customer_ref(customer_id)})

    def consumer_lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, end offset - committed offset) for each assigned partition
        whose end offset is known; read from the consumer's state, no request is sent."""
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return []
        lag = []
        for tp in sorted(consumer.assignment()):
            end = consumer.highwater(tp)
            if end is None:
                continue
            committed = consumer._committed_offset.get(tp)
            lag.append((tp.topic, tp.partition, max(0, int(end) - int(committed or 0))))
        return lag

    def timed(self, step: str) -> Callable[[], None]:
        """Start timing one record's processing; call the result when done."""
        start = time.perf_counter()
        histogram = self.metrics.processing_seconds.labels(step)
        return lambda: histogram.observe(time.perf_counter() - start)
