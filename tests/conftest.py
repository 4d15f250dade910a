"""Fixtures shared by all test layers.

``kafka_bootstrap`` gives the address of a real Apache Kafka broker. It is session
scoped and lazy: the first test that asks for it starts one broker with
``scripts/kafka-local.sh`` (unless ``CHURN_TEST_KAFKA_BOOTSTRAP`` points at an existing
cluster), and the broker is stopped when the session ends. Tests that do not ask for it
never start Java.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local.sh"

#: Set it to run the tests against an existing cluster instead of a local broker.
EXTERNAL_BOOTSTRAP_ENV = "CHURN_TEST_KAFKA_BOOTSTRAP"


def kafka_local_env(**extra: str) -> dict[str, str]:
    """Environment for ``scripts/kafka-local.sh``: this interpreter does the readiness check."""
    env = dict(os.environ)
    env["CHURN_PYTHON"] = sys.executable
    env.update(extra)
    return env


def kafka_local(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka-local.sh`` for a broker of one test: it takes free ports and is
    stopped when this session ends, whatever happens. ``extra`` is added to its environment
    (e.g. ``CHURN_KAFKA_EXTRA_LISTENERS``)."""
    env = kafka_local_env(CHURN_KAFKA_OWNER_PID=str(os.getpid()), **extra)
    if "CHURN_KAFKA_PORT" not in extra:
        env.pop("CHURN_KAFKA_PORT", None)
    if "CHURN_KAFKA_CONTROLLER_PORT" not in extra:
        env.pop("CHURN_KAFKA_CONTROLLER_PORT", None)
    return subprocess.run([str(KAFKA_LOCAL), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, check=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a running Kafka broker, started once per session on demand."""
    external = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return

    broker_dir = tmp_path_factory.mktemp("kafka")
    env = kafka_local_env(CHURN_KAFKA_OWNER_PID=str(os.getpid()))
    env.pop("CHURN_KAFKA_PORT", None)  # a test broker always takes a free port
    env.pop("CHURN_KAFKA_CONTROLLER_PORT", None)
    try:
        started = subprocess.run(
            [str(KAFKA_LOCAL), "start", str(broker_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if started.returncode != 0:
            pytest.fail(
                f"scripts/kafka-local.sh start failed (exit {started.returncode}):\n"
                f"{started.stderr}",
                pytrace=False,
            )
        bootstrap = started.stdout.strip()
        yield bootstrap
    finally:
        subprocess.run(
            [str(KAFKA_LOCAL), "stop", str(broker_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )


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
