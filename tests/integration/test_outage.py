"""A broker that goes away under a running worker and comes back: the worker says so once,
reports not ready meanwhile, and carries on by itself when the broker returns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.codec import build_codec
from streams.kafka_io import produce_records
from streams.processes import free_port, owned_env, start_broker, stop_broker
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.integration.test_pipeline import profile, purchase
from tests.integration.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration


class Broker:
    """A broker of this test alone (the session's is shared), on fixed ports so that it
    comes back on the same address and data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = owned_env(CHURN_KAFKA_PORT=str(free_port()),
                             CHURN_KAFKA_CONTROLLER_PORT=str(free_port()))

    def start(self) -> str:
        return start_broker(self.directory, env=self.env, timeout=300)

    def stop(self) -> None:
        problem = stop_broker(self.directory, env=self.env, timeout=300)
        assert problem is None, problem


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        stop_broker(broker.directory, env=broker.env)


def test_a_broker_outage_is_told_once_and_the_worker_carries_on(
        broker: Broker, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{broker.env['CHURN_KAFKA_PORT']}"
    settings = make_settings(kafka_bootstrap=bootstrap, clock="event", partitions=2,
                             lapse_check_interval_s=3600)
    ensure_topics(settings)
    codec = build_codec(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        produce_records(settings, codec, [profile("ivan"), purchase("ivan", 1, 1.0)])
        worker.wait_metric("churnwatch_events_applied_total", 2)
        before = len(worker.log_path.read_text().splitlines())

        broker.stop()

        def unreachable() -> bool:
            answer = worker.get("/ready")
            return answer is not None and answer[0] == 503 and "Kafka unreachable" in answer[1]

        wait_for(unreachable, timeout=60, what="/ready saying Kafka is unreachable",
                 on_timeout=worker.log_tail)
        broker.start()
        worker.wait_ready()  # by itself: nobody restarts it
        produce_records(settings, codec, [purchase("ivan", 2, 2.0)])
        worker.wait_metric("churnwatch_events_accepted_total", 2, step="purchases")
        wait_for(lambda: "reachable again" in worker.log_path.read_text(), timeout=30,
                 what="the line saying Kafka is back", on_timeout=worker.log_tail)
        assert worker.proc.poll() is None
    finally:
        worker.stop()

    during = worker.log_path.read_text().splitlines()[before:]
    client_errors = [line for line in during if "[ERROR] aiokafka" in line]
    assert len(client_errors) <= 2, "\n".join(client_errors[:10])  # not one per retry
    told = [line for line in during if "churnwatch.kafka:" in line]
    assert [("unreachable:" in t, "reachable again" in t) for t in told] == [
        (True, False), (False, True)], told
