"""Fault scenarios: a seeded simulated population fed to real workers on a real broker
while something goes wrong, compared with the in-process backtest of the same input file.

A scenario returns a :class:`Row`: the output event ids expected (``CustomerAtRisk``,
``CustomerRecovered``, ``CustomerChampion`` of the backtest), those read back from the
output topics (lost, extra, and re-sent: an id read more than once), each customer's final
band (the band of its last ``HealthScoreChanged``) against the backtest's, the dead
letters by reason and those that should not be there, and how long each restarted worker
took to be ready. ``tests/faults`` asserts on the rows; ``bench/faults.py`` prints them.

A worker on the event clock that has read all its input applies everything it holds and
runs the silence checks up to its newest event time, as the backtest does at its end. A
scenario waits for that with deadlines: until the worker group has committed every input
record (held events are acked only once applied) and the outputs match, or until nothing
more comes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from streams.backtest import final_states, read_events, run_backtest
from streams.codec import Codec, build_codec
from streams.domain.clock import make_clock
from streams.domain.events import Rejection
from streams.families import REGISTRY
from streams.intake import intake
from streams.kafka_io import INPUT_TOPIC_OF, OutputReader, make_producer
from streams.processes import (
    WorkerChild,
    free_port,
    owned_env,
    start_broker,
    stop_broker,
)
from streams.settings import (
    INPUT_TOPICS,
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_RECOVERED,
    Settings,
)
from streams.simulator import (
    Item,
    Malformed,
    SimulationConfig,
    produce_items,
    simulate,
    write_jsonl,
)
from streams.topics import ensure_topics

#: Output types whose event ids are compared.
ALERT_TYPES = ("CustomerAtRisk", "CustomerRecovered", "CustomerChampion")
READ_TOPICS = [TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS, TOPIC_HEALTH, TOPIC_DEAD_LETTER]
MS_PER_DAY = 86_400_000
#: The feed is produced in slices of a quarter of a simulated day ...
SLICE_MS = MS_PER_DAY // 4
#: ... at about three simulated days per second.
DAYS_PER_S = 3.0
#: Topics that take records of more than 1 MB (the poison's largest records), and the
#: producer's limit for them.
LARGE_MESSAGES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Population:
    """What a scenario simulates: small enough for a minute, with every kind of noise but
    records later than the allowed lateness (a worker drops those as too late, while the
    backtest of a whole file in event-time order keeps them)."""

    customers: int = 250
    days: float = 80.0
    seed: int = 11

    def config(self) -> SimulationConfig:
        return SimulationConfig(customers=self.customers, days=self.days, seed=self.seed,
                                very_late_share=0.0)


#: The feed: items with their arrival time (ms since the epoch), in arrival order.
Feed = list[tuple[int, Item]]


def simulated_feed(population: Population) -> Feed:
    sim = simulate(population.config())
    return list(zip(sim.arrived_at, sim.items, strict=True))


@dataclass(slots=True)
class Reference:
    """The backtest of the input file: what every worker of the scenario should give."""

    ids: set[str]
    bands: dict[str, str | None]
    #: event id -> reason of every record the backtest rejects
    rejected: dict[str, str]
    #: reason -> count of the dead letters expected for records without a usable event id
    #: (malformed items and poison), and their keys when known
    unnamed: Counter[str]
    events_in: int
    #: customer -> its outputs (occurred_at, type, event id, band, score)
    history: dict[str, list[Published]] = field(default_factory=dict)


def reference_of(items: Sequence[Item], settings: Settings, path: Path,
                 extra_letters: Counter[str] | None = None,
                 extra_rejected: dict[str, str] | None = None) -> Reference:
    """Write ``items`` as JSON Lines, run the backtest on the file with ``settings``."""
    write_jsonl(items, path)
    records, _ = read_events(path)
    result = run_backtest(records, settings, keep_outputs=True)
    ids = {r["event_id"] for name in ALERT_TYPES for r in result.of_type(name)}
    assert result.outputs is not None
    finals = final_states(result.outputs, result.customers)
    codec = build_codec(settings)
    unnamed: Counter[str] = Counter()
    for item in items:
        if isinstance(item, Malformed):
            rejection = expected_rejection(item.type_name, item.payload, codec, settings)
            assert rejection is not None, f"the simulator's malformed item is accepted: {item}"
            unnamed[rejection.reason] += 1
    unnamed.update(extra_letters or {})
    rejected = {r.event_id: r.reason for r in result.rejections if r.event_id is not None}
    rejected.update(extra_rejected or {})
    history: dict[str, list[Published]] = {}
    for output in result.outputs:
        history.setdefault(output[1]["customer_id"], []).append(published(*output))
    return Reference(ids=ids, bands={c: f.band for c, f in finals.items()},
                     rejected=rejected, unnamed=unnamed, events_in=len(items),
                     history=history)


def expected_rejection(type_name: str, payload: bytes, codec: Codec,
                       settings: Settings) -> Rejection | None:
    """What a worker's intake makes of ``payload`` on the topic of ``type_name`` (a fresh
    clock: no lateness bound yet)."""
    clock = make_clock("event", timedelta(seconds=settings.allowed_lateness_s))
    outcome = intake(payload, type_name, codec=codec, clock=clock,
                     max_future=timedelta(seconds=settings.max_future_s),
                     wall_now=datetime.now(UTC))
    return outcome if isinstance(outcome, Rejection) else None


#: An output as compared: occurred_at, type, event id, band and score (rounded).
Published = tuple[datetime, str, str, str, float | None]


def published(type_name: str, record: dict[str, Any]) -> Published:
    score = record.get("score")
    return (record["occurred_at"], type_name, record["event_id"], record.get("band") or "",
            None if score is None else round(float(score), 3))


# -- what the workers published --------------------------------------------------------------
@dataclass(slots=True)
class Observed:
    """Everything read back from the output and dead-letter topics so far."""

    ids: Counter[str] = field(default_factory=Counter)
    last_health: dict[str, tuple[datetime, int, str]] = field(default_factory=dict)
    letters: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[Published]] = field(default_factory=dict)
    seq: int = 0

    def add(self, outputs: Sequence[tuple[str, str, dict[str, Any] | None]]) -> int:
        for _, type_name, record in outputs:
            if record is None:
                continue
            self.seq += 1
            if type_name in (*ALERT_TYPES, "HealthScoreChanged"):
                self.history.setdefault(record["customer_id"], []).append(
                    published(type_name, record))
            if type_name in ALERT_TYPES:
                self.ids[record["event_id"]] += 1
            elif type_name == "HealthScoreChanged":
                customer = record["customer_id"]
                last = self.last_health.get(customer)
                at = record["occurred_at"]
                if last is None or at >= last[0]:
                    self.last_health[customer] = (at, self.seq, record["band"])
            elif type_name == "DeadLetter":
                where = (record["source_topic"], record["source_partition"],
                         record["source_offset"])
                self.letters[where] = record
        return len(outputs)

    def bands(self) -> dict[str, str | None]:
        return {c: band for c, (_, _, band) in self.last_health.items()}


@dataclass(slots=True)
class Row:
    """One scenario's figures."""

    scenario: str
    events_in: int = 0
    expected: int = 0
    got: int = 0
    lost: int = 0
    extra: int = 0
    resent: int = 0
    band_mismatches: int = 0
    #: dead letters that should not be there, or expected ones missing
    wrong_letters: int = 0
    letters: dict[str, int] = field(default_factory=dict)
    ready_after_restart_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: outputs of a scenario's chosen customer (every score) that differ from the backtest
    customer_outputs_differ: int = 0
    #: what went wrong, for the test's message
    detail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.extra or self.band_mismatches or self.wrong_letters
                    or self.customer_outputs_differ)


def compare(scenario: str, ref: Reference, seen: Observed) -> Row:
    got = set(seen.ids)
    lost, extra = sorted(ref.ids - got), sorted(got - ref.ids)
    bands = seen.bands()
    mismatched = sorted(c for c in set(ref.bands) | set(bands)
                        if ref.bands.get(c) != bands.get(c))
    # dead letters: those with an event id against the backtest's rejections, the others
    # (undecodable) by reason
    named: dict[str, str] = {}
    unnamed: Counter[str] = Counter()
    for letter in seen.letters.values():
        event_id = letter["event_id"]
        if event_id:
            named[event_id] = letter["reason"]
        else:
            unnamed[letter["reason"]] += 1
    wrong_named = sorted(e for e in set(named) | set(ref.rejected)
                         if named.get(e) != ref.rejected.get(e))
    wrong_unnamed = (ref.unnamed - unnamed) + (unnamed - ref.unnamed)
    row = Row(scenario, events_in=ref.events_in, expected=len(ref.ids), got=len(got),
              lost=len(lost), extra=len(extra),
              resent=sum(n - 1 for n in seen.ids.values() if n > 1),
              band_mismatches=len(mismatched),
              wrong_letters=len(wrong_named) + sum(wrong_unnamed.values()),
              letters=dict(sorted(Counter(r["reason"] for r in seen.letters.values())
                                  .items())))
    if lost:
        row.detail.append(f"lost {lost[:10]}")
    if extra:
        row.detail.append(f"extra {extra[:10]}")
    if mismatched:
        row.detail.append("bands (expected, got) " + ", ".join(
            f"{c}: {ref.bands.get(c)}/{bands.get(c)}" for c in mismatched[:10]))
    odd = (lost or extra or mismatched)
    if odd:
        row.detail.append(diff_of(odd[0].split(":")[0], ref, seen))
    if wrong_named:
        row.detail.append("dead letters (expected, got) " + ", ".join(
            f"{e}: {ref.rejected.get(e)}/{named.get(e)}" for e in wrong_named[:10]))
    if wrong_unnamed:
        row.detail.append(f"undecodable dead letters expected {dict(ref.unnamed)}, "
                          f"got {dict(unnamed)}")
    return row


def diff_of(customer: str, ref: Reference, seen: Observed) -> str:
    """One customer's outputs, backtest and workers side by side, from a little before
    the first difference."""
    import difflib

    def lines(history: list[Published]) -> list[str]:
        return [f"{at.isoformat()} {name} {event_id} {band} {score}"
                for at, name, event_id, band, score in sorted(set(history))]

    diff = list(difflib.unified_diff(lines(ref.history.get(customer, [])),
                                     lines(seen.history.get(customer, [])),
                                     "backtest", "workers", n=3, lineterm=""))
    return f"{customer}'s outputs:\n" + "\n".join(diff[:60])


# -- workers --------------------------------------------------------------------------------
class Worker(WorkerChild):
    """A worker child that remembers when it was started."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.started = time.monotonic()
        self.ready_after: float | None = None
        self.name = ""
        super().__init__(settings, log_path)

    def poll_ready(self) -> bool:
        """Whether it is ready (noting how long that took); AssertionError if it died."""
        if self.ready_after is not None:
            return True
        if not self.alive():
            raise AssertionError(f"worker exited with {self.proc.returncode}\n"
                                 f"{self.log_tail()}")
        if self.ready():
            self.ready_after = time.monotonic() - self.started
            return True
        return False

    def await_ready(self, timeout: float = 120) -> float:
        wait_for(self.poll_ready, timeout, "worker /ready", self.log_tail)
        assert self.ready_after is not None
        return self.ready_after

    def kill9(self) -> None:
        self.proc.kill()  # no goodbye to the group, nothing flushed
        self.stop()


def wait_for(check: Callable[[], Any], timeout: float, what: str,
             detail: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n"
                                 f"{detail() if detail else ''}")
        time.sleep(0.2)


class Run:
    """One scenario's topics, workers, producer and output reader."""

    def __init__(self, name: str, bootstrap: str, workdir: Path, **overrides: Any) -> None:
        self.name = name
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:6]
        values: dict[str, Any] = {
            "kafka_bootstrap": bootstrap,
            "topic_prefix": f"f-{name}-{tag}-",
            "app_id": f"churnwatch-f-{name}-{tag}",
            "partitions": 3,
            "store": "rocksdb://",
            "data_dir": workdir / "state",
            "web_port": free_port(),
            "clock": "event",
            "lapse_check_interval_s": 1.0,
            "gauges_interval_s": 5.0,
            # the sliced feed delivers a record at most 48 h (the simulator's late ones)
            # plus a slice after it, one held back a day more: all within the lateness
            "allowed_lateness_s": 4 * 86_400,
        }
        values.update(overrides)
        self.settings = Settings(_env_file=None, **values)
        ensure_topics(self.settings)
        self.codec = build_codec(self.settings)
        self.producer: Producer = make_producer(
            self.settings, **{"message.max.bytes": LARGE_MESSAGES})
        self.workers: list[Worker] = []
        self.ports: dict[str, int] = {}
        self.ready_after_restart: list[float] = []
        self.seen = Observed()
        self.reader = OutputReader(self.settings, self.codec, READ_TOPICS)
        self.started = time.monotonic()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()  # and its log closed, whether it is alive or not
        self.reader.close()
        self.producer.flush(10)

    def allow_large_records(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        resources = [ConfigResource(
            ConfigResource.Type.TOPIC, self.settings.topic(INPUT_TOPIC_OF[t]),
            incremental_configs=[ConfigEntry("max.message.bytes", str(LARGE_MESSAGES),
                                             incremental_operation=AlterConfigOpType.SET)])
            for t in INPUT_TOPIC_OF]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout=30)

    def start_worker(self, name: str = "w0", *, static: bool = True,
                     wait: bool = True) -> Worker:
        """A worker with its own web port and state directory; the same ``name`` means
        the same state directory, web port and, if ``static``, group member (its
        CHURN_WORKER_ID: static membership)."""
        # a worker started again keeps its address: the group's assignment names it
        port = self.ports.setdefault(name, free_port())
        update: dict[str, Any] = {"web_port": port, "worker_id": name if static else None,
                                  "data_dir": self.workdir / f"state-{name}"}
        settings = self.settings.model_copy(update=update)
        index = len(self.workers)
        worker = Worker(settings, self.workdir / f"worker-{index}-{name}.log")
        worker.name = name
        self.workers.append(worker)
        if wait:
            worker.await_ready()
        return worker

    def restart(self, worker: Worker, *, wait: bool = False, empty: bool = False) -> Worker:
        """kill -9 ``worker`` and start it again with the same id, on the same state
        directory, or with ``empty`` on an empty one."""
        worker.kill9()
        if empty:
            shutil.rmtree(worker.settings.data_dir, ignore_errors=True)
        return self.start_worker(worker.name, wait=wait)

    def note_restarts(self, restarted: Sequence[Worker]) -> None:
        self.ready_after_restart.extend(
            round(w.ready_after, 1) for w in restarted if w.ready_after is not None)

    def live_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log_tail(30)}" for w in self.workers)

    # -- producing -------------------------------------------------------------------------
    def produce(self, items: Sequence[Item]) -> int:
        return produce_items(self.settings, self.codec, items, producer=self.producer)

    def feed(self, slices: Sequence[Sequence[Item]], *, days_per_s: float | None = DAYS_PER_S,
             at: dict[int, Callable[[], None]] | None = None) -> int:
        """Produce ``slices`` one after another, paced at ``days_per_s`` (None: as fast as
        possible), calling ``at[i]`` after slice ``i``; return the records produced."""
        per_slice = 0.0 if days_per_s is None else SLICE_MS / MS_PER_DAY / days_per_s
        started = time.monotonic()
        count = 0
        for index, items in enumerate(slices):
            if per_slice:
                wait = started + index * per_slice - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # pacing the producer, not synchronisation
            if items:
                count += self.produce(items)
            for worker in self.live_workers():
                worker.poll_ready()
            hook = (at or {}).get(index)
            if hook is not None:
                hook()
                started = time.monotonic() - (index + 1) * per_slice  # the pace goes on
        return count

    # -- reading the outcome ---------------------------------------------------------------
    def read(self, seconds: float) -> int:
        return self.seen.add(self.reader.poll(seconds))

    def committed_all(self) -> bool:
        """Whether the group has committed every input record (held events are acked only
        once applied, so nothing is waiting any more)."""
        settings = self.settings
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                             "group.id": f"churnwatch-lag-{uuid.uuid4().hex[:8]}"})
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        try:
            partitions = [TopicPartition(settings.topic(t), p) for t in INPUT_TOPICS
                          for p in range(settings.partitions)]
            request = ConsumerGroupTopicPartitions(settings.app_id, partitions)
            (future,) = admin.list_consumer_group_offsets([request]).values()
            committed = {(tp.topic, tp.partition): tp.offset
                         for tp in future.result(timeout=10).topic_partitions}
            for tp in partitions:
                _, end = consumer.get_watermark_offsets(tp, timeout=10)
                if end > max(committed.get((tp.topic, tp.partition), 0), 0):
                    return False
            return True
        except Exception:  # noqa: BLE001 - the broker may be coming back: not yet
            return False
        finally:
            consumer.close()

    def outcome(self, ref: Reference, *, timeout: float = 150, quiet_s: float = 15,
                after_match_s: float = 4) -> Row:
        """Read the outputs until the workers have committed all their input and the
        outputs match the reference (then ``after_match_s`` more, for anything extra), or
        until all input is committed and nothing new came for ``quiet_s``, or ``timeout``."""
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        checked = 0.0
        done = False
        while time.monotonic() < deadline:
            if self.read(0.5):
                last_new = time.monotonic()
            for worker in self.live_workers():
                worker.poll_ready()
            if time.monotonic() - checked < 2:
                continue
            checked = time.monotonic()
            if not self.committed_all():
                continue
            if compare(self.name, ref, self.seen).ok:
                done = True
                break
            if time.monotonic() - last_new > quiet_s:
                break
        if done:
            end = time.monotonic() + after_match_s
            while time.monotonic() < end:
                self.read(0.5)
        row = compare(self.name, ref, self.seen)
        if not done:
            row.detail.append("the outputs did not match before the deadline; "
                              f"all input committed: {self.committed_all()}")
        for worker in self.live_workers():
            if not worker.poll_ready():
                row.detail.append(f"{worker.log_path.name} is not ready")
        dead = [w for w in self.workers if not w.alive() and w.proc.returncode not in
                (0, -9, 137)]
        if dead:
            row.detail.append("worker(s) died: " + ", ".join(
                f"{w.log_path.name} ({w.proc.returncode})" for w in dead))
        row.ready_after_restart_s = list(self.ready_after_restart)
        row.seconds = round(time.monotonic() - self.started, 1)
        if not row.ok or dead:
            row.detail.append(self.logs())
        return row


@contextmanager
def scenario_run(name: str, bootstrap: str, workdir: Path, **overrides: Any) -> Iterator[Run]:
    directory = workdir / name
    runs = 1
    while directory.exists():  # the same scenario again (bench/faults.py NAME NAME)
        runs += 1
        directory = workdir / f"{name}-{runs}"
    run = Run(name, bootstrap, directory, **overrides)
    try:
        yield run
    finally:
        run.close()


def slices(feed: Feed, *, behind: dict[str, int] | None = None) -> list[list[Item]]:
    """The feed cut into slices of :data:`SLICE_MS` by arrival time; the items of the types
    in ``behind`` come that many milliseconds later than they arrived (a topic held back)."""
    if not feed:
        return []
    first = feed[0][0] // SLICE_MS
    out: list[list[Item]] = []
    for arrived, item in feed:
        type_name = item.type_name if isinstance(item, Malformed) else item[0]
        index = (arrived + (behind or {}).get(type_name, 0)) // SLICE_MS - first
        while len(out) <= index:
            out.append([])
        out[index].append(item)
    return out


def items_of(feed: Feed) -> list[Item]:
    return [item for _, item in feed]


# -- scenarios -------------------------------------------------------------------------------
def pace(bootstrap: str, workdir: Path, how: str, population: Population = Population()) -> Row:
    """The same input unpaced, paced at three or at one simulated day a second, paced with
    the engagement topic a simulated day behind the others, or paced while every core is
    kept busy by other processes."""
    feed = simulated_feed(population)
    with scenario_run(f"pace-{how}", bootstrap, workdir) as run:
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl")
        run.start_worker()
        if how == "unpaced":
            run.produce(items_of(feed))
        elif how == "paced":
            run.feed(slices(feed))
        elif how == "paced-1-day-per-s":
            run.feed(slices(feed), days_per_s=1.0)
        elif how == "cpu-load":
            with cpu_load():
                run.feed(slices(feed))
                return run.outcome(ref)
        else:
            run.feed(slices(feed, behind={"Engagement": MS_PER_DAY}))
        return run.outcome(ref)


@contextmanager
def cpu_load(processes: int | None = None) -> Iterator[None]:
    """Other work on the machine: one busy process per core (lowest priority not asked
    for), stopped on leaving."""
    count = processes or os.cpu_count() or 2
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for child in spin:
            child.kill()
            child.wait()


def kill9_midstream(bootstrap: str, workdir: Path, population: Population = Population(),
                    kills: int = 3) -> Row:
    """kill -9 the worker at seeded points while the producer goes on; each time it is
    started again at once with the same worker id, on the same state directory but the
    last time, when it starts on an empty one (its state comes back from the
    changelogs)."""
    feed = simulated_feed(population)
    parts = slices(feed)
    rng = random.Random(f"kill9:{population.seed}")
    # one seeded point in each of ``kills`` stretches of the middle of the feed
    span = len(parts) * 2 // 3 // kills
    points = [len(parts) // 6 + k * span + rng.randrange(span) for k in range(kills)]
    with scenario_run("kill9", bootstrap, workdir) as run:
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl")
        workers = [run.start_worker()]

        def kill(empty: bool) -> Callable[[], None]:
            def hook() -> None:
                workers[-1].await_ready()  # killed once back at work, not while starting
                workers.append(run.restart(workers[-1], empty=empty))
            return hook

        run.feed(parts, at={at: kill(n == kills - 1) for n, at in enumerate(points)})
        workers[-1].await_ready()
        run.note_restarts(workers[1:])
        return run.outcome(ref)


def restart_after_end(bootstrap: str, workdir: Path,
                      population: Population = Population()) -> Row:
    """kill -9 the worker once it has read all the input but before it has settled (its
    events still held), and start it again: it applies them and runs the silence checks
    to the end, from its kept watermarks."""
    feed = simulated_feed(population)
    with scenario_run("restart-after-end", bootstrap, workdir) as run:
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl")
        first = run.start_worker()
        total = run.produce(items_of(feed))
        wait_for(lambda: first.metric("churnwatch_events_consumed_total") >= total, 120,
                 "the worker reads the input", run.logs)
        second = run.restart(first, wait=True)
        run.note_restarts([second])
        return run.outcome(ref)


def redelivery(bootstrap: str, workdir: Path, population: Population = Population()) -> Row:
    """A burst of 40 purchases of one customer produced twice, with a kill -9 between the
    two: it counts once."""
    feed = simulated_feed(population)
    middle = feed[len(feed) // 2][0]
    customer = next(item[1]["customer_id"] for at, item in feed
                    if at >= middle and not isinstance(item, Malformed)
                    and item[0] == "Purchase")
    template = next(item[1] for _, item in feed
                    if not isinstance(item, Malformed) and item[0] == "Purchase"
                    and item[1]["customer_id"] == customer)
    start = datetime.fromtimestamp(middle / 1000, tz=UTC)
    burst: list[Item] = [("Purchase", dict(template, event_id=f"{customer}-burst-{n}",
                                           order_id=f"{customer}-burst-o-{n}",
                                           occurred_at=start + timedelta(minutes=10 * n)))
                         for n in range(40)]
    burst_ms = int(burst[-1][1]["occurred_at"].timestamp() * 1000)
    whole = sorted([*feed, *((burst_ms, item) for item in burst)], key=lambda f: f[0])
    parts = slices(whole)
    index = (burst_ms // SLICE_MS) - (whole[0][0] // SLICE_MS)
    with scenario_run("redelivery", bootstrap, workdir) as run:
        ref = reference_of(items_of(whole), run.settings, run.workdir / "events.jsonl")
        workers = [run.start_worker()]

        def again() -> None:
            workers.append(run.restart(workers[-1]))
            run.produce(burst)  # the producer retries the whole burst

        run.feed(parts, at={index: again})
        workers[-1].await_ready()
        run.note_restarts(workers[1:])
        row = run.outcome(ref)
        row.events_in += len(burst)
        # every output of the customer, every score included: the burst counted once
        expected, got = (set(h.get(customer, [])) for h in (ref.history, run.seen.history))
        row.customer_outputs_differ = len(expected ^ got)
        if expected ^ got:
            row.detail.append(diff_of(customer, ref, run.seen))
        return row


def poison_items(feed: Feed, codec: Codec, settings: Settings, count: int,
                 seed: int) -> list[tuple[int, Malformed]]:
    """``count`` records per input topic of the feed that are no usable event, at seeded
    places of the feed, each keyed ``poison-N``: random bytes, truncated Avro, Avro of
    another record type, absurd values, empty ids, empty values, and three of more than
    1 MB."""
    rng = random.Random(f"poison:{seed}")
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for _, item in feed:
        if not isinstance(item, Malformed):
            by_type.setdefault(item[0], []).append(item)
    types = sorted(by_type)
    kinds = ["random_bytes", "truncated_avro", "wrong_schema", "absurd_value", "empty_id",
             "empty_value"]
    out: list[tuple[int, Malformed]] = []
    lo, hi = feed[0][0], feed[-1][0]
    for n in range(count * len(types)):
        kind = "huge" if n < 3 else rng.choice(kinds)
        type_name, record = rng.choice(by_type[types[n % len(types)]])
        payload: bytes
        target = type_name
        if kind == "random_bytes":
            payload = rng.randbytes(rng.randint(1, 300))
        elif kind == "huge":
            payload = rng.randbytes(1_100_000 + rng.randint(0, 200_000))
        elif kind == "truncated_avro":
            whole = codec.encode(type_name, record)
            payload = whole[:rng.randint(1, len(whole) - 1)]
        elif kind == "wrong_schema":
            target = rng.choice([f.record_type for f in REGISTRY
                                 if f.record_type != type_name])
            payload = codec.encode(type_name, dict(record, event_id=f"poison-{n}"))
        elif kind == "absurd_value":
            payload = codec.encode(*absurd(type_name, dict(record, event_id=f"poison-{n}"),
                                           rng))
        elif kind == "empty_id":
            field_name = rng.choice(("event_id", "customer_id"))
            payload = codec.encode(type_name, dict(record, **{field_name: ""}))
        else:
            payload = b""
        out.append((rng.randint(lo, hi), Malformed(target, f"poison-{n}", payload, kind)))
    return out


def absurd(type_name: str, record: dict[str, Any], rng: random.Random) -> tuple[str, dict]:
    if type_name == "Purchase":
        record["amount_minor"] = rng.choice((-1, -10**6, 10**15))
    elif type_name == "Engagement":
        record["count"] = rng.choice((-5, 10**9))
    elif type_name == "SupportEvent":
        record.update(kind="nps_response", ticket_id=None, csat=None, nps=99)
    elif type_name == "BillingEvent":
        record["renewal_at"] = record["occurred_at"] + timedelta(days=rng.choice((900, 10**5)))
    else:
        record["signup_at"] = record["occurred_at"] + timedelta(days=400)
    return type_name, record


def poison(bootstrap: str, workdir: Path, population: Population = Population(),
           count: int = 2000) -> Row:
    """``count`` records per input topic that are no usable event, interleaved with the
    feed: each is dead-lettered with its reason, and the outputs are those of the clean
    feed."""
    feed = simulated_feed(population)
    with scenario_run("poison", bootstrap, workdir) as run:
        run.allow_large_records()
        bad = poison_items(feed, run.codec, run.settings, count, population.seed)
        expected: Counter[str] = Counter()
        rejected: dict[str, str] = {}
        for _, item in bad:
            rejection = expected_rejection(item.type_name, item.payload, run.codec,
                                           run.settings)
            assert rejection is not None, f"poison accepted by the intake: {item.kind}"
            if rejection.event_id:
                rejected[rejection.event_id] = rejection.reason
            else:
                expected[rejection.reason] += 1
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl",
                           extra_letters=expected, extra_rejected=rejected)
        run.start_worker()
        whole = sorted([*feed, *bad], key=lambda f: f[0])
        run.feed(slices(whole))
        row = run.outcome(ref)
        row.events_in += len(bad)
        return row


def rebalance(bootstrap: str, workdir: Path, population: Population = Population()) -> Row:
    """Two workers in one group (dynamic members: a stopped one leaves the group at once);
    one is stopped (SIGTERM) a third of the way, a third worker joins two thirds of the
    way."""
    feed = simulated_feed(population)
    parts = slices(feed)
    with scenario_run("rebalance", bootstrap, workdir) as run:
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl")
        run.start_worker("a", static=False)
        second = run.start_worker("b", static=False)

        def stop_second() -> None:
            second.stop(60)

        run.feed(parts, at={len(parts) // 3: stop_second,
                            2 * len(parts) // 3: lambda: run.start_worker("c", static=False,
                                                                   wait=False)})
        return run.outcome(ref)


class OwnBroker:
    """A broker of the scenario alone, on fixed ports and a kept data directory, so that it
    comes back on the same address with the same topics."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = owned_env(CHURN_KAFKA_PORT=str(free_port()),
                             CHURN_KAFKA_CONTROLLER_PORT=str(free_port()))

    def start(self) -> str:
        return start_broker(self.directory, env=self.env, timeout=300)

    def stop(self) -> None:
        problem = stop_broker(self.directory, env=self.env, timeout=300)
        assert problem is None, problem


def broker_restart(workdir: Path, population: Population = Population(),
                   outage_s: float = 20.0) -> Row:
    """The broker stops half-way through the feed for ``outage_s`` and comes back on the
    same port and data directory; the workers carry on by themselves."""
    feed = simulated_feed(population)
    parts = slices(feed)
    broker = OwnBroker(workdir / "broker-restart" / "kafka")
    bootstrap = broker.start()
    try:
        with scenario_run("broker-restart", bootstrap, workdir) as run:
            ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl")
            run.start_worker()

            def outage() -> None:
                broker.stop()
                down = time.monotonic()
                while time.monotonic() - down < outage_s:
                    time.sleep(0.5)  # the outage itself lasts this long
                broker.start()

            run.feed(parts, at={len(parts) // 2: outage})
            return run.outcome(ref, timeout=240)
    finally:
        stop_broker(broker.directory, env=broker.env)


def clock_outlier(bootstrap: str, workdir: Path,
                  population: Population = Population()) -> Row:
    """One valid purchase dated a year ahead in the middle of the backfill: held, then
    dead-lettered ``clock_outlier``; the reference is the file without it."""
    feed = simulated_feed(population)
    middle = len(feed) // 2
    at, original = next((at, item) for at, item in feed[middle:]
                        if not isinstance(item, Malformed) and item[0] == "Purchase")
    type_name, record = original
    outlier = (type_name, dict(record, event_id="outlier-1", order_id="outlier-o-1",
                               occurred_at=record["occurred_at"] + timedelta(days=365)))
    with scenario_run("clock-outlier", bootstrap, workdir) as run:
        ref = reference_of(items_of(feed), run.settings, run.workdir / "events.jsonl",
                           extra_rejected={"outlier-1": "clock_outlier"})
        run.start_worker()
        whole = sorted([*feed, (at, outlier)], key=lambda f: f[0])
        run.feed(slices(whole))
        row = run.outcome(ref)
        row.events_in += 1
        return row


SCENARIOS: dict[str, Callable[[str, Path], Row]] = {
    "pace-unpaced": lambda b, w: pace(b, w, "unpaced"),
    "pace-paced": lambda b, w: pace(b, w, "paced"),
    "pace-paced-1-day-per-s": lambda b, w: pace(b, w, "paced-1-day-per-s"),
    "pace-engagement-behind": lambda b, w: pace(b, w, "engagement-behind"),
    "pace-cpu-load": lambda b, w: pace(b, w, "cpu-load"),
    "kill9": kill9_midstream,
    "restart-after-end": restart_after_end,
    "redelivery": redelivery,
    "poison": poison,
    "rebalance": rebalance,
    "broker-restart": lambda b, w: broker_restart(w),
    "clock-outlier": clock_outlier,
}

COLUMNS = ("scenario", "events_in", "expected", "got", "lost", "extra", "resent",
           "band_mismatches", "wrong_letters", "customer_outputs_differ",
           "ready_after_restart_s", "seconds", "letters")


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain text table."""
    def cell(row: Row, name: str) -> str:
        value = getattr(row, name)
        if name == "letters":
            return " ".join(f"{k}={v}" for k, v in value.items()) or "-"
        if name == "ready_after_restart_s":
            return ",".join(f"{v:g}" for v in value) or "-"
        return str(value)

    cells = [[cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))
              for line in cells]
    return "\n".join(lines)


def with_detail(row: Row) -> str:
    return table([row]) + "\n" + "\n".join(row.detail)


