"""A worker that is stopped and replaced on another machine (an empty state directory)
recovers every customer's state from the changelog topics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streams.codec import build_codec
from streams.kafka_io import collect, produce_records
from streams.settings import TOPIC_AT_RISK, TOPIC_HEALTH, Settings
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

    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        first.wait_ready()
        produce_records(settings, codec, history)
        first.wait_metric("churnwatch_events_consumed_total", len(history), step="scorer")
    finally:
        assert first.stop() == 0, first.log_tail()

    replaced = settings.model_copy(update={"data_dir": second_dir})
    second = WorkerProcess(replaced, tmp_path / "second.log")
    try:
        second.wait_ready()
        # the same events again (a producer retrying), then five weeks of silence broken
        # by a login: the purchases are recognised as duplicates from recovered state
        produce_records(settings, codec, history[1:] + [login("erin", 1, 84.0)])
        second.wait_metric("churnwatch_duplicate_events_total", 8, step="purchases")
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
