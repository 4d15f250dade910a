"""`churnwatch worker --processes N`: N worker processes in one consumer group, each with
its own web port and state directory, sharing the partitions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streams.codec import build_codec
from streams.kafka_io import produce_records
from streams.processes import WorkerWeb
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.integration.test_pipeline import profile, purchase
from tests.integration.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration


def test_two_processes_share_the_partitions_and_process_everything(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(clock="event", partitions=4, data_dir=tmp_path / "state",
                             lapse_check_interval_s=3600)
    ensure_topics(settings)
    group = WorkerProcess(settings, tmp_path / "group.log",
                          args=("-m", "streams.cli", "worker", "--processes", "2"))
    # one view per process, on its own port
    views = [WorkerWeb(f"http://127.0.0.1:{settings.web_port + i}") for i in range(2)]
    try:
        wait_for(lambda: all((v.get("/ready") or (0,))[0] == 200 for v in views),
                 timeout=120, what="both processes ready", on_timeout=group.log_tail)
        customers = [f"c{n}" for n in range(20)]
        records = [r for c in customers for r in (profile(c), purchase(c, 1, 1.0))]
        produce_records(settings, build_codec(settings), records)
        wait_for(lambda: sum(v.metric("churnwatch_events_applied_total") for v in views)
                 >= len(records), timeout=90, what="every record applied by the group",
                 on_timeout=group.log_tail)
        # the partitions are shared: both processes applied some
        assert all(v.metric("churnwatch_events_applied_total") > 0 for v in views)
        assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
            "process-0", "process-1"]
    finally:
        assert group.stop() == 0, group.log_tail()
