"""``churnwatch demo``: the whole pipeline on one machine, and the readable output printer.

The demo starts a local Kafka broker with ``scripts/kafka-local.sh`` (or uses the cluster
named by ``CHURN_KAFKA_BOOTSTRAP`` when that is set), creates fresh topics under a
``demo-<timestamp>-`` prefix, runs one worker as a child process with the event-time
clock, produces the scripted scenario (:mod:`streams.scenario`) day by day, and prints
every band change, at-risk and recovered event and dead letter as it arrives, with a
running summary. Every child process and temporary directory is cleaned up on the way
out, whatever the way out is.

:class:`OutputPrinter` is also what ``churnwatch watch`` prints with.
"""

from __future__ import annotations

from streams.demo.printer import OutputPrinter, Summary, watch_outputs
from streams.demo.producing import make_progress, produce_days, produce_paced
from streams.demo.run import (
    DemoError,
    DemoOptions,
    consumed,
    demo_settings,
    drop_demo_topics,
    replayed,
    run_demo,
    tick_interval,
)

__all__ = [
    "DemoError",
    "DemoOptions",
    "OutputPrinter",
    "Summary",
    "consumed",
    "demo_settings",
    "drop_demo_topics",
    "make_progress",
    "produce_days",
    "produce_paced",
    "replayed",
    "run_demo",
    "tick_interval",
    "watch_outputs",
]
