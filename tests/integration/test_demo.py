"""`churnwatch demo` against a real broker ends well: it says when the population is
replayed, and Ctrl-C, whenever it comes, prints the summary and cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration


def _ctrl_c_reaches_it() -> None:
    """A test run started in the background inherits SIGINT ignored, and Python then leaves
    it ignored: give the demo the disposition it has in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """A `churnwatch demo` process on the session broker, its output in a file."""

    def __init__(self, tmp_path: Path, bootstrap: str, *args: str) -> None:
        self.out = tmp_path / "demo.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
        env.update(CHURN_KAFKA_BOOTSTRAP=bootstrap, COLUMNS="300")
        with self.out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "demo", "--customers", "40",
                 "--weeks", "4", *args], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_ctrl_c_reaches_it)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, words: str, timeout: float = 240) -> None:
        wait_for(lambda: words in self.text() or self.proc.poll() is not None,
                 timeout=timeout, what=repr(words), on_timeout=self.text)
        assert words in self.text(), self.text()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=120)


@pytest.fixture
def demo(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Callable[..., Demo]]:
    started: list[Demo] = []

    def start(*args: str) -> Demo:
        started.append(Demo(tmp_path, kafka_bootstrap, *args))
        return started[-1]

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def summary_after(text: str, marker: str) -> str:
    assert marker in text, text
    after = text[text.index(marker):]
    assert "Outcome per persona" in after and "\nscored " in after, text
    assert "Traceback" not in text
    return after


def test_the_demo_says_when_it_is_done_and_ctrl_c_shows_the_summary(demo):
    run = demo("--pace", "0", "--idle-seconds", "3")
    run.wait_for("the whole population is replayed")
    assert run.interrupt() == 0
    after = summary_after(run.text(), "stopped by Ctrl-C")
    assert "worker consumed" in after and "produced " not in after.splitlines()[2]
    assert "stopping the worker" in after


def test_ctrl_c_while_producing_shows_the_summary_of_what_was_produced(demo):
    run = demo("--pace", "0.5")  # two seconds of wall time per simulated day
    run.wait_for("worker ready")
    run.wait_for("score ", timeout=120)  # outputs arrive, weeks still to produce
    assert run.interrupt() == 0
    after = summary_after(run.text(), "stopped by Ctrl-C")
    summary = next(line for line in after.splitlines() if line.startswith("scored "))
    produced, total = summary.split("| produced ")[1].split(",")[0].split("/")
    assert 0 < int(produced.replace(",", "")) < int(total.replace(",", ""))
