"""The commands that run or watch the pipeline on Kafka: ``worker``, ``topics``, ``watch``
and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.commands.common import Bootstrap, Prefix, _fail, _reach, load_settings
from streams.settings import OUTPUT_TOPICS


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
