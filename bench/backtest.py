"""Backtest benchmark: how well and how fast churnwatch warns on the simulated population.

Generates the simulator's population (default: 10,000 customers over 12 months, seed 42),
writes it as JSON Lines with its truth file, then runs the backtest exactly as
``churnwatch backtest`` does and prints:

- quality against the truth: precision, recall, F1, lead time, false alerts, flapping;
- throughput of the replay on one core, against a baseline measured in the same run:
  decoding and validating every record (``parse_event``) without any state or scoring,
  the floor of any replay of the same input;
- memory: the process's peak resident set size, and its resident set size just before
  and after the replay (the replay folds its outputs as it goes, so what it adds grows with
  customers and alerts, not with evaluations);
- with ``--profile``, where the replay spends its time.

    .venv/bin/python bench/backtest.py [--customers N] [--months M] [--seed S] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

from streams.backtest import load_truth, read_events, report_dict, run_backtest
from streams.domain.events import InvalidEvent
from streams.families import parse_event
from streams.settings import Settings
from streams.simulator import SimulationConfig, simulate, write_jsonl, write_truth

TARGETS = {"precision": 0.8, "recall": 0.8, "median_lead_days": 14.0,
           "events_per_s": 200_000.0}


#: Records the baseline validates: a sample, read into memory before it is timed (the replay
#: reads the history as `churnwatch backtest` does, parsing each line as it goes).
BASELINE_SAMPLE = 100_000


def baseline_rate(records: list[tuple[str, dict]]) -> float:
    """Records per second validated into domain events: no state, no scoring."""
    started = time.perf_counter()
    for type_name, record in records:
        try:
            parse_event(type_name, record)
        except InvalidEvent:
            pass
    return len(records) / (time.perf_counter() - started)


def rss_mb() -> float | None:
    """The resident set size now, in MB (Linux only: None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MB (ru_maxrss is in KB on
    Linux, in bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def simulate_to(args: argparse.Namespace, events: Path, truth_path: Path) -> None:
    started = time.perf_counter()
    sim = simulate(SimulationConfig(customers=args.customers, months=args.months,
                                    seed=args.seed))
    write_jsonl(sim.items, events)
    write_truth(sim.truth, truth_path)
    print(f"simulated {args.customers:,} customers over {args.months:g} months "
          f"(seed {args.seed}): {len(sim.items):,} records, "
          f"{sim.counts.churners:,} churners, in {time.perf_counter() - started:.1f} s",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true", help="print the replay's hot path")
    parser.add_argument("--lazy", action="store_true",
                        help="read the history lazily, as `churnwatch backtest` reads a "
                             "file over LAZY_READ_ABOVE_BYTES")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    """Simulate into ``tmp``, replay the history from there (read as the CLI reads it), and
    print the figures."""
    events, truth_path = tmp / "events.jsonl", tmp / "truth.csv"
    # simulated in a child process, so that this one's memory is the backtest's alone
    child = multiprocessing.get_context("fork").Process(
        target=simulate_to, args=(args, events, truth_path))
    child.start()
    child.join()
    if child.exitcode != 0:
        print(f"the simulation failed (exit code {child.exitcode})", file=sys.stderr)
        return 1
    records, errors = read_events(events, lazy=args.lazy)
    truth = load_truth(truth_path)

    base = baseline_rate(records[:BASELINE_SAMPLE])
    settings = Settings(_env_file=None, clock="event")
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    rss_before = rss_mb()
    result = run_backtest(records, settings, truth=truth)
    rss_after = rss_mb()
    if profiler is not None:
        profiler.disable()
    result.load_errors = errors
    report = report_dict(result)
    facts = report["truth"]
    lead = facts["lead_time_days"]

    print(f"\nquality (config {report['config_version']}, {facts['customers']:,} customers, "
          f"{facts['churned']:,} churned, horizon {facts['horizon_days']:g} d)")
    rows = [
        ("precision", facts["precision"], TARGETS["precision"]),
        ("recall", facts["recall"], TARGETS["recall"]),
        ("median lead time (days)", lead["median"], TARGETS["median_lead_days"]),
    ]
    for name, value, target in rows:
        verdict = "n/a" if value is None else ("meets" if value >= target else "BELOW")
        shown = "-" if value is None else f"{value:.3f}"
        print(f"  {name:<26} {shown:>9}   target >= {target:g}: {verdict}")
    print(f"  {'F1':<26} {facts['f1']!s:>9}")
    print(f"  {'lead time p10 / p90 (days)':<26} {lead['p10']!s:>9} / {lead['p90']!s}")
    print(f"  {'false alerts /1000/month':<26} "
          f"{facts['false_alerts_per_1000_per_month']!s:>9}")
    print(f"  {'flapping rate':<26} {report['flapping_rate']!s:>9}")
    print(f"  bad lines {len(errors):,}, rejected {report['counts']['rejected']:,} "
          f"{report['counts']['rejected_by_reason']}")

    rate = result.events_per_s
    print(f"\nthroughput (one core, {result.events:,} records, "
          f"{result.elapsed_s:.1f} s{' under the profiler' if profiler else ''})")
    print(f"  baseline: validate records only     {base:>12,.0f} events/s")
    print(f"  backtest replay                     {rate:>12,.0f} events/s")
    print(f"  ratio replay / baseline             {rate / base:>12.3f}")
    print(f"  ratio replay / target (200,000/s)   {rate / TARGETS['events_per_s']:>12.3f}")
    print(f"\nmemory: RSS before the replay {_mb(rss_before)}, after it {_mb(rss_after)}, "
          f"peak {_mb(peak_rss_mb())}")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("\nhot path (own time):")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
