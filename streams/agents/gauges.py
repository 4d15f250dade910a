"""Live retention gauges: customers per band, segment and activity state, and NPS, over
the customers this worker holds, refreshed by a timer: a read-only pass over the tables
that yields to the agents every 50 customers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.retention import SnapshotBuilder, customer_keys
from streams.runtime import Runtime

STEP = "gauges"
#: customers read between two turns of the event loop: a turn of 50 takes about 10 ms,
#: so a refresh never holds up the ingest agent for long
CHUNK = 50
log = logging.getLogger("churnwatch.gauges")


def register(app: faust.App, rt: Runtime) -> Any:
    async def refresh_gauges() -> None:
        now = rt.clock.now()
        if now is None or not rt.recovered():
            return
        builder = SnapshotBuilder(rt.tables, to_ms(now) / DAY_MS, rt.scoring.retention,
                                  rt.scoring.btyd)
        for n, key in enumerate(customer_keys(rt.tables)):
            builder.add(key)
            if n % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)  # let the agents run between chunks
        snapshot = builder.result()
        rt.metrics.set_snapshot(snapshot)
        rt.metrics.customers_per_partition.clear()
        for partition, count in rt.due.partition_counts().items():
            rt.metrics.customers_per_partition.labels(str(partition)).set(count)
        log.debug("retention gauges refreshed: %s customers", snapshot["customers"],
                  extra={"step": STEP})

    return app.timer(rt.settings.gauges_interval_s, name="churnwatch.gauges")(refresh_gauges)
