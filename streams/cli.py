"""The ``churnwatch`` command line.

Every command reads its settings from the environment (``CHURN_*``, see
``streams.settings``); an option given on the command line overrides only the setting it
names. Heavy imports (Faust) happen inside the commands that need them, so ``--help`` and
the Kafka-only commands start fast.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from streams.settings import OUTPUT_TOPICS, Settings

app = typer.Typer(
    name="churnwatch",
    help="Event-driven churn risk: explainable customer health scores and at-risk events "
         "from Kafka streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", help="Kafka bootstrap servers (overrides CHURN_KAFKA_BOOTSTRAP).")]
Prefix = Annotated[str | None, typer.Option(
    "--topic-prefix", help="Topic name prefix (overrides CHURN_TOPIC_PREFIX).")]
Currency = Annotated[str, typer.Option(help="Currency of a CSV's amounts (ISO 4217 code).")]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options that were given on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        Console(stderr=True).print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.callback()
def _logging() -> None:
    """Route every log, the Kafka clients' included, through churnwatch's logging set-up
    (a worker sets its own level when Faust starts)."""
    import logging.config

    from streams.logs import command_log_level, logging_config

    settings = load_settings()
    logging.config.dictConfig(logging_config(command_log_level(settings.log_level),
                                             json_lines=settings.log_json))


def _reach(settings: Settings) -> None:
    """Fail with one line unless the cluster answers within CHURN_KAFKA_TIMEOUT_S."""
    from streams.topics import BrokerUnreachableError, wait_for_cluster

    try:
        wait_for_cluster(settings)
    except BrokerUnreachableError as exc:
        raise _fail(str(exc)) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line and give the exit to raise; with CHURN_LOG_LEVEL=debug the
    exception being handled, if any, is logged with its traceback first."""
    import logging

    if sys.exc_info()[0] is not None:
        logging.getLogger("churnwatch").debug("failed", exc_info=True)
    Console(stderr=True).print(f"[bold red]error:[/bold red] {message}", highlight=False,
                               soft_wrap=True)
    return typer.Exit(code)


@app.command()
def worker(
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
    app_id: Annotated[str | None, typer.Option(help="Faust app id / consumer group.")] = None,
    web_port: Annotated[int | None, typer.Option(help="Port of /metrics, /live, /ready.")]
    = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for table state.")] = None,
    store: Annotated[str | None, typer.Option(help="rocksdb:// or memory://.")] = None,
    clock: Annotated[str | None, typer.Option(help="'wall' (live) or 'event' (replay).")]
    = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")]
    = None,
    processes: Annotated[int, typer.Option(
        min=1, help="Worker processes to run in one consumer group (one per core): "
        "process i serves web port WEB_PORT+i and keeps its state in DATA_DIR/process-i.")]
    = 1,
) -> None:
    """Run a churnwatch worker until it is stopped (SIGTERM or Ctrl-C)."""
    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix,
                             app_id=app_id, web_port=web_port, data_dir=data_dir,
                             store=store, clock=clock, log_level=log_level)
    from streams.topics import TopicsError
    from streams.worker import run

    if processes > 1:
        if settings.web_url:
            raise _fail("CHURN_WEB_URL names one process; unset it to run --processes "
                        f"{processes} (each process advertises its own port)")
        from streams.processes import run_worker_group
        from streams.topics import ensure_topics

        try:
            if settings.create_topics:
                ensure_topics(settings)  # once, before the processes race to create them
        except TopicsError as exc:
            raise _fail(str(exc)) from exc
        raise typer.Exit(run_worker_group(settings, processes))

    try:
        run(settings)
    except TopicsError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def topics(
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
    partitions: Annotated[int | None, typer.Option(
        help="Partition count of every topic (overrides CHURN_PARTITIONS).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only check; do not create missing topics.")] = False,
) -> None:
    """Create the missing churnwatch topics and check the partition counts of the others."""
    from streams.topics import TopicMismatchError, TopicsError, ensure_topics, physical_topics

    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix,
                             partitions=partitions)
    console = Console()
    try:
        created = ensure_topics(settings, create=not check)
    except TopicMismatchError as exc:
        raise _fail(str(exc)) from exc
    except TopicsError as exc:
        raise _fail(str(exc)) from exc
    for name in physical_topics(settings):
        state = "[green]created[/green]" if name in created else "[dim]exists[/dim] "
        console.print(f"{state}  {name}  ({settings.partitions} partitions)", highlight=False)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"{option} {value!r} is not an ISO date or datetime", 2) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command("produce-scenario")
def produce_scenario(
    customers: Annotated[int, typer.Option(min=0, help="Number of customers.")] = 300,
    weeks: Annotated[int, typer.Option(min=1, help="Weeks of event time.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same records.")]
    = 7,
    start: Annotated[str | None, typer.Option(
        help="First day (ISO date, UTC); default 2026-01-05.")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="Write JSON Lines to this file ('-' for stdout) instead of Kafka.")]
    = None,
    pace: Annotated[float, typer.Option(
        min=0, help="Simulated days per second; 0 produces as fast as possible.")] = 2.0,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Write the scripted customer scenario to the input topics (or to JSON Lines).

    The scenario lies in the past: replay it into workers running with CHURN_CLOCK=event.
    It is produced one simulated day at a time (--pace) because such a worker rejects an
    event more than the allowed lateness behind the latest one it has seen, and without
    pacing its partitions are read unevenly.
    """
    from streams.scenario import scenario

    records = scenario(customers, weeks, seed, _parse_time(start, "--start"))
    if jsonl is not None:
        from streams.codec import to_json_record
        from streams.jsonl import envelope_line, write_lines

        lines = (envelope_line(t, to_json_record(t, r)) for t, r in records)
        if str(jsonl) == "-":
            write_lines(lines, sys.stdout)
        else:
            write_lines(lines, jsonl)
            Console(stderr=True).print(f"wrote {len(records):,} records to {jsonl}")
        return

    from streams.codec import build_codec
    from streams.demo import produce_paced
    from streams.kafka_io import DeliveryError
    from streams.topics import AccessRefusedError

    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix)
    _reach(settings)
    console = Console(stderr=True)
    try:
        count = produce_paced(settings, build_codec(settings), records, pace=pace,
                              console=console)
    except (DeliveryError, AccessRefusedError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"produced {count:,} records for {customers:,} customers "
                  f"to {settings.kafka_bootstrap}")


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(min=0, help="Number of customers.")] = 10_000,
    months: Annotated[float, typer.Option(min=0.1, help="Months of event time (30.44 days).")]
    = 12.0,
    days: Annotated[float | None, typer.Option(
        min=1, help="Days of event time; overrides --months.")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same output.")]
    = 42,
    start: Annotated[str | None, typer.Option(
        help="First day (ISO date or datetime, UTC); default 2025-01-06. The whole period "
        "must lie in the past.")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="Write JSON Lines to this file ('-' for stdout) instead of Kafka.")]
    = None,
    truth: Annotated[Path | None, typer.Option(
        "--truth", help="Write the ground truth CSV here; default truth.csv next to the "
        "--jsonl file, or in the current directory.")] = None,
    rate: Annotated[float, typer.Option(
        min=0, help="Records per second to Kafka; 0 produces as fast as possible.")] = 0.0,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Simulate a realistic customer population with known churn and noisy delivery
    (duplicates, late, malformed and invalid records) and write it to the input topics or
    to JSON Lines, with a ground truth CSV for `churnwatch backtest` (docs/simulator.md)."""
    import dataclasses
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from streams.simulator import (
        SimulationConfig,
        persona_table,
        summary_table,
        write_jsonl,
        write_truth,
    )
    from streams.simulator import simulate as run_simulation

    begin = _parse_time(start, "--start")
    try:
        config = SimulationConfig(customers=customers, months=months, days=days, seed=seed)
        if begin is not None:
            config = dataclasses.replace(config, start=begin)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    to_stdout = jsonl is not None and str(jsonl) == "-"
    if truth is None:
        truth = (jsonl.parent if jsonl is not None and not to_stdout else Path(".")) / "truth.csv"
    if jsonl is not None and not to_stdout and truth.resolve() == jsonl.resolve():
        raise _fail("--truth and --jsonl name the same file", 2)
    settings = None
    if jsonl is None:
        settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix)
        _reach(settings)  # before minutes of simulating
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                        transient=True)
    with progress:
        task = progress.add_task("simulating customers", total=customers)
        started = time.monotonic()
        try:
            sim = run_simulation(config, progress=lambda n: progress.advance(task, n))
        except ValueError as exc:
            raise _fail(str(exc), 2) from exc
        generated_s = time.monotonic() - started
        progress.update(task, visible=False)
        task = progress.add_task("writing JSON Lines" if jsonl is not None else
                                 "producing to Kafka", total=len(sim.items))
        started = time.monotonic()
        if jsonl is not None:
            write_jsonl(sim.items, sys.stdout if to_stdout else jsonl,
                        progress=lambda n: progress.advance(task, n))
            output = "written to stdout" if to_stdout else f"written to {jsonl}"
        else:
            from confluent_kafka import KafkaException

            from streams.codec import build_codec
            from streams.kafka_io import DeliveryError
            from streams.simulator import ProduceError, produce_items
            from streams.topics import AccessRefusedError

            assert settings is not None
            try:
                produce_items(settings, build_codec(settings), sim.items, rate=rate,
                              progress=lambda n: progress.advance(task, n))
            except (ProduceError, AccessRefusedError) as exc:
                raise _fail(str(exc)) from exc
            except (DeliveryError, KafkaException) as exc:
                raise _fail(f"producing to {settings.kafka_bootstrap} failed: {exc}") from exc
            output = f"produced to {settings.kafka_bootstrap}"
        output_s = time.monotonic() - started
    write_truth(sim.truth, truth)
    console.print(summary_table(sim, generated_s=generated_s, output_s=output_s,
                                output=output))
    console.print(persona_table(sim))
    console.print(f"truth: {truth} ({sim.counts.churners:,} of {sim.counts.customers:,} "
                  "customers churned)", highlight=False)


@app.command()
def produce(
    events: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="A history: JSON Lines (docs/events.md) or a CSV "
        "of purchases (docs/backtest.md), as churnwatch backtest reads it.")],
    currency: Currency = "EUR",
    pace: Annotated[float, typer.Option(
        min=0, help="Days of event time per second; 0 produces as fast as possible.")]
    = 7.0,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Send a history file to the input topics in event-time order, a day at a time.

    The history lies in the past: run the workers with CHURN_CLOCK=event. Pacing keeps a
    worker's partitions close in event time, so that none runs so far ahead that the
    others' records fall behind the allowed lateness (docs/operations.md).
    """
    from streams.backtest import (
        HistoryFormatError,
        history_format,
        print_bad_lines,
        read_events,
    )
    from streams.codec import build_codec
    from streams.demo import produce_paced
    from streams.kafka_io import DeliveryError
    from streams.topics import AccessRefusedError

    console = Console(stderr=True)
    try:
        history_format(events)
    except HistoryFormatError as exc:
        raise _fail(str(exc), 2) from exc
    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix)
    _reach(settings)
    records, errors = read_events(events, currency=currency)
    print_bad_lines(events, errors, console)
    if not records:
        raise _fail(f"{events}: no usable records", 2)
    try:
        count = produce_paced(settings, build_codec(settings), list(records), pace=pace,
                              console=console)
    except (DeliveryError, AccessRefusedError) as exc:
        raise _fail(str(exc)) from exc
    customers = len({r["customer_id"] for _, r in records})
    console.print(f"produced {count:,} records for {customers:,} customers to "
                  f"{settings.kafka_bootstrap} ({len(errors):,} bad line(s) skipped)",
                  highlight=False)


@app.command()
def watch(
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning/--from-now", help="Start at the oldest output or at new ones.")]
    = True,
    every_score: Annotated[bool, typer.Option(
        help="Print every health score change, not only band changes.")] = False,
    scenario_seed: Annotated[int | None, typer.Option(
        help="Show the persona of scripted-scenario customers made with this seed.")]
    = None,
) -> None:
    """Print health changes, at-risk, recovered and champion events and dead letters."""
    from streams.codec import build_codec
    from streams.demo import OutputPrinter, watch_outputs
    from streams.topics import BrokerUnreachableError

    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=topic_prefix)
    _reach(settings)
    console = Console()
    printer = OutputPrinter(console, every_score=every_score, seed=scenario_seed)
    try:
        watch_outputs(settings, build_codec(settings), list(OUTPUT_TOPICS), printer,
                      from_beginning=from_beginning)
    except KeyboardInterrupt:
        pass
    except BrokerUnreachableError as exc:
        raise _fail(f"lost the cluster: {exc}") from exc
    console.print(printer.summary.line())


@app.command()
def backtest(
    events: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="Events: JSON Lines (docs/events.md) or a CSV of "
        "purchases (customer id, timestamp, amount; optional order id).")],
    truth: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Ground truth CSV: customer_id, churned, "
        "churned_at.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Evaluate as of this time (ISO date or datetime, UTC); default: the last "
        "event.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for report.json, customers.csv and "
                                      "the plots.")] = Path("backtest-out"),
    currency: Currency = "EUR",
) -> None:
    """Replay a history in event-time order through the workers' own code, in process
    (no broker), and report how early and how well churnwatch warns (docs/backtest.md)."""
    from streams.backtest import HistoryFormatError, NothingToReplayError, backtest_main

    as_of = _parse_time(until, "--until")
    try:
        backtest_main(events, truth, as_of, out, load_settings(clock="event"), Console(),
                      currency=currency)
    except (HistoryFormatError, NothingToReplayError) as exc:
        raise _fail(str(exc)) from exc


@app.command()
def calibrate(
    events: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="The business's history: JSON Lines "
        "(docs/events.md) or a CSV of purchases.")],
    until: Annotated[str, typer.Option(
        help="Use the history up to this time (ISO date or datetime, UTC); nothing after "
        "it is read.")],
    horizon: Annotated[int, typer.Option(
        min=7, help="Days: the score becomes 100 x P(active within this many days).")] = 90,
    out: Annotated[Path, typer.Option(help="The scoring config to write (TOML).")]
    = Path("calibrated.toml"),
    report: Annotated[Path, typer.Option(
        help="Directory for report.json, roc.png and reliability.png.")]
    = Path("calibrate-report"),
    every: Annotated[int, typer.Option(min=1, help="Days between cutoffs.")] = 30,
    precision: Annotated[float | None, typer.Option(
        min=0.05, max=0.99, help="Target precision of the at-risk rule: the share of "
        "flagged customers who then leave (default: halfway between the share who leave "
        "and 1, at least 0.6).")] = None,
    currency: Currency = "EUR",
) -> None:
    """Fit the scoring config to a history: replay it through the workers' code, snapshot
    every customer at cutoffs, fit a points scorecard to who was active within the horizon,
    and check it on held-out cutoffs against simple baselines (docs/scoring.md)."""
    from streams.backtest import HistoryFormatError
    from streams.calibration.run import CalibrationError, calibrate_main

    as_of = _parse_time(until, "--until")
    assert as_of is not None
    try:
        calibrate_main(events, as_of, timedelta(days=horizon), out, report,
                       load_settings(clock="event"), Console(), every=timedelta(days=every),
                       precision=precision, currency=currency)
    except (CalibrationError, HistoryFormatError) as exc:
        raise _fail(str(exc)) from exc


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="Number of scripted customers.")]
    = 300,
    weeks: Annotated[int, typer.Option(min=4, help="Weeks of simulated event time.")] = 12,
    seed: Annotated[int, typer.Option(help="Scenario seed.")] = 7,
    pace: Annotated[float, typer.Option(
        min=0, help="Simulated days per second while producing; 0 for no pacing.")] = 3.0,
    duration: Annotated[float | None, typer.Option(
        min=1, help="Stop after this many seconds of producing and watching.")] = None,
    until_idle: Annotated[bool, typer.Option(
        "--until-idle", help="Stop once everything is produced and no output came for "
                             "--idle-seconds.")] = False,
    idle_seconds: Annotated[float, typer.Option(
        min=1, help="Quiet time after which the demo says the population is replayed (and "
                    "stops, with --until-idle).")] = 20.0,
    every_score: Annotated[bool, typer.Option(
        help="Print every health score change, not only band changes.")] = False,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Keep the temporary directory (broker data, worker log).")] = False,
) -> None:
    """Run the whole pipeline locally on a scripted scenario and show what it finds.

    Starts a Kafka broker (unless CHURN_KAFKA_BOOTSTRAP is set), creates fresh topics,
    starts one worker, produces a few hundred scripted customers over some weeks of
    event time and prints the health changes and alerts as they arrive. Stops on Ctrl-C,
    or by itself with --duration or --until-idle, prints the same summary whichever way it
    stops, and cleans up after itself.
    """
    from streams.demo import DemoOptions, run_demo

    options = DemoOptions(customers=customers, weeks=weeks, seed=seed, pace=pace,
                          duration=duration, until_idle=until_idle,
                          idle_seconds=idle_seconds, every_score=every_score, keep=keep)
    raise typer.Exit(run_demo(load_settings(), options))


def main() -> None:
    """Entry point of the ``churnwatch`` console script.

    An error no command expected is one line and exit code 1; its traceback is shown
    with CHURN_LOG_LEVEL=debug."""
    import logging

    try:
        app()
    except Exception as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] {type(exc).__name__}: {exc} (CHURN_LOG_LEVEL=debug "
            "shows where)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
