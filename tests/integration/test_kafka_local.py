"""scripts/kafka-local.sh starts a real Kafka broker that answers, and stops it cleanly."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams.processes import KAFKA_SCRIPT, free_port, kafka_script_env

pytestmark = pytest.mark.integration

def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/kafka-local.sh with this interpreter for its readiness check."""
    full_env = {
        key: value
        for key, value in kafka_script_env().items()
        if key not in ("CHURN_KAFKA_PORT", "CHURN_KAFKA_CONTROLLER_PORT", "CHURN_KAFKA_OWNER_PID")
    }
    full_env.update(env)
    return subprocess.run(
        [str(KAFKA_SCRIPT), *args],
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def broker_ids(bootstrap: str) -> list[int]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return sorted(metadata.brokers)


def pid_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_session_broker_answers_metadata_requests(kafka_bootstrap: str) -> None:
    assert broker_ids(kafka_bootstrap) != []


def test_start_prints_only_the_bootstrap_then_stop_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    broker_dir = tmp_path / "broker"
    port = free_port()
    started = run_script("start", str(broker_dir), CHURN_KAFKA_PORT=str(port))
    pid = 0
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"127.0.0.1:{port}\n"
        bootstrap = started.stdout.strip()
        assert broker_ids(bootstrap) == [1]
        assert (broker_dir / "bootstrap").read_text().strip() == bootstrap

        status = run_script("status", str(broker_dir))
        assert status.returncode == 0
        assert f"bootstrap={bootstrap}" in status.stdout

        pid = int((broker_dir / "kafka.pid").read_text())
        assert pid_running(pid)

        # Starting again while it runs is harmless and reports the same address.
        again = run_script("start", str(broker_dir))
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == bootstrap
    finally:
        stopped = run_script("stop", str(broker_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_running(pid)
    assert run_script("status", str(broker_dir)).returncode == 3
    # Stopping a stopped broker is not an error.
    assert run_script("stop", str(broker_dir)).returncode == 0


def test_start_fails_fast_and_cleans_up_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_script("start", str(tmp_path / "broker"), CHURN_KAFKA_PORT=str(port))

    assert result.returncode != 0
    assert result.stdout == ""
    assert "Address already in use" in result.stderr
    assert "could not start Kafka" in result.stderr
    # It noticed that the broker died instead of waiting out the start-up deadline.
    assert "did not answer within" not in result.stderr
    assert not (tmp_path / "broker" / "kafka.pid").exists()
    assert run_script("status", str(tmp_path / "broker")).returncode == 3


def test_status_and_stop_of_a_directory_that_does_not_exist_create_nothing(
        tmp_path: Path) -> None:
    missing = tmp_path / "no-broker-here"
    status = run_script("status", str(missing))
    assert (status.returncode, status.stdout) == (3, "stopped\n")
    assert run_script("stop", str(missing)).returncode == 0
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_broker_stops_when_its_owner_process_exits(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "300"])
    broker_dir = tmp_path / "broker"
    try:
        started = run_script("start", str(broker_dir), CHURN_KAFKA_OWNER_PID=str(owner.pid))
        assert started.returncode == 0, started.stderr
        pid = int((broker_dir / "kafka.pid").read_text())
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 60
        while pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_running(pid)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        run_script("stop", str(broker_dir))
