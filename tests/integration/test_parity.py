"""Parity: the simulator's noisy feed through real Kafka workers and through the backtest
raises the same at-risk alerts (the same event ids)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.backtest import read_events, run_backtest
from streams.codec import build_codec
from streams.families import REGISTRY
from streams.kafka_io import collect
from streams.settings import TOPIC_AT_RISK, Settings
from streams.simulator import Malformed, SimulationConfig, simulate, write_jsonl

pytestmark = pytest.mark.integration

FEATURE_STEPS = tuple(f.step for f in REGISTRY)


def _type_of(item: Any) -> str:
    return item.type_name if isinstance(item, Malformed) else item[0]


def _purchases(items: list[Any]) -> list[Any]:
    return [item for item in items if _type_of(item) == "Purchase"]


@pytest.fixture(scope="module")
def calibrated_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scoring config written by ``churnwatch calibrate`` on another simulated history,
    its purchases only (as a shop's export would be)."""
    from rich.console import Console

    from streams.calibration.run import calibrate_main

    tmp = tmp_path_factory.mktemp("calibrated")
    sim = simulate(SimulationConfig(customers=300, days=200, seed=5))
    path = tmp / "history.jsonl"
    write_jsonl(_purchases(sim.items), path)
    records, _ = read_events(path)
    until = records[-1][1]["occurred_at"]
    out = tmp / "calibrated.toml"
    calibrate_main(path, until, timedelta(days=45), out, tmp / "report", Settings(),
                   Console(quiet=True))
    return out


@pytest.fixture(params=["default", "calibrated"])
def settings(request: pytest.FixtureRequest,
             event_settings: Callable[..., Settings]) -> Settings:
    overrides: dict[str, Path] = {}
    if request.param == "calibrated":
        overrides["scoring_config"] = request.getfixturevalue("calibrated_config")
    return event_settings(lapse_check_interval_s=1.0, gauges_interval_s=5.0, **overrides)


def test_worker_and_backtest_raise_the_same_at_risk_alerts(settings, worker, tmp_path: Path):
    # duplicates, late arrivals within the allowed lateness, malformed and invalid records;
    # records later than the allowed lateness are left out: a worker drops them (it has
    # moved on), while the backtest, reading a whole file in event-time order, keeps them
    sim = simulate(SimulationConfig(customers=150, days=150, seed=11, very_late_share=0.0))
    assert sim.counts.duplicates and sim.counts.late and sim.counts.malformed
    assert sim.counts.invalid
    # every family: the worker applies each customer's records in event-time order,
    # whichever topic it reads first, so scores that sit on a threshold move as in the
    # backtest
    keep = list

    # the backtest of the same feed, written and read as a file
    path = tmp_path / "events.jsonl"
    write_jsonl(keep(sim.items), path)
    records, _ = read_events(path)
    # a replaying worker that has read all its input runs the silence checks up to the
    # latest event time, as the backtest does at its end
    result = run_backtest(records, settings)
    expected = sorted(r["event_id"] for r in result.of_type("CustomerAtRisk"))
    assert len(expected) >= 10  # the population has churners: something to compare
    assert result.config_version.startswith(
        "calibrated-" if settings.scoring_config is not None else "default-")

    # the feed to the workers in arrival order, one arrival day at a time; each day waits
    # until the worker has read all but the last two, as a live feed would be read
    from streams.simulator import produce_items

    codec = build_codec(settings)

    def consumed() -> float:
        return sum(worker.metric("churnwatch_events_consumed_total", step=s)
                   for s in FEATURE_STEPS)

    produced: list[int] = []
    for _, day in sim.arrival_days():
        batch = keep(day)
        if not batch:
            continue
        if len(produced) >= 2:
            need = produced[-2]
            worker.wait_metric("churnwatch_events_consumed_total", 0)  # worker alive
            _wait(lambda need=need: consumed() >= need, worker)
        total = (produced[-1] if produced else 0) + produce_items(settings, codec, batch)
        produced.append(total)
    _wait(lambda: consumed() >= produced[-1], worker)

    alerts = collect(settings, codec, [TOPIC_AT_RISK], timeout=120,
                     until=lambda got: len(got) >= len(expected))
    got = sorted(r["event_id"] for _, _, r in alerts)
    assert got == expected
    # and no more: the silence checks up to the final watermark have all run (the due
    # index holds only checks after it), and the worker published exactly these alerts
    _wait(lambda: worker.metric("churnwatch_lapse_checks_total") > 0, worker)
    assert worker.metric("churnwatch_at_risk_total") == len(expected)
    dead = worker.metric("churnwatch_dead_letters_total")
    if settings.scoring_config is None:
        assert dead >= sim.counts.malformed + sim.counts.invalid  # every bad record routed
    else:
        assert dead >= sum(isinstance(item, Malformed) for item in keep(sim.items)) > 0


def _wait(check: Callable[[], bool], worker) -> None:
    from tests.integration.workers import wait_for

    wait_for(check, timeout=120, what="the worker reads the feed", on_timeout=worker.log_tail)
