"""The worker's two timers. Neither writes state: each sends ticks (empty records on the
worker's own tick topic, one per partition) that give the ingest agent a turn in that
partition's stream context (see streams.ingest).

- **silence**: every ``lapse_check_interval_s``, a tick to each partition this worker
  holds, so customers who simply stop are checked (and flagged) without any new event.
  "Now" is the wall clock live and the event-time watermark in replays (CHURN_CLOCK).
- **order**: every ``order_grace_s``, a tick to each partition with events held for
  event-time order when no batch came lately, so they go on once the other inputs allow.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from streams.domain.stored import loads
from streams.pipeline import HEALTH_TABLE
from streams.runtime import Runtime
from streams.settings import TOPIC_TICKS

STEP = "lapse"
log = logging.getLogger("churnwatch.lapse")


def rebuild(rt: Runtime, health_table: Any) -> int:
    """Refill the due index from the health table for the partitions this worker holds."""
    held = held_partitions(rt)
    rt.due.keep_partitions(held)
    count = 0
    for key, raw in health_table.items():
        data = loads(raw)
        due, partition = data.get("d"), int(data.get("q", 0))
        if due is not None and partition in held:
            rt.due.schedule(key.decode(), int(due), partition)
            count += 1
    return count


def held_partitions(rt: Runtime) -> set[int]:
    ticks = rt.settings.topic(TOPIC_TICKS)
    return {tp.partition for tp in rt.app.consumer.assignment() if tp.topic == ticks}


def register(app: faust.App, rt: Runtime) -> Any:
    health_table = rt.table(HEALTH_TABLE, "signals, score and alert state per customer")

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        rt.due_stale = True
        rt.watermarks_stale = True

    async def silence_tick() -> None:
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
        for partition in sorted(held_partitions(rt)):
            await rt.send_tick(partition, silence=True)
        rt.metrics.timer_seconds.observe(time.perf_counter() - started)

    async def order_tick() -> None:
        ingest = rt.ingest
        if ingest is None or time.monotonic() - ingest.last_batch < rt.settings.order_grace_s:
            return
        for partition in ingest.partitions_waiting():
            await rt.send_tick(partition)

    app.timer(rt.settings.order_grace_s or 0.1, name="churnwatch.order")(order_tick)
    return app.timer(rt.settings.lapse_check_interval_s, name="churnwatch.lapse")(silence_tick)
