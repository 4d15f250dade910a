"""Starting and stopping worker child processes the same way everywhere (the demo, the
tests, the benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.settings import Settings


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a worker child: ours without CHURN_*, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CHURN_{name.upper()}"] = (str(value).lower() if isinstance(value, bool)
                                        else str(value))
    env.update(extra)
    return env


KAFKA_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka-local.sh"


@contextmanager
def bench_broker(workdir: Path) -> Iterator[str]:
    """The bootstrap address of ``CHURN_KAFKA_BOOTSTRAP`` if set, else of a local broker
    started with ``scripts/kafka-local.sh`` in ``workdir`` and stopped on exit (the
    benchmarks' broker)."""
    external = os.environ.get("CHURN_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    data = str(workdir / "kafka")
    env = dict(os.environ, CHURN_PYTHON=sys.executable)
    bootstrap = subprocess.run([str(KAFKA_SCRIPT), "start", data], env=env, check=True,
                               capture_output=True, text=True).stdout.strip()
    try:
        yield bootstrap
    finally:
        subprocess.run([str(KAFKA_SCRIPT), "stop", data], check=False, capture_output=True)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode
