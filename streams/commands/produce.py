"""The commands that write input records, to the input topics or to JSON Lines:
``produce-scenario``, ``simulate`` and ``produce``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.commands.common import (
    Bootstrap,
    Currency,
    Prefix,
    _fail,
    _parse_time,
    _reach,
    load_settings,
)


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
