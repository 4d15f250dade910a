"""Fixtures for tests against a real Kafka broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from streams.settings import Settings
from streams.topics import delete_topics, ensure_topics
from tests.integration.workers import WorkerProcess


@pytest.fixture
def make_settings(
    make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> Callable[..., Settings]:
    """Like the base ``make_settings``, with the session broker as the default bootstrap."""

    def factory(**overrides: Any) -> Settings:
        overrides.setdefault("kafka_bootstrap", kafka_bootstrap)
        return make_settings(**overrides)

    return factory


@pytest.fixture
def event_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings for a worker replaying on the event clock, with its topics created."""

    def factory(**overrides: Any) -> Settings:
        settings = make_settings(clock="event", **overrides)
        ensure_topics(settings)
        return settings

    return factory


@pytest.fixture
def admin(kafka_bootstrap: str) -> AdminClient:
    """An admin client connected to the session broker."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def drop_topics(admin: AdminClient) -> Iterator[Callable[[Settings], None]]:
    """Register settings whose topics are deleted when the test ends."""
    registered: list[Settings] = []
    yield registered.append
    for settings in registered:
        delete_topics(settings, admin)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real worker process for the test module's ``settings`` fixture, ready to use."""
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
