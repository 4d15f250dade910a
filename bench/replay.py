"""Replay speed: events per second of the in-process replay on two kinds of history.

- ``simulated``: the simulator's population (default: 10,000 customers over 12 months,
  seed 42), every event family, as ``churnwatch simulate`` writes it;
- ``purchases``: a purchase-only history with long silences, where the silence checks of
  customers who lapsed long ago are most of the work. By default a synthetic one shaped
  like the CDNOW panel's first 9 months (about 23,570 shoppers acquired in the first 12
  weeks, 49,000 purchases, most customers buying once or twice), generated here from a
  seed; ``--csv`` replays a real purchases CSV instead (customer id, date, amount).

Each history is replayed with ``run_backtest`` (what ``churnwatch backtest`` runs, records
already in memory) and compared with a baseline measured in the same run on the same
records: validating each record into a domain event (``parse_event``), with no state and
no scoring, the floor of any replay. The ratio replay / baseline is comparable across
machines; the figures are printed, never asserted. The first line says whether the domain
modules run compiled (mypyc, see setup.py) or as pure Python.

    .venv/bin/python bench/replay.py [--customers N] [--months M] [--seed S]
                                     [--csv purchases.csv] [--only simulated|purchases]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.backtest import InputRecord, read_events, run_backtest
from streams.domain.events import InvalidEvent
from streams.families import parse_event
from streams.native import compiled_modules
from streams.settings import Settings
from streams.simulator import SimulationConfig, simulate, write_jsonl

#: The synthetic purchase history: CDNOW's first 9 months in shape (a cohort acquired in
#: the first 12 weeks, then sparse repeat purchases and long silences).
SHOPPERS = 23_570
START = datetime(1997, 1, 1, tzinfo=UTC)
DAYS = 273
ACQUIRED_WITHIN_D = 84


def purchase_history(seed: int, shoppers: int = SHOPPERS) -> list[InputRecord]:
    """A deterministic purchase-only history, sorted by event time: each shopper buys
    first within ``ACQUIRED_WITHIN_D`` days, then, while it stays, again after gaps drawn
    around its own rhythm; most never come back."""
    rng = random.Random(seed)
    records: list[InputRecord] = []
    for n in range(shoppers):
        customer = f"{n + 1:05d}"
        day = rng.uniform(0, ACQUIRED_WITHIN_D)
        rhythm = rng.lognormvariate(3.7, 0.6)  # days between purchases, median ~40
        stay = rng.random() * 0.9  # chance to buy again after each purchase
        order = 0
        while day < DAYS:
            at = START + timedelta(days=int(day))
            records.append(("Purchase", {
                "event_id": f"{customer}-{order}", "customer_id": customer, "occurred_at": at,
                "order_id": f"{customer}-o{order}",
                "amount_minor": int(rng.lognormvariate(7.8, 0.8)), "currency": "USD",
                "items": 1 + int(rng.expovariate(0.7)), "channel": "web"}))
            order += 1
            if rng.random() > stay:
                break
            day += max(1.0, rng.expovariate(1 / rhythm))
    records.sort(key=lambda r: r[1]["occurred_at"])
    return records


def simulated_history(customers: int, months: float, seed: int) -> list[InputRecord]:
    """The simulator's population read back as ``churnwatch backtest`` reads its JSON Lines
    (sorted by event time; the malformed lines it holds on purpose are skipped)."""
    sim = simulate(SimulationConfig(customers=customers, months=months, seed=seed))
    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        write_jsonl(sim.items, path)
        records, _ = read_events(path)
    return list(records)


def baseline_rate(records: Sequence[tuple[str, Any]]) -> float:
    """Records per second validated into domain events: no state, no scoring."""
    started = time.process_time()
    for type_name, record in records:
        try:
            parse_event(type_name, record)
        except InvalidEvent:
            pass
    return len(records) / max(time.process_time() - started, 1e-9)


def measure(name: str, records: Sequence[InputRecord]) -> None:
    base = baseline_rate(records)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_backtest(records, Settings(_env_file=None, clock="event"))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    rate = len(records) / max(cpu, 1e-9)
    counts = result.output_counts
    print(f"\n{name}: {len(records):,} records, {len(result.customers):,} customers, "
          f"{sum(counts.values()):,} outputs ({counts.get('HealthScoreChanged', 0):,} "
          f"HealthScoreChanged)")
    print(f"  replay (run_backtest)        {rate:>12,.0f} events/s   "
          f"({cpu:.1f} s CPU, {wall:.1f} s wall)")
    print(f"  baseline (parse_event only)  {base:>12,.0f} events/s")
    print(f"  ratio replay / baseline      {rate / base:>12.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000,
                        help="simulated customers (default: the simulator's 10,000)")
    parser.add_argument("--months", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--csv", type=Path, help="a purchases CSV to replay as the "
                        "purchase-only history instead of the synthetic one")
    parser.add_argument("--only", choices=("simulated", "purchases"))
    args = parser.parse_args()
    compiled = compiled_modules()
    print(f"domain code: compiled with mypyc ({len(compiled)} modules)" if compiled
          else "domain code: pure Python")
    if args.only != "purchases":
        started = time.perf_counter()
        records = simulated_history(args.customers, args.months, args.seed)
        print(f"simulated {args.customers:,} customers over {args.months:g} months "
              f"(seed {args.seed}) in {time.perf_counter() - started:.1f} s")
        measure("simulated population", records)
    if args.only != "simulated":
        if args.csv is not None:
            purchases, errors = read_events(args.csv, currency="USD")
            label = f"purchases from {args.csv} ({len(errors):,} bad lines skipped)"
        else:
            purchases = purchase_history(args.seed)
            label = f"synthetic purchases (seed {args.seed})"
        measure(label, purchases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
