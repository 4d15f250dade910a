"""Real churnwatch worker processes for integration tests, and ways to watch them."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.processes import stop_process, worker_env
from streams.settings import Settings


def wait_for(check: Callable[[], Any], *, timeout: float, what: str,
             on_timeout: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy, failing after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")
        time.sleep(0.2)


class WorkerProcess:
    """One `python -m streams.worker` child with the given settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], env=worker_env(settings),
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _get(self, path: str) -> tuple[int, str] | None:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=2) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError:
            return None

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}\n"
                                     f"{self.log_tail()}")
            answer = self._get("/ready")
            return answer is not None and answer[0] == 200

        wait_for(ready, timeout=timeout, what="worker /ready", on_timeout=self.log_tail)

    def metric(self, name: str, **labels: str) -> float:
        """Current value of a sample on /metrics (0 when absent)."""
        answer = self._get("/metrics")
        if answer is None or answer[0] != 200:
            return 0.0
        total = 0.0
        for family in text_string_to_metric_families(answer[1]):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    total += sample.value
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 60,
                    **labels: str) -> None:
        wait_for(lambda: self.metric(name, **labels) >= at_least, timeout=timeout,
                 what=f"{name}{labels} >= {at_least}", on_timeout=self.log_tail)

    def stop(self, timeout: float = 30) -> int | None:
        try:
            return stop_process(self.proc, timeout)
        finally:
            self._log.close()
