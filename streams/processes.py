"""Child processes, the same way everywhere (the CLI, the demo, the tests, the benchmarks):
free ports, the local Kafka broker of ``scripts/kafka-local.sh`` and worker children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from streams.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import Metric

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka-local.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BrokerError(RuntimeError):
    """The local broker could not be started; the message says why and what to do."""


def kafka_script_env(**extra: str) -> dict[str, str]:
    """The environment of ``scripts/kafka-local.sh``: ours, with this interpreter doing its
    readiness check, then ``extra`` (e.g. ``CHURN_KAFKA_OWNER_PID`` so that the broker goes
    when its owner goes, or fixed ``CHURN_KAFKA_PORT``)."""
    env = dict(os.environ)
    env["CHURN_PYTHON"] = sys.executable
    env.update(extra)
    return env


def owned_env(**extra: str) -> dict[str, str]:
    """:func:`kafka_script_env` for a broker that stops when this process exits."""
    return kafka_script_env(CHURN_KAFKA_OWNER_PID=str(os.getpid()), **extra)


def _kafka_script(command: str, directory: Path, env: Mapping[str, str] | None,
                  timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka-local.sh COMMAND DIRECTORY`` (``env`` defaults to
    :func:`kafka_script_env`), its output captured."""
    return subprocess.run(
        [str(KAFKA_SCRIPT), command, str(directory)],
        env=dict(env) if env is not None else kafka_script_env(),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        check=False)


def start_broker(directory: Path, *, env: Mapping[str, str] | None = None,
                 timeout: float = 600.0) -> str:
    """Start a local broker whose files live in ``directory``; return its bootstrap
    address. ``env`` defaults to :func:`kafka_script_env`. BrokerError if it fails."""
    if not KAFKA_SCRIPT.exists():
        raise BrokerError(f"{KAFKA_SCRIPT} is missing; set CHURN_KAFKA_BOOTSTRAP to use an "
                          "existing Kafka cluster instead")
    try:
        done = _kafka_script("start", directory, env, timeout)
    except subprocess.TimeoutExpired as exc:
        raise BrokerError("the local Kafka broker did not start within "
                          f"{timeout / 60:g} minutes") from exc
    if done.returncode != 0 or not done.stdout.strip():
        raise BrokerError(f"could not start the local Kafka broker "
                          f"(scripts/kafka-local.sh exit {done.returncode}):\n"
                          f"{done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def stop_broker(directory: Path, *, env: Mapping[str, str] | None = None,
                timeout: float = 120.0) -> str | None:
    """Stop the broker of ``directory``; return an error message if that failed."""
    try:
        done = _kafka_script("stop", directory, env, timeout)
    except subprocess.TimeoutExpired:
        return f"scripts/kafka-local.sh stop did not finish within {timeout:g}s"
    if done.returncode != 0:
        return f"scripts/kafka-local.sh stop failed: {done.stderr.strip()}"
    return None


@contextmanager
def local_broker(directory: Path, *, env: Mapping[str, str] | None = None,
                 timeout: float = 600.0) -> Iterator[str]:
    """The bootstrap address of a broker started in ``directory`` and stopped on exit."""
    bootstrap = start_broker(directory, env=env, timeout=timeout)
    try:
        yield bootstrap
    finally:
        stop_broker(directory, env=env)


@contextmanager
def bench_broker(workdir: Path) -> Iterator[str]:
    """The bootstrap address of ``CHURN_KAFKA_BOOTSTRAP`` if set, else of a local broker
    started in ``workdir`` and stopped on exit (the benchmarks' broker)."""
    external = os.environ.get("CHURN_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with local_broker(workdir / "kafka") as bootstrap:
        yield bootstrap


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


def process_group_env(settings: Settings, index: int) -> dict[str, str]:
    """What sets process ``index`` of a worker group apart: its web port (``web_port`` +
    index), its state directory (``data_dir``/process-index) and, for static membership,
    its worker id (``worker_id``-index)."""
    extra = {"CHURN_WEB_PORT": str(settings.web_port + index),
             "CHURN_DATA_DIR": str(settings.data_dir / f"process-{index}")}
    if settings.worker_id:
        extra["CHURN_WORKER_ID"] = f"{settings.worker_id}-{index}"
    return extra


def run_worker_group(settings: Settings, processes: int) -> int:
    """Run ``processes`` worker processes in one consumer group until SIGTERM or Ctrl-C
    (passed on to each), or until one of them exits (the others are then stopped, and
    its status is returned, so that a supervisor restarts the group)."""
    for i in range(processes):  # each process keeps its state in a directory of its own
        (settings.data_dir / f"process-{i}").mkdir(parents=True, exist_ok=True)
    children = [subprocess.Popen([sys.executable, "-m", "streams.worker"],
                                 env=worker_env(settings, **process_group_env(settings, i)),
                                 stdin=subprocess.DEVNULL)
                for i in range(processes)]
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)  # a supervisor's loop: wait for a signal or a child's exit
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:  # all at once: their shutdowns overlap
            if child.poll() is None:
                child.terminate()
        statuses = [stop_process(child, 60) for child in children]
    if stopping:
        return 0
    return next((s for s in statuses if s), 1)


class WorkerError(RuntimeError):
    """A worker child exited while starting, or was not ready in time."""


class WorkerWeb:
    """The web port of a worker process at ``url``: its endpoints and metrics."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> tuple[int, str] | None:
        """Status and body of a GET on the worker's web port; None if it does not answer."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as answer:  # noqa: S310
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError:
            return None

    def metrics(self) -> list[Metric] | None:
        """The families on ``/metrics``, or None if it does not answer 200."""
        from prometheus_client.parser import text_string_to_metric_families

        answer = self.get("/metrics")
        if answer is None or answer[0] != 200:
            return None
        return list(text_string_to_metric_families(answer[1]))

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` with ``labels`` on ``/metrics`` (0 if absent)."""
        total = 0.0
        for family in self.metrics() or ():
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    total += sample.value
        return total


class WorkerChild(WorkerWeb):
    """One worker child process with ``settings``, logging to ``log_path``.

    ``args`` are the interpreter's arguments (``-m streams.worker`` by default; the demo
    runs ``-m streams.cli worker``), ``env`` extra environment variables. With
    ``own_session`` the child gets its own session, so that Ctrl-C reaches only us and
    we stop it in order; with ``from_checkout`` it runs in the repository root when
    ``streams`` is a source checkout there.
    """

    def __init__(self, settings: Settings, log_path: Path, *,
                 args: Sequence[str] = ("-m", "streams.worker"),
                 env: Mapping[str, str] | None = None, own_session: bool = False,
                 from_checkout: bool = False) -> None:
        super().__init__(f"http://127.0.0.1:{settings.web_port}")
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("ab")
        in_checkout = from_checkout and (REPO_ROOT / "streams").is_dir()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, *args], env=worker_env(settings, **(env or {})),
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=REPO_ROOT if in_checkout else None, start_new_session=own_session)
        except BaseException:
            self._log.close()
            raise

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no worker log)"
        return "\n".join(text[-lines:])


    def ready(self) -> bool:
        """Whether ``/ready`` answers 200 now; WorkerError if the child has exited."""
        if not self.alive():
            raise WorkerError(f"the worker exited with status {self.proc.returncode} "
                              "while starting")
        answer = self.get("/ready")
        return answer is not None and answer[0] == 200

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/ready`` until it answers 200; WorkerError if the child exits or the
        deadline passes."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise WorkerError(f"the worker was not ready within {timeout:g}s")
            time.sleep(0.25)  # polling a child's HTTP endpoint, with a deadline



    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit status."""
        try:
            return stop_process(self.proc, timeout)
        finally:
            self._log.close()
