"""The compiled build (mypyc, see setup.py) against pure Python: the same records give the
same outputs and the same stored states, and no extension is older than its source."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import streams
from streams.native import stale_extensions

#: Replays a small simulated history and a purchase-only one, and prints a digest of
#: everything a replay produces: its outputs in order, the final scores, the ranking and
#: every table value as a worker stores it.
REPLAY = """
import hashlib, json, sys, tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import streams.backtest.replay as replay
from streams.backtest import read_events, run_backtest
from streams.settings import Settings
from streams.simulator import SimulationConfig, simulate, write_jsonl

pipelines = []

class Kept(replay.LocalPipeline):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pipelines.append(self)

replay.LocalPipeline = Kept


def purchases():
    start, out = datetime(2024, 1, 1, tzinfo=UTC), []
    for n in range(80):
        for k in range(n % 5 + 1):
            out.append(("Purchase", {
                "event_id": f"p{n}-{k}", "customer_id": f"c{n}", "order_id": f"o{n}-{k}",
                "occurred_at": start + timedelta(days=n % 17 + 23 * k + n % 3 * 9 * k),
                "amount_minor": 500 + 37 * n, "currency": "USD", "items": 1,
                "channel": "web"}))
    return sorted(out, key=lambda r: r[1]["occurred_at"])


with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "events.jsonl"
    write_jsonl(simulate(SimulationConfig(customers=40, months=5, seed=11)).items, path)
    simulated, _ = read_events(path)
digest = {}
for name, records in (("simulated", list(simulated)), ("purchases", purchases())):
    result = run_backtest(records, Settings(_env_file=None, clock="event"), keep_outputs=True)
    tables = pipelines[-1].tables
    seen = repr((result.outputs, sorted(result.finals.items()), result.ranking,
                 sorted((t, sorted(v.items())) for t, v in tables.items())))
    digest[name] = [len(result.outputs), hashlib.sha256(seen.encode()).hexdigest()]
print(json.dumps(digest))
"""


def _replay(path: Path) -> dict[str, list[object]]:
    """REPLAY's digests with the package found first in ``path`` (-P: not in the
    current directory)."""
    done = subprocess.run([sys.executable, "-P", "-c", REPLAY], env={"PYTHONPATH": str(path)},
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_compiled_replay_publishes_and_stores_what_pure_python_does(tmp_path: Path):
    """mypyc runs typed code with its own semantics where Python's differ (an int in a
    variable typed float becomes a float): the outputs and the stored states must not
    show it. Without compiled modules this compares pure Python with itself."""
    package = Path(streams.__file__).parent
    source = tmp_path / "src"
    shutil.copytree(package, source / "streams",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    as_installed = _replay(package.parent)
    pure = _replay(source)
    assert pure["simulated"][0] > 100 and pure["purchases"][0] > 100
    assert as_installed == pure


def test_no_compiled_module_is_older_than_its_source():
    """An editable install builds extensions next to their sources, where they are
    imported instead: one built before its source changed runs the old code."""
    assert stale_extensions() == [], "reinstall (make venv) or delete the stale extensions"

