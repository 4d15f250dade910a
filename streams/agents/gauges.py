"""Live retention gauges: customers per band, segment and activity state, and NPS, over
the customers this worker holds, refreshed by a timer: a read-only pass over the tables
that pauses for the agents after every 50 customers, taking at most a tenth of the
event loop's time."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.retention import SnapshotBuilder, customer_keys
from streams.runtime import Runtime

STEP = "gauges"
#: customers read between two pauses: about 5 ms of work
CHUNK = 50
#: The share of the event loop's time a refresh may take: after each chunk it sleeps
#: nine times as long as the chunk took. A refresh that only yielded (``sleep(0)``) ran a
#: chunk on every turn of the loop, each turn the ingest agent needed, and delayed
#: outputs by up to 2 s every refresh (bench/throughput.py --latency-only).
SHARE = 0.1
log = logging.getLogger("churnwatch.gauges")


def register(app: faust.App, rt: Runtime) -> Any:
    async def refresh_gauges() -> None:
        now = rt.clock.now()
        if now is None or not rt.recovered():
            return
        builder = SnapshotBuilder(rt.tables, to_ms(now) / DAY_MS, rt.scoring.retention,
                                  rt.scoring.btyd)
        started = time.perf_counter()
        for n, key in enumerate(customer_keys(rt.tables)):
            builder.add(key)
            if n % CHUNK == CHUNK - 1:  # let the agents run between chunks
                await asyncio.sleep((time.perf_counter() - started) * (1 - SHARE) / SHARE)
                started = time.perf_counter()
        snapshot = builder.result()
        rt.metrics.set_snapshot(snapshot)
        rt.metrics.customers_per_partition.clear()
        for partition, count in rt.due.partition_counts().items():
            rt.metrics.customers_per_partition.labels(str(partition)).set(count)
        log.debug("retention gauges refreshed: %s customers", snapshot["customers"],
                  extra={"step": STEP})

    return app.timer(rt.settings.gauges_interval_s, name="churnwatch.gauges")(refresh_gauges)
