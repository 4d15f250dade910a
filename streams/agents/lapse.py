"""Silence (lapse) detection: a timer on every worker re-scores customers whose check is
due, so a customer who simply stops is flagged without any new event.

The timer only reads: it pops due customers from the worker's due-time index and sends a
tick (a SignalUpdate of family "clock") on the customer's partition; the scorer evaluates
it like any update, so every state change still happens in stream context. "Now" is the
wall clock live and the event-time watermark in replays (CHURN_CLOCK).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import faust

from streams.domain.buckets import to_ms
from streams.domain.features import loads
from streams.pipeline import HEALTH_TABLE, tick_update
from streams.runtime import Runtime
from streams.settings import TOPIC_SIGNALS

STEP = "lapse"
MAX_PER_TICK = 10_000
log = logging.getLogger("churnwatch.lapse")


def rebuild(rt: Runtime, health_table: Any) -> int:
    """Refill the due index from the health table for the partitions this worker holds."""
    held = {tp.partition for tp in rt.app.consumer.assignment()
            if tp.topic == rt.settings.topic(TOPIC_SIGNALS)}
    rt.due.keep_partitions(held)
    count = 0
    for key, raw in health_table.items():
        data = loads(raw)
        due, partition = data.get("d"), int(data.get("q", 0))
        if due is not None and partition in held:
            rt.due.schedule(key.decode(), int(due), partition)
            count += 1
    return count


def register(app: faust.App, rt: Runtime) -> Any:
    health_table = rt.table(HEALTH_TABLE, "signals, score and alert state per customer")

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        rt.due_stale = True
        rt.watermarks_stale = True

    async def lapse_tick() -> None:
        if not rt.recovered():
            return
        started = time.perf_counter()
        if rt.due_stale:
            count = rebuild(rt, health_table)
            rt.due_stale = False
            log.info("due index rebuilt with %d customers", count, extra={"step": STEP})
        if rt.watermarks_stale:  # before any input: silence checks go on after a restart
            count = rt.restore_watermarks()
            log.info("watermarks of %d input partitions restored", count, extra={"step": STEP})
        now = rt.clock.now()
        if now is None:
            return
        behind = rt.clock.behind(datetime.now(UTC)).total_seconds()
        if behind > rt.settings.lapse_pause_behind_s:
            # catching up a backlog: customers' newest events may still be queued, so a
            # silence check now would flag them on stale signals
            log.info("silence checks paused: inputs %.0f s behind", behind, extra={"step": STEP})
            return
        due = rt.due.pop_due(to_ms(now), MAX_PER_TICK)
        for customer_id, partition in due:
            await rt.send_update(tick_update(customer_id, now), partition)
        rt.metrics.timer_checked.inc(len(due))
        rt.metrics.timer_seconds.observe(time.perf_counter() - started)

    return app.timer(rt.settings.lapse_check_interval_s, name="churnwatch.lapse")(lapse_tick)
