"""``churnwatch backtest``: read, replay, score and report, with what it prints on the way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.backtest.inputs import (
    LAZY_READ_ABOVE_BYTES,
    NothingToReplayError,
    load_truth,
    read_events,
    written_by_the_simulator,
)
from streams.backtest.replay import BacktestResult, run_backtest
from streams.backtest.report import summary_table, write_report
from streams.domain.events import Rejection
from streams.purchases_csv import LineError
from streams.settings import Settings


def print_bad_lines(path: Path, errors: Sequence[LineError], console: Console,
                    shown: int = 10) -> None:
    """The first ``shown`` lines of ``path`` that could not be read, and how many more."""
    for error in errors[:shown]:
        console.print(f"[yellow]{path}:{error.line}: {error.message}[/yellow]", highlight=False)
    if len(errors) > shown:
        console.print(f"[yellow]... and {len(errors) - shown:,} more bad lines[/yellow]")


def _print_rejections(rejections: Sequence[Rejection], console: Console) -> None:
    """How many records the workers' checks refused, per reason, with the first example."""
    first: dict[str, Rejection] = {}
    counts: Counter[str] = Counter()
    for rejection in rejections:
        first.setdefault(rejection.reason, rejection)
        counts[rejection.reason] += 1
    for reason, count in counts.most_common():
        example = first[reason]
        console.print(f"[yellow]rejected {count:,} record(s) as {reason}, e.g. "
                      f"{example.event_id}: {example.error}[/yellow]")


def _print_intended_noise(errors: Sequence[LineError], rejections: Sequence[Rejection],
                          console: Console) -> None:
    """One line for the bad lines and rejected records of a simulated history: the
    simulator put them there on purpose, to show that they are refused and counted."""
    reasons = Counter(rejection.reason for rejection in rejections)
    by_reason = ", ".join(f"{reason} {n:,}" for reason, n in reasons.most_common())
    console.print(f"[dim]the simulator's intended noise, refused as a worker would: "
                  f"{len(errors):,} malformed line(s) skipped, {len(rejections):,} invalid "
                  f"record(s) rejected{f' ({by_reason})' if by_reason else ''}[/dim]",
                  highlight=False)


def backtest_main(events: Path, truth: Path | None, until: datetime | None, out_dir: Path,
                  settings: Settings, console: Console, *,
                  currency: str = "EUR") -> BacktestResult:
    """Read, replay, score and report: what ``churnwatch backtest`` runs.

    Nothing is written to ``out_dir`` when the run fails: :class:`HistoryFormatError` for
    a file of neither format, :class:`NothingToReplayError` when no record was usable."""
    records, errors = read_events(events, currency=currency,
                                  lazy=events.stat().st_size > LAZY_READ_ABOVE_BYTES)
    simulated = truth is not None and written_by_the_simulator(truth)
    if not records or not simulated:
        print_bad_lines(events, errors, console)
    if not records:
        raise NothingToReplayError(f"{events}: no usable records (see the lines above)")
    facts = load_truth(truth) if truth is not None else None
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("replay", total=len(records))
        result = run_backtest(records, settings, truth=facts, until=until,
                              progress=lambda done: bar.update(task, completed=done))
    result.load_errors = errors
    if simulated and result.start is not None:
        _print_intended_noise(errors, result.rejections, console)
    else:
        _print_rejections(result.rejections, console)
    if result.events == 0:
        raise NothingToReplayError(f"{events}: no record lies at or before --until "
                                   f"{until.isoformat() if until else ''}")
    if result.start is None:
        raise NothingToReplayError(f"{events}: no record passed the workers' checks (see "
                                   "the rejections above)")
    write_report(result, out_dir)
    console.print(summary_table(result))
    console.print(f"report written to {out_dir}")
    return result
