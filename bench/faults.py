"""Fault benchmark: the scenarios of tests/faults, one after another, as a table.

Each scenario feeds a seeded simulated population (250 customers over 80 days) to real
workers on the event clock while something goes wrong (the arrival pace, kill -9, a burst
delivered twice, poison records, a rebalance, a broker restart, a record a year ahead),
and compares what they publish with the in-process backtest of the same input file:
output event ids expected, got, lost, extra and re-sent, final bands that differ, dead
letters by reason (and those that should not be there), seconds until a restarted worker
was ready, and each scenario's wall time. tests/faults asserts on the same rows.

    PYTHONPATH=. .venv/bin/python bench/faults.py [SCENARIO ...]

Uses the broker of ``CHURN_KAFKA_BOOTSTRAP`` if set, else starts a local one (the
broker-restart scenario always starts its own).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.faults, from a checkout

from streams.processes import bench_broker  # noqa: E402
from tests.faults.harness import SCENARIOS, Row, table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[],
                        metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (all)")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    # the harness's own clients retry through the broker-restart outage: not news here
    logging.getLogger("churnwatch.kafka").setLevel(logging.ERROR)
    rows: list[Row] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="churnwatch-faults-") as tmp:
        workdir = Path(tmp)
        with bench_broker(workdir) as bootstrap:
            for name in names:
                try:
                    row = SCENARIOS[name](bootstrap, workdir)
                except AssertionError as exc:  # a worker died or never got ready
                    row = Row(name, detail=[str(exc)])
                rows.append(row)
                print(table([row]).splitlines()[1], flush=True)
    print()
    print(table(rows))
    print(f"\n{len(rows)} scenarios in {time.monotonic() - began:.0f} s; "
          f"{sum(not r.ok for r in rows)} differ from the backtest")
    for row in rows:
        if not row.ok or not row.expected:
            print(f"\n{row.scenario}:\n" + "\n".join(d[:2000] for d in row.detail))
    return 0 if all(r.ok and r.expected for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
