"""Fault scenarios: the simulator's feed through real workers while something goes wrong
gives the same alerts (event ids) and final bands as the backtest of the same file, and
dead-letters exactly the records that are no usable event (see tests/faults/harness.py;
bench/faults.py prints the same rows as a table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import harness
from tests.faults.harness import Row

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]


def check(row: Row) -> None:
    print(harness.table([row]))
    assert (row.lost, row.extra, row.band_mismatches, row.wrong_letters,
            row.customer_outputs_differ) == (0, 0, 0, 0, 0), harness.with_detail(row)
    assert row.expected >= 20  # the population has churners and champions to compare


@pytest.mark.parametrize("how", ["unpaced", "paced", "paced-1-day-per-s",
                                 "engagement-behind", "cpu-load"])
def test_the_arrival_pace_changes_nothing(kafka_bootstrap: str, tmp_path: Path,
                                          how: str) -> None:
    check(harness.pace(kafka_bootstrap, tmp_path, how))


def test_a_worker_killed_mid_stream_and_restarted_loses_nothing(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    row = harness.kill9_midstream(kafka_bootstrap, tmp_path)
    check(row)
    assert len(row.ready_after_restart_s) == 3


def test_a_worker_killed_after_the_input_ended_goes_on_with_its_silence_checks(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    row = harness.restart_after_end(kafka_bootstrap, tmp_path)
    check(row)
    assert len(row.ready_after_restart_s) == 1


def test_a_burst_delivered_twice_around_a_crash_counts_once(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    check(harness.redelivery(kafka_bootstrap, tmp_path))


def test_poison_records_are_dead_lettered_with_their_reason(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    row = harness.poison(kafka_bootstrap, tmp_path)
    check(row)
    assert sum(row.letters.values()) >= 2000 * 5  # per input topic of the feed (five)
    assert row.letters.get("too_large") == 3


def test_a_rebalance_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    check(harness.rebalance(kafka_bootstrap, tmp_path))


def test_workers_carry_on_after_a_broker_restart(tmp_path: Path) -> None:
    check(harness.broker_restart(tmp_path))


def test_a_record_a_year_ahead_is_dead_lettered_as_a_clock_outlier(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    row = harness.clock_outlier(kafka_bootstrap, tmp_path)
    check(row)
    assert row.letters.get("clock_outlier") == 1
