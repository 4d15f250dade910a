"""Fixtures shared by all test layers.

``kafka_bootstrap`` gives the address of a real Apache Kafka broker. It is session
scoped and lazy: the first test that asks for it starts one broker with
``scripts/kafka-local.sh`` (unless ``CHURN_TEST_KAFKA_BOOTSTRAP`` points at an existing
cluster), and the broker is stopped when the session ends. Tests that do not ask for it
never start Java.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.processes import BrokerError, free_port, owned_env, start_broker, stop_broker
from streams.settings import Settings

#: Set it to run the tests against an existing cluster instead of a local broker.
EXTERNAL_BOOTSTRAP_ENV = "CHURN_TEST_KAFKA_BOOTSTRAP"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a running Kafka broker, started once per session on demand."""
    external = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return

    broker_dir = tmp_path_factory.mktemp("kafka")
    env = owned_env()
    env.pop("CHURN_KAFKA_PORT", None)  # a test broker always takes a free port
    env.pop("CHURN_KAFKA_CONTROLLER_PORT", None)
    try:
        try:
            bootstrap = start_broker(broker_dir, env=env, timeout=300)
        except BrokerError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield bootstrap
    finally:
        stop_broker(broker_dir, env=env)


@pytest.fixture
def unique_prefix() -> str:
    """A prefix that makes topic names and group ids unique to one test."""
    return f"t-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def make_settings(unique_prefix: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory of test ``Settings``: unique topics and app id, memory store, free web port.

    Keyword arguments override any field. Outside ``tests/integration`` the bootstrap
    address points at a closed port; the integration conftest points it at the session's
    broker. The ``.env`` file is ignored so that a developer's local one cannot leak in.
    """

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": f"127.0.0.1:{free_port()}",
            "topic_prefix": unique_prefix,
            "app_id": f"churnwatch-{uuid.uuid4().hex[:12]}",
            "partitions": 2,
            "store": "memory://",
            "data_dir": tmp_path,
            "web_port": free_port(),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory
