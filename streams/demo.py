"""``churnwatch demo``: the whole pipeline on one machine, and the readable output printer.

The demo starts a local Kafka broker with ``scripts/kafka-local.sh`` (or uses the cluster
named by ``CHURN_KAFKA_BOOTSTRAP`` when that is set), creates fresh topics under a
``demo-<timestamp>-`` prefix, runs one worker as a child process with the event-time
clock, produces the scripted scenario (:mod:`streams.scenario`) day by day, and prints
every band change, at-risk and recovered event and dead letter as it arrives, with a
running summary. Every child process and temporary directory is cleaned up on the way
out, whatever the way out is.

:class:`OutputPrinter` is also what ``churnwatch watch`` prints with.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import KafkaException
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from streams.codec import Codec, build_codec
from streams.kafka_io import (
    TOMBSTONE,
    UNDECODABLE,
    OutputReader,
    make_producer,
)
from streams.processes import (
    BrokerError,
    WorkerChild,
    WorkerError,
    free_port,
    start_broker,
    stop_broker,
)
from streams.scenario import LAPSING, PERSONAS, Record, iter_days, persona_of
from streams.settings import OUTPUT_TOPICS, Settings
from streams.simulator import Item

FEATURE_STEPS = ("purchases", "engagement", "support", "profile")

BAND_STYLE = {"healthy": "green", "watch": "yellow", "at_risk": "bold red"}
BAND_LABEL = {"healthy": "healthy", "watch": "watch", "at_risk": "at risk"}


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and what to do."""


# -- output printing ----------------------------------------------------------------------
def _band(band: str | None) -> Text:
    if band is None:
        return Text("new", style="dim")
    return Text(BAND_LABEL.get(band, band), style=BAND_STYLE.get(band, ""))


def _points_lost(contribution: dict[str, Any]) -> float:
    """Points a measure cost the score: (100 - points) x its weight."""
    return float((100.0 - contribution["points"]) * contribution["weight"])


def _when(record: dict[str, Any], name: str = "occurred_at") -> str:
    moment = record.get(name)
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return "-" * 16


@dataclass
class Summary:
    """Running counts over everything printed so far."""

    bands: dict[str, str] = field(default_factory=dict)  # customer -> latest band
    at_risk_now: set[str] = field(default_factory=set)
    flagged: set[str] = field(default_factory=set)  # customers with any at-risk event
    recovered: set[str] = field(default_factory=set)
    champions: set[str] = field(default_factory=set)
    health_changes: int = 0
    at_risk_events: int = 0
    recovered_events: int = 0
    dead_letters: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    erased: int = 0
    produced: int | None = None
    total: int | None = None  # records to produce, once known
    consumed: int | None = None
    #: the inputs carry deliberate noise (the simulator's): dead letters are expected
    noise_intended: bool = False

    def line(self) -> Text:
        counts = Counter(self.bands.values())
        text = Text()
        text.append(f"scored {len(self.bands):,}: ")
        for band in ("healthy", "watch", "at_risk"):
            text.append(f"{BAND_LABEL[band]} {counts.get(band, 0):,}",
                        style=BAND_STYLE[band])
            text.append("  ")
        text.append(f"| at-risk events {self.at_risk_events:,} "
                    f"(open {len(self.at_risk_now):,})  recovered {self.recovered_events:,}  "
                    f"champions {len(self.champions):,}  ")
        if self.noise_intended:
            text.append(f"dead letters {self.dead_letters:,} (intended noise)", style="dim")
        else:
            text.append(f"dead letters {self.dead_letters:,}",
                        style="yellow" if self.dead_letters else "")
        consumed = f"{self.consumed:,}" if self.consumed is not None else "?"
        if self.total is not None and (self.produced or 0) < self.total:
            text.append(f"  | produced {self.produced or 0:,}/{self.total:,}, "
                        f"worker consumed {consumed}", style="dim")
        elif self.produced is not None:
            text.append(f"  | worker consumed {consumed}/{self.produced:,}", style="dim")
        return text

    def persona_table(self, cast: dict[str, str],
                      churned: frozenset[str] | None = None) -> Table:
        """Outcome per persona. ``churned``: the customers who really left (the
        simulator's truth); without it, the scripted scenario's lapsing personas."""
        table = Table(title="Outcome per persona", title_justify="left")
        columns = ["persona", "customers", "left", "flagged", "at risk now", "recovered",
                   "champions", "band now: healthy/watch/at risk"]
        if churned is None:
            columns.remove("left")
        for column in columns:
            table.add_column(column, justify="left" if column == "persona" else "right")
        order = [p for p in PERSONAS if p in cast.values()] + sorted(
            set(cast.values()) - set(PERSONAS))
        for persona in order:
            members = [c for c, p in cast.items() if p == persona]
            bands = Counter(self.bands.get(c, "none") for c in members)
            if churned is None:
                lapsing = persona in LAPSING
                cells: list[Text | str] = [Text(persona + (" *" if lapsing else ""),
                              style="" if lapsing else "dim"), f"{len(members):,}"]
            else:
                left = sum(c in churned for c in members)
                cells = [Text(persona, style="" if left else "dim"), f"{len(members):,}",
                         f"{left:,}"]
            table.add_row(
                *cells,
                f"{sum(c in self.flagged for c in members):,}",
                f"{sum(c in self.at_risk_now for c in members):,}",
                f"{sum(c in self.recovered for c in members):,}",
                f"{sum(c in self.champions for c in members):,}",
                f"{bands.get('healthy', 0):,} / {bands.get('watch', 0):,} / "
                f"{bands.get('at_risk', 0):,}")
        table.caption = ("* personas scripted to lapse; the others should stay healthy"
                         if churned is None else
                         "left: churned for good within the simulated period (truth file)")
        return table

    def __rich__(self) -> Text:
        return self.line()


class OutputPrinter:
    """Turns churnwatch output records into readable lines on a rich console."""

    def __init__(self, console: Console, *, every_score: bool = False,
                 seed: int | None = None, max_dead_letters: int = 20,
                 cast: dict[str, str] | None = None,
                 churned: frozenset[str] = frozenset(),
                 noise_intended: bool = False) -> None:
        self.console = console
        self.max_dead_letters = max_dead_letters
        self.every_score = every_score
        self.seed = seed
        self.cast = cast  # customer -> persona (the simulator's truth)
        self.churned = churned
        self.summary = Summary(noise_intended=noise_intended)

    def _who(self, customer: str | None) -> Text:
        text = Text(customer or "?", style="bold")
        if not customer:
            return text
        if self.cast is not None:
            persona = self.cast.get(customer)
            if persona is not None:
                leaves = customer in self.churned
                text.append(f" [{persona}{', leaves' if leaves else ''}]",
                            style="magenta" if leaves else "dim")
        elif self.seed is not None:
            persona = persona_of(customer, self.seed)
            if persona is not None:
                text.append(f" [{persona}]", style="magenta" if persona in LAPSING else "dim")
        return text

    def handle(self, topic: str, type_name: str, record: dict[str, Any] | None) -> None:
        """Count one output and print it if it is worth a line."""
        if type_name == TOMBSTONE or record is None:
            self.summary.erased += 1
            self.console.print(Text(f"tombstone on {topic} (customer erased)", style="dim"))
            return
        if type_name == "HealthScoreChanged":
            self._health(record)
        elif type_name == "CustomerAtRisk":
            self._at_risk(record)
        elif type_name == "CustomerRecovered":
            self._recovered(record)
        elif type_name == "CustomerChampion":
            self._champion(record)
        elif type_name == "DeadLetter":
            self._dead_letter(record)
        elif type_name == UNDECODABLE:
            self.console.print(Text(f"undecodable record on {topic}: {record['error']}",
                                    style="yellow"))
        else:
            self.console.print(Text(f"{type_name} on {topic}", style="dim"))

    def _health(self, r: dict[str, Any]) -> None:
        s = self.summary
        s.health_changes += 1
        customer, band, previous = r["customer_id"], r["band"], r.get("previous_band")
        s.bands[customer] = band
        first_healthy = previous is None and band == "healthy"
        if not self.every_score and (band == previous or first_healthy):
            return
        line = Text(_when(r) + "  ", style="dim")
        line.append_text(self._who(customer))
        line.append("  ")
        line.append_text(_band(previous))
        line.append(" -> ")
        line.append_text(_band(band))
        line.append(f"  {r['score']:5.1f}")
        lost = sorted(r.get("contributions") or [], key=_points_lost, reverse=True)
        worst = [f"{c['signal']} -{_points_lost(c):.1f}"
                 for c in lost[:3] if _points_lost(c) >= 0.5]
        if worst:
            line.append("  " + ", ".join(worst), style="dim")
        self.console.print(line)

    def _at_risk(self, r: dict[str, Any]) -> None:
        s = self.summary
        customer = r["customer_id"]
        s.at_risk_events += 1
        s.at_risk_now.add(customer)
        s.flagged.add(customer)
        s.bands[customer] = r["band"]
        head = Text(_when(r) + "  ", style="dim")
        head.append("AT RISK  ", style="bold white on red")
        head.append_text(self._who(customer))
        head.append(f"  score {r['score']:.1f}  ")
        head.append_text(_band(r.get("previous_band")))
        head.append(" -> ")
        head.append_text(_band(r["band"]))
        head.append(f"  {r['segment']}  episode {r['episode_id']}", style="dim")
        self.console.print(head)
        for reason in (r.get("reasons") or [])[:3]:
            self.console.print(Text(f"    - {reason['text']} ({reason['contribution']:+.1f})"))
        route = Text("    why: ")
        route.append(r["churn_reason"], style="bold")
        route.append(" -> team ")
        route.append(r["route_to_team"], style="bold cyan")
        route.append(f" | fit {r['fit_status']}")
        if r.get("profitability") is not None:
            route.append(f" ({r['profitability']:.0%} margin"
                         + (", unprofitable)" if r.get("unprofitable") else ")"))
        route.append(" | ")
        if r.get("contactable"):
            route.append("contact via " + ", ".join(r.get("channels") or []), style="green")
        else:
            route.append("no contact consent", style="yellow")
        self.console.print(route)
        self.console.print(Text(f"    play: {r['suggested_play']}", style="italic"))

    def _recovered(self, r: dict[str, Any]) -> None:
        s = self.summary
        customer = r["customer_id"]
        s.recovered_events += 1
        s.at_risk_now.discard(customer)
        s.recovered.add(customer)
        s.bands[customer] = r["band"]
        line = Text(_when(r) + "  ", style="dim")
        line.append("RECOVERED", style="bold white on green")
        line.append("  ")
        line.append_text(self._who(customer))
        line.append(f"  score {r['score']:.1f}  ")
        line.append_text(_band(r["band"]))
        line.append(f"  at risk since {_when(r, 'at_risk_since')[:10]}", style="dim")
        self.console.print(line)

    def _champion(self, r: dict[str, Any]) -> None:
        customer = r["customer_id"]
        self.summary.champions.add(customer)
        line = Text(_when(r) + "  ", style="dim")
        line.append("CHAMPION", style="bold white on blue")
        line.append("  ")
        line.append_text(self._who(customer))
        line.append(f"  score {r['score']:.1f}  {r['segment']}  ")
        line.append(", ".join(r.get("qualified_by") or []), style="dim")
        self.console.print(line)
        reward = Text(f"    reward: {r['reward']} | ", style="italic")
        if r.get("contactable"):
            reward.append("contact via " + ", ".join(r.get("channels") or []), style="green")
        else:
            reward.append("no contact consent", style="yellow")
        self.console.print(reward)

    def _dead_letter(self, r: dict[str, Any]) -> None:
        s = self.summary
        s.dead_letters += 1
        s.dead_reasons[r["reason"]] += 1
        if s.noise_intended:
            # the first of each reason shows the routing at work; the rest are counted
            if s.dead_reasons[r["reason"]] == 1:
                self.console.print(Text(
                    f"{_when(r, 'failed_at')}  dead letter (intended noise)  "
                    f"{r['source_topic']}/{r['source_partition']}/{r['source_offset']}  "
                    f"{r['reason']} in {r['step']}: {r['error']}", style="dim"))
            return
        if s.dead_letters > self.max_dead_letters:
            if s.dead_letters == self.max_dead_letters + 1:
                self.console.print(Text("further dead letters are only counted",
                                        style="yellow"))
            return
        line = Text(_when(r, "failed_at") + "  ", style="dim")
        line.append("DEAD LETTER", style="bold black on yellow")
        line.append(f"  {r['source_topic']}/{r['source_partition']}/{r['source_offset']}"
                    f"  {r['reason']} in {r['step']}: {r['error']}")
        self.console.print(line)


def watch_outputs(settings: Settings, codec: Codec, topics: Sequence[str],
                  printer: OutputPrinter, *, from_beginning: bool = True,
                  stop: Callable[[], bool] | None = None) -> None:
    """Print outputs until ``stop()`` is true (or forever; Ctrl-C ends it)."""
    with OutputReader(settings, codec, topics, from_beginning=from_beginning) as reader:
        while stop is None or not stop():
            for topic, type_name, record in reader.poll(0.5):
                printer.handle(topic, type_name, record)


# -- producing ----------------------------------------------------------------------------
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


# -- the demo ------------------------------------------------------------------------------
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
