"""Calibration benchmark: does a score fitted on the past rank and warn better on the
future, and how long does the fit take?

Without ``--events`` it simulates the default population (10,000 customers over 12 months,
seed 42) with its truth file; ``--until`` defaults to six months after the first record and
``--horizon`` to 60 days. It then

1. runs ``churnwatch calibrate`` on the history up to ``--until`` (timed: the target is
   5 minutes on the default population; the baseline measured in the same run is reading
   the history, which calibration must do anyway);
2. backtests the whole history with the calibrated config and with the packaged default,
   and prints, for the cutoffs after ``--until`` only (held out: the fit never saw them),
   the AUC and the precision in the riskiest 10% for "no purchase or engagement within the
   horizon", against days since the last activity;
3. with a truth file, the alert figures for the churners of the held-out months: precision
   before churn, recall and median lead time.

    .venv/bin/python bench/calibrate.py [--events FILE --until DATE] [--horizon DAYS]
        [--truth FILE] [--currency USD]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from streams.backtest import classify, load_truth, read_events, run_backtest
from streams.calibration.run import calibrate_main
from streams.settings import Settings
from streams.simulator import SimulationConfig, simulate, write_jsonl, write_truth

TARGET_SECONDS = 300.0


def held_out(ranking: dict[str, Any] | None, until: datetime) -> list[dict[str, Any]]:
    if ranking is None:
        return []
    return [c for c in ranking["cutoffs"]
            if datetime.fromisoformat(c["at"]).replace(tzinfo=UTC) > until]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--until")
    parser.add_argument("--horizon", type=int, default=60)
    parser.add_argument("--currency", default="EUR")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="churnwatch-calibrate-bench-"))
    events, truth_path = args.events, args.truth
    if events is None:
        sim = simulate(SimulationConfig(seed=42))
        events, truth_path = work / "events.jsonl", work / "truth.csv"
        write_jsonl(sim.items, events)
        write_truth(sim.truth, truth_path)
        print(f"simulated the default population: {sim.counts.delivered:,} records in "
              f"{events}")
    started = time.perf_counter()
    records, _ = read_events(events, currency=args.currency)
    read_s = time.perf_counter() - started
    first: datetime = records[0][1]["occurred_at"]
    until = (datetime.fromisoformat(args.until).replace(tzinfo=UTC) if args.until
             else first + timedelta(days=182))
    horizon = timedelta(days=args.horizon)
    config = work / "calibrated.toml"
    started = time.perf_counter()
    calibrate_main(events, until, horizon, config, work / "report", Settings(),
                   Console(width=100), currency=args.currency)
    fit_s = time.perf_counter() - started
    print(f"\ncalibrate: {fit_s:.0f} s (target {TARGET_SECONDS:.0f} s: "
          f"{fit_s / TARGET_SECONDS:.2f} of it); reading the history alone: {read_s:.0f} s "
          f"(calibrate / read = {fit_s / read_s:.1f})")
    truth = load_truth(truth_path) if truth_path is not None else None
    rows = []
    for name, settings in (("calibrated", Settings(clock="event", scoring_config=config)),
                           ("default", Settings(clock="event"))):
        result = run_backtest(records, settings, truth=truth, horizon=horizon)
        cutoffs = held_out(result.ranking, until)
        row: dict[str, Any] = {
            "config": name, "cutoffs": len(cutoffs),
            "auc": mean([c["auc"] for c in cutoffs if c["auc"] is not None]),
            "p10": mean([c["precision_top10"] for c in cutoffs
                         if c["precision_top10"] is not None]),
            "days_auc": mean([c["baseline_days_since_auc"] for c in cutoffs
                              if c["baseline_days_since_auc"] is not None])}
        if truth is not None:
            later = {c: t for c, t in truth.items()
                     if not t.churned or (t.churned_at is not None and t.churned_at > until)}
            starts = {c: [s for s in times if s > until]
                      for c, times in result.alert_starts().items()}
            confusion = classify(starts, later, horizon)
            lead = sorted(confusion.lead_days)
            row.update(precision=confusion.precision, recall=confusion.recall,
                       lead=lead[len(lead) // 2] if lead else None)
        rows.append(row)
    print(f"\nheld out: cutoffs after {until:%Y-%m-%d}, left = no activity within "
          f"{horizon.days} days (mean over cutoffs)")
    print(f"{'config':<12}{'cutoffs':>8}{'AUC':>8}{'top 10%':>9}{'days AUC':>10}"
          + (f"{'precision':>11}{'recall':>8}{'lead d':>8}" if truth is not None else ""))
    for row in rows:
        line = (f"{row['config']:<12}{row['cutoffs']:>8}{_f(row['auc']):>8}{_f(row['p10']):>9}"
                f"{_f(row['days_auc']):>10}")
        if truth is not None:
            line += f"{_f(row['precision']):>11}{_f(row['recall']):>8}{_f(row['lead']):>8}"
        print(line)
    print(f"\nfiles in {work}")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
