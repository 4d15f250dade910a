"""``churnwatch demo`` itself: broker, topics, one worker child, the simulated feed, the
running summary, the report, and cleaning up whatever the way out is."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from confluent_kafka import KafkaException
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from streams.codec import build_codec
from streams.demo.printer import OutputPrinter, Summary
from streams.demo.producing import make_progress, produce_days
from streams.families import REGISTRY
from streams.kafka_io import (
    OutputReader,
)
from streams.processes import (
    BrokerError,
    WorkerChild,
    WorkerError,
    free_port,
    start_broker,
    stop_broker,
)
from streams.settings import OUTPUT_TOPICS, Settings

FEATURE_STEPS = tuple(f.step for f in REGISTRY)


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and what to do."""


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 300
    weeks: int = 12
    seed: int = 7
    pace: float = 3.0  # simulated days per second
    duration: float | None = None
    until_idle: bool = False
    idle_seconds: float = 20.0
    every_score: bool = False
    keep: bool = False
    ready_timeout: float = 120.0
    lag_timeout: float = 120.0  # longest wait for the worker to catch up while producing


class _Terminated(Exception):
    """SIGTERM or SIGHUP arrived: stop like on Ctrl-C."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def demo_settings(base: Settings, *, bootstrap: str, data_dir: Path) -> Settings:
    """Fresh topics and consumer group for this run, the event-time clock, RocksDB."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return base.model_copy(update={
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"{base.topic_prefix}demo-{stamp}-",
        "app_id": f"{base.app_id}-demo-{stamp}",
        "clock": "event",  # the scenario lies in the past: replay it in event time
        "store": "rocksdb://",
        "data_dir": data_dir,
        "web_host": "127.0.0.1",
        "web_port": free_port(),
        "create_topics": True,
    })


def drop_demo_topics(settings: Settings) -> str | None:
    """Delete this run's topics and the worker's changelog topics from the cluster."""
    from streams.topics import TopicsError, delete_topics, make_admin

    try:
        admin = make_admin(settings)
        names = [name for name in admin.list_topics(timeout=settings.kafka_timeout_s).topics
                 if name.startswith((settings.topic_prefix, f"{settings.app_id}-"))]
        delete_topics(settings, admin, topics=names)
    except (TopicsError, KafkaException) as exc:
        return f"could not delete the demo topics: {exc}"
    return None


def tick_interval(base: Settings, pace: float) -> float:
    """Silence checks once per simulated day of the replay, unless set explicitly."""
    if "lapse_check_interval_s" in base.model_fields_set or pace <= 0:
        return base.lapse_check_interval_s
    return min(base.lapse_check_interval_s, max(0.2, 1.0 / pace))


class _Run:
    """State of one demo run, so that clean-up knows what exists."""

    def __init__(self, console: Console, options: DemoOptions) -> None:
        self.console = console
        self.options = options
        self.root = Path(tempfile.mkdtemp(prefix="churnwatch-demo-"))
        self.broker_dir: Path | None = None
        self.worker: WorkerChild | None = None
        self.reader: OutputReader | None = None
        self.external: Settings | None = None  # topics to drop from a cluster we did not start

    def cleanup(self) -> None:
        console = self.console
        problems = []
        if self.reader is not None:
            with contextlib.suppress(Exception):
                self.reader.close()
        if self.worker is not None:
            console.print("stopping the worker ...", style="dim")
            status = self.worker.stop()
            if status not in (0, None, -signal.SIGTERM):
                problems.append(f"the worker exited with status {status}")
        if self.external is not None and not self.options.keep:
            problem = drop_demo_topics(self.external)
            if problem:
                problems.append(problem)
        if self.broker_dir is not None:
            console.print("stopping Kafka ...", style="dim")
            problem = stop_broker(self.broker_dir)
            if problem:
                problems.append(problem)
        if self.options.keep:
            console.print(f"kept {self.root}", style="dim")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        for problem in problems:
            console.print(f"[yellow]warning:[/yellow] {problem}")


def run_demo(base: Settings, options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; returns the process exit status (0 on success or Ctrl-C)."""
    console = console or Console()
    run = _Run(console, options)
    try:
        with _stop_on_signals():
            _demo(base, options, run)
        return 0
    except (KeyboardInterrupt, _Terminated):
        console.print("\ninterrupted", style="dim")
        return 0
    except (DemoError, BrokerError, WorkerError) as exc:
        console.print(f"[bold red]demo failed:[/bold red] {exc}", highlight=False)
        if run.worker is not None:
            console.print(f"[dim]---- last lines of {run.worker.log_path} ----[/dim]")
            console.print(run.worker.log_tail(), markup=False, highlight=False)
        return 1
    except Exception as exc:  # noqa: BLE001 - report any failure, then clean up below
        console.print(f"[bold red]demo failed:[/bold red] {type(exc).__name__}: {exc}",
                      highlight=False)
        if run.worker is not None:
            console.print(f"[dim]---- last lines of {run.worker.log_path} ----[/dim]")
            console.print(run.worker.log_tail(), markup=False, highlight=False)
        return 1
    finally:
        # a second Ctrl-C must not leave a broker or worker behind
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            run.cleanup()
        finally:
            signal.signal(signal.SIGINT, previous)


def _demo(base: Settings, options: DemoOptions, run: _Run) -> None:
    from streams.simulator import SimulationConfig, simulate
    from streams.topics import BrokerUnreachableError, TopicsError, ensure_topics

    console = run.console
    console.rule("[bold]churnwatch demo")
    if "kafka_bootstrap" in base.model_fields_set:
        bootstrap = base.kafka_bootstrap
        console.print(f"using the Kafka cluster at [bold]{bootstrap}[/bold] "
                      "(CHURN_KAFKA_BOOTSTRAP)")
    else:
        run.broker_dir = run.root / "kafka"
        with console.status("starting a local Apache Kafka broker ..."):
            bootstrap = start_broker(run.broker_dir)
        console.print(f"local Kafka broker on [bold]{bootstrap}[/bold] "
                      f"(files in {run.broker_dir})")

    settings = demo_settings(base, bootstrap=bootstrap, data_dir=run.root / "data")
    settings = settings.model_copy(
        update={"lapse_check_interval_s": tick_interval(base, options.pace)})
    try:
        created = ensure_topics(settings)
    except BrokerUnreachableError as exc:
        raise DemoError(str(exc)) from exc  # nothing was created
    except TopicsError as exc:
        run.external = settings if run.broker_dir is None else None
        raise DemoError(str(exc)) from exc
    if run.broker_dir is None:
        run.external = settings
    console.print(f"created {len(created)} topics with prefix [bold]{settings.topic_prefix}"
                  f"[/bold] and the tables' changelogs ({settings.partitions} partitions each)")

    log_path = run.root / "worker.log"
    run.worker = WorkerChild(settings, log_path, args=("-m", "streams.cli", "worker"),
                             own_session=True, from_checkout=True)
    console.print(f"worker pid {run.worker.proc.pid}, web {run.worker.url}, "
                  f"log [bold]{log_path}[/bold]")
    with console.status("waiting for the worker to be ready ..."):
        run.worker.wait_ready(options.ready_timeout)
    console.print("worker ready", style="green")

    sim = simulate(SimulationConfig(customers=options.customers, days=options.weeks * 7.0,
                                    seed=options.seed))
    cast = {row.customer_id: row.persona for row in sim.truth}
    churned = frozenset(row.customer_id for row in sim.truth if row.churned)
    mix = Counter(cast.values())
    counts = sim.counts
    console.print(
        f"simulated {options.customers} customers over {options.weeks} weeks from "
        f"{sim.config.start:%Y-%m-%d} (seed {options.seed}): {len(sim.items):,} records "
        f"incl. the intended noise of {counts.duplicates:,} duplicates, "
        f"{counts.late + counts.very_late:,} late ({counts.very_late:,} beyond the allowed "
        f"lateness), {counts.malformed:,} malformed and {counts.invalid:,} invalid; "
        f"{len(churned):,} customers leave; personas "
        + ", ".join(f"{p} {n:,}" for p, n in mix.most_common()))
    if options.pace > 0:
        console.print(f"producing {options.pace:g} simulated days per second; outputs are "
                      "printed as they arrive (Ctrl-C stops and shows the summary)")
    console.rule()

    printer = OutputPrinter(console, every_score=options.every_score, cast=cast,
                            churned=churned, noise_intended=True)
    summary = printer.summary
    days = sim.arrival_days()
    summary.produced, summary.total = 0, sum(len(batch) for _, batch in days)
    codec = build_codec(settings)
    run.reader = OutputReader(settings, codec, list(OUTPUT_TOPICS))
    worker = run.worker
    started = time.monotonic()
    deadline = started + options.duration if options.duration else None
    last_output = time.monotonic()
    last_metrics = 0.0

    def drain(seconds: float) -> None:
        """Read and print outputs for up to ``seconds``; check on the worker."""
        nonlocal last_output, last_metrics
        assert run.reader is not None
        try:
            outputs = run.reader.poll(max(seconds, 0.01))
        except BrokerUnreachableError as exc:
            raise DemoError(f"lost the cluster: {exc}") from exc
        for topic, type_name, record in outputs:
            printer.handle(topic, type_name, record)
            last_output = time.monotonic()
        if not worker.alive():
            raise DemoError(f"the worker exited with status {worker.proc.returncode}")
        if time.monotonic() - last_metrics > 2.0:
            last_metrics = time.monotonic()
            summary.consumed = consumed(worker)

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def gate(needed: int) -> None:
        """Hold production until the worker has consumed ``needed`` records."""
        limit = time.monotonic() + options.lag_timeout
        while (summary.consumed or 0) < needed and not out_of_time():
            summary.consumed = consumed(worker)
            if (summary.consumed or 0) >= needed:
                return
            if time.monotonic() > limit:
                raise DemoError(f"the worker consumed {summary.consumed} of {needed} records "
                                f"within {options.lag_timeout:g}s; it is stuck or too slow")
            drain(0.1)

    def count_sent(n: int) -> None:
        summary.produced = (summary.produced or 0) + n

    progress = make_progress(console)
    produce_started = time.monotonic()
    stopped_by: str | None = None
    try:
        with Live(Group(progress, summary), console=console, refresh_per_second=4,
                  transient=True) as live:
            summary.produced = produce_days(
                settings, codec, days, pace=options.pace, console=console,
                progress=progress, wait=lambda s: drain(min(s, 0.25)), stop=out_of_time,
                gate=gate, sent=count_sent)
            live.update(summary)  # the bar has done its job
            console.print(f"produced {summary.produced:,} records in "
                          f"{time.monotonic() - produce_started:.0f}s; watching the outputs",
                          style="dim")
            announced = False
            while not out_of_time():
                drain(0.25)
                if not replayed(summary, time.monotonic() - last_output,
                                options.idle_seconds):
                    continue
                if options.until_idle:
                    console.print(f"no new output for {options.idle_seconds:g}s: done",
                                  style="dim")
                    break
                if not announced:
                    announced = True
                    console.print(
                        f"the whole population is replayed: the worker consumed all "
                        f"{summary.produced:,} records and nothing new came for "
                        f"{options.idle_seconds:g}s; press Ctrl-C for the summary",
                        style="bold")
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    except _Terminated as exc:
        stopped_by = str(exc)
    if stopped_by is not None:
        console.print(f"\nstopped by {stopped_by}", style="dim")
    noise = (counts.malformed, counts.invalid, counts.very_late)
    _report(console, summary, cast, churned, settings, noise)
    if stopped_by is None and summary.produced and not summary.health_changes:
        raise DemoError(f"the worker consumed {summary.consumed or 0:,} of "
                        f"{summary.produced:,} records but published no health score")


def consumed(worker: WorkerChild) -> int | None:
    """Input records the worker's feature steps have consumed, from /metrics."""
    families = worker.metrics()
    if families is None:
        return None
    total = 0.0
    for family in families:
        for sample in family.samples:
            if (sample.name == "churnwatch_events_consumed_total"
                    and sample.labels.get("step") in FEATURE_STEPS):
                total += sample.value
    return int(total)


def replayed(summary: Summary, quiet_s: float, idle_s: float) -> bool:
    """Whether the demo has nothing more to show: every record is produced and consumed,
    and no output came for ``idle_s`` seconds."""
    produced = summary.produced or 0
    done = summary.total is None or produced >= summary.total
    return (done and summary.consumed is not None and summary.consumed >= produced
            and quiet_s >= idle_s)


def _report(console: Console, summary: Summary, cast: dict[str, str],
            churned: frozenset[str], settings: Settings,
            noise: tuple[int, int, int]) -> None:
    """The closing summary; ``noise``: the malformed, invalid and very late records the
    simulator sent on purpose, which the worker should have dead-lettered."""
    console.rule()
    console.print(summary.line())
    if summary.dead_reasons:
        malformed, invalid, very_late = noise
        console.print(
            "dead letters by reason: " + ", ".join(
                f"{reason} {n:,}" for reason, n in summary.dead_reasons.most_common())
            + f" (the simulator sent {malformed:,} malformed, {invalid:,} invalid and "
            f"{very_late:,} very late records on purpose)", style="dim", highlight=False)
    console.print(summary.persona_table(cast, churned))
    console.print(Text("output topics: " + ", ".join(settings.topic(t) for t in OUTPUT_TOPICS),
                       style="dim"))
