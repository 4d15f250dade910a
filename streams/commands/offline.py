"""The commands that replay a history in process, with no broker: ``backtest`` and
``calibrate``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streams.commands.common import Currency, _fail, _parse_time, load_settings


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
