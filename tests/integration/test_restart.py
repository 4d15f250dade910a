"""Restarted workers: one replaced on another machine (an empty state directory) recovers
every customer's state from the changelog topics; one killed and started again with the
same CHURN_WORKER_ID takes its partitions back as the same group member."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from streams.codec import build_codec
from streams.kafka_io import collect, produce_records
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_PURCHASES,
    Settings,
)
from streams.topics import ensure_topics
from tests.integration.test_pipeline import login, profile, purchase
from tests.integration.workers import WorkerProcess

pytestmark = pytest.mark.integration


def test_state_survives_a_worker_replaced_with_an_empty_state_dir(
        kafka_bootstrap: str, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    settings = make_settings(kafka_bootstrap=kafka_bootstrap, clock="event",
                             store="rocksdb://", data_dir=first_dir,
                             lapse_check_interval_s=3600)
    ensure_topics(settings)
    codec = build_codec(settings)
    history = [profile("erin")] + [purchase("erin", n, 7.0 * n) for n in range(8)]

    _score_and_stop(settings, codec, history, tmp_path / "first.log")

    replaced = settings.model_copy(update={"data_dir": second_dir})
    second = WorkerProcess(replaced, tmp_path / "second.log")
    try:
        second.wait_ready()
        # the same events again (a producer retrying), then five weeks of silence broken
        # by a login. None counts again: from the recovered state, the latest purchase is
        # a duplicate, and the older ones lie behind the recovered watermark's lateness
        # bound, too late as they would be for a worker that never stopped
        produce_records(settings, codec, history[1:] + [login("erin", 1, 84.0)])
        second.wait_metric("churnwatch_duplicate_events_total", 1, step="purchases")
        second.wait_metric("churnwatch_dead_letters_total", 7, step="purchases",
                           reason="too_late")
        alerts = collect(settings, codec, [TOPIC_AT_RISK], timeout=60, until=bool)
        assert second.metric("churnwatch_events_accepted_total", step="purchases") == 0
    finally:
        second.stop()

    assert [r["event_id"] for _, _, r in alerts] == ["erin:health_at_risk:1"]
    health = collect(settings, codec, [TOPIC_HEALTH], timeout=30,
                     until=lambda got: any(r["band"] == "at_risk" for _, _, r in got))
    bands = [r["band"] for _, _, r in health]
    assert health[0][2]["previous_band"] is None and bands[0] == "healthy"
    assert bands.index("watch") < bands.index("at_risk")  # the silence, checked day by day
    assert sorted(p.name for p in second_dir.iterdir())  # the new worker built its own state


def group_members(admin: AdminClient, group_id: str) -> list[Any]:
    (future,) = admin.describe_consumer_groups([group_id]).values()
    return list(future.result(timeout=30).members)


def test_a_worker_killed_and_restarted_comes_back_as_the_same_group_member(
        make_settings: Callable[..., Settings], admin: AdminClient, tmp_path: Path) -> None:
    settings = make_settings(clock="event", store="rocksdb://", data_dir=tmp_path / "state",
                             worker_id="worker-a", lapse_check_interval_s=3600)
    ensure_topics(settings)
    codec = build_codec(settings)
    purchases = settings.topic(TOPIC_PURCHASES)
    before = [profile("fred"), purchase("fred", 1, 0.0)]

    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        first.wait_ready()
        produce_records(settings, codec, before)
        first.wait_metric("churnwatch_events_applied_total", len(before))
        (member,) = group_members(admin, settings.app_id)
        assert member.group_instance_id == "worker-a"
    finally:
        first.proc.kill()  # kill -9: no goodbye to the group
        first.stop()

    second = WorkerProcess(settings, tmp_path / "second.log")
    try:
        second.wait_ready()
        # the group knows the restarted worker as the member it replaces (static
        # membership), not as a newcomer waiting for the dead one to time out
        (member,) = group_members(admin, settings.app_id)
        assert member.group_instance_id == "worker-a"
        owned = {tp.partition for tp in member.assignment.topic_partitions
                 if tp.topic == purchases}
        assert owned == set(range(settings.partitions))
        # and it goes on where the first one stopped: its state is there (the purchase
        # seen before is a duplicate), and the new one counts
        produce_records(settings, codec, [purchase("fred", 1, 0.0), purchase("fred", 2, 7.0)])
        second.wait_metric("churnwatch_events_accepted_total", 1, step="purchases")
        second.wait_metric("churnwatch_duplicate_events_total", 1, step="purchases")
        assert second.proc.poll() is None
    finally:
        second.stop()


def test_a_worker_restarted_after_the_input_ended_goes_on_with_its_watermarks(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    # a backfill on the event clock: gina stops buying on day 42, hank's history runs to
    # day 120; the first worker runs no silence check, then stops after the input ended
    settings = make_settings(clock="event", store="rocksdb://", data_dir=tmp_path / "first",
                             lapse_check_interval_s=3600)
    ensure_topics(settings)
    codec = build_codec(settings)
    history = sorted([profile("gina"), profile("hank")]
                     + [purchase("gina", n, 7.0 * n) for n in range(7)]
                     + [purchase("hank", n, 10.0 * n) for n in range(13)],
                     key=lambda item: item[1]["occurred_at"])
    _score_and_stop(settings, codec, history, tmp_path / "first.log")

    # restarted elsewhere (an empty state directory), with no new input: its silence
    # checks go on from the kept watermark, so gina's silence is caught
    restarted = settings.model_copy(update={"data_dir": tmp_path / "second",
                                            "lapse_check_interval_s": 0.5})
    second = WorkerProcess(restarted, tmp_path / "second.log")
    try:
        second.wait_ready()
        alerts = collect(settings, codec, [TOPIC_AT_RISK], timeout=60, until=bool)
        assert [r["event_id"] for _, _, r in alerts] == ["gina:health_at_risk:1"]
        # and its lateness bound holds: a purchase far behind hank's watermark is too late
        produce_records(settings, codec, [purchase("hank", 99, 10.0)])
        letters = collect(settings, codec, [TOPIC_DEAD_LETTER], timeout=60, until=bool)
        assert [(r["event_id"], r["reason"]) for _, _, r in letters] == [("hank-p-99",
                                                                           "too_late")]
    finally:
        second.stop()


def _score_and_stop(settings, codec, history, log) -> None:
    """A worker that reads ``history`` to the end of its scoring, then stops cleanly."""
    worker = WorkerProcess(settings, log)
    try:
        worker.wait_ready()
        produce_records(settings, codec, history)
        worker.wait_metric("churnwatch_events_applied_total", len(history))
    finally:
        assert worker.stop() == 0, worker.log_tail()
