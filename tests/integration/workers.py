"""Real churnwatch worker processes for integration tests, and ways to watch them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streams.processes import WorkerChild


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


class WorkerProcess(WorkerChild):
    """One `python -m streams.worker` child with the given settings
    (:class:`streams.processes.WorkerChild` with the tests' waits and failures)."""

    @property
    def base_url(self) -> str:
        return self.url

    def log_tail(self, lines: int = 60) -> str:
        return super().log_tail(lines)

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}\n"
                                     f"{self.log_tail()}")
            answer = self.get("/ready")
            return answer is not None and answer[0] == 200

        wait_for(ready, timeout=timeout, what="worker /ready", on_timeout=self.log_tail)

    def wait_metric(self, name: str, at_least: float, timeout: float = 60,
                    **labels: str) -> None:
        wait_for(lambda: self.metric(name, **labels) >= at_least, timeout=timeout,
                 what=f"{name}{labels} >= {at_least}", on_timeout=self.log_tail)
