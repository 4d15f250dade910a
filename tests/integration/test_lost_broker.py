"""A command reading from Kafka whose broker goes away fails with one line within
CHURN_KAFKA_TIMEOUT_S instead of waiting in silence (the reconnect attempts are debug
messages). The broker here is the test's own, so stopping it disturbs no other test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams.processes import owned_env, start_broker, stop_broker
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration


def broker_env() -> dict[str, str]:
    env = owned_env()
    env.pop("CHURN_KAFKA_PORT", None)
    env.pop("CHURN_KAFKA_CONTROLLER_PORT", None)
    return env


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "broker"
    bootstrap = start_broker(directory, env=broker_env(), timeout=300)
    try:
        yield bootstrap, directory
    finally:
        stop_broker(directory, env=broker_env(), timeout=300)


def reader_groups(bootstrap: str) -> list[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=5).result()
    return [g.group_id for g in listed.valid if g.group_id.startswith("churnwatch-reader-")]


def test_watch_fails_with_one_line_when_its_broker_goes_away(own_broker, tmp_path):
    bootstrap, directory = own_broker
    ensure_topics(Settings(_env_file=None, kafka_bootstrap=bootstrap, partitions=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(CHURN_KAFKA_BOOTSTRAP=bootstrap, CHURN_KAFKA_TIMEOUT_S="3", COLUMNS="400")
    out = tmp_path / "watch.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "watch"], env=env,
                                stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: reader_groups(bootstrap), timeout=60, what="watch's consumer",
                 on_timeout=lambda: out.read_text(errors="replace"))
        assert stop_broker(directory, env=broker_env(), timeout=300) is None
        stopped = time.monotonic()
        proc.wait(timeout=90)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 1, text
    assert len(lines) == 1 and lines[0].startswith("error: lost the cluster: Kafka at "), text
    assert "did not answer within 3s" in lines[0]
    assert "Traceback" not in text and "rdkafka" not in text
    print(f"watch gave up {took:.1f}s after its broker stopped (CHURN_KAFKA_TIMEOUT_S=3)")
