"""Every command that needs Kafka, pointed at a closed loopback port, fails on its own
within CHURN_KAFKA_TIMEOUT_S with one clear line, exit code 1 and no traceback; the Kafka
clients' own messages come back (through churnwatch's logging) only at debug level.

The commands run as real processes: librdkafka writes to the process's stderr, which an
in-process runner would not see. They run side by side to keep the module quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.codec import to_json_line
from streams.processes import free_port
from streams.scenario import scenario

TIMEOUT_S = 2
#: A hang (the old `watch`) is caught here; the commands take TIMEOUT_S plus start-up.
HANG_S = 90

COMMANDS = {
    "worker": ["worker", "--store", "memory://"],
    "watch": ["watch"],
    "topics": ["topics"],
    "produce": ["produce", "--events", "{history}", "--pace", "0"],
    "produce-scenario": ["produce-scenario", "--customers", "3", "--weeks", "1", "--pace", "0"],
    "simulate": ["simulate", "--customers", "5", "--days", "7"],
    "demo": ["demo", "--duration", "30"],
}

Results = dict[str, subprocess.CompletedProcess[str]]


def run_all(tmp_path: Path, **env: str) -> Results:
    """Start every command at once against a closed port; wait for all of them."""
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(to_json_line(*r) for r in scenario(2, 1)) + "\n")
    bootstrap = f"127.0.0.1:{free_port()}"  # bound then closed: nothing listens there
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    base.update(CHURN_KAFKA_BOOTSTRAP=bootstrap, CHURN_KAFKA_TIMEOUT_S=str(TIMEOUT_S),
                CHURN_DATA_DIR=str(tmp_path / "data"), CHURN_WEB_PORT=str(free_port()),
                COLUMNS="400", **env)
    procs = {}
    for name, args in COMMANDS.items():
        argv = [a.replace("{history}", str(history)) for a in args]
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *argv], cwd=tmp_path, env=base,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
    done = {}
    try:
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=HANG_S)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for result in done.values():
        result.stdout = result.stdout.replace(bootstrap, "BOOTSTRAP")
    return done


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return run_all(tmp_path_factory.mktemp("no-broker"))


@pytest.fixture(scope="module")
def debug_results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return run_all(tmp_path_factory.mktemp("no-broker-debug"), CHURN_LOG_LEVEL="debug")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_without_a_broker_fails_with_one_clear_line(results, command):
    result = results[command]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 1, result.stdout
    said = [line for line in lines if "did not answer within" in line]
    assert len(said) == 1, result.stdout
    assert f"Kafka at BOOTSTRAP did not answer within {TIMEOUT_S}s" in said[0]
    assert "CHURN_KAFKA_BOOTSTRAP" in said[0]
    assert "Traceback" not in result.stdout
    assert "rdkafka" not in result.stdout and "Connection refused" not in result.stdout
    if command == "demo":  # its banner, the cluster it uses, then the failure
        assert said[0].startswith("demo failed:") and len(lines) <= 3, result.stdout
    else:
        assert lines == said


@pytest.mark.parametrize("command", ["topics", "watch", "worker"])
def test_debug_level_shows_the_clients_messages_and_the_traceback(debug_results, command):
    result = debug_results[command]
    assert result.returncode == 1
    assert "churnwatch.kafka: FAIL" in result.stdout  # librdkafka, through our logging
    assert "Traceback" in result.stdout and "BrokerUnreachableError" in result.stdout
    # rate-limited: a reconnect attempt every few ms is not a line each
    assert result.stdout.count("churnwatch.kafka: FAIL") < 10

