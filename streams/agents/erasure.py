"""Erasure (GDPR right to erasure), in two steps that keep the order of events:

1. this agent deletes the customer's feature state and sends an erasure marker on the
   customer's partition of ``churnwatch.signals``;
2. the scorer, reaching the marker after every update queued before it, deletes the
   customer's health state and sends a tombstone for its key on every output topic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.pipeline import HEALTH_TABLE, erasure_marker
from streams.runtime import Runtime
from streams.settings import TOPIC_ERASURE

STEP = "erasure"
log = logging.getLogger("churnwatch.erasure")


def register(app: faust.App, rt: Runtime) -> Any:
    async def erasure(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            event = await rt.accept(record.message, "ErasureRequest", STEP)
            if event is not None:
                key = event.customer_id.encode()
                for name, table in rt.tables.items():
                    if name != HEALTH_TABLE and key in table:  # the scorer erases its own
                        del table[key]
                await rt.send_update(erasure_marker(event), record.message.partition)
                rt.metrics.events_accepted.labels(STEP).inc()
                log.info("erasure requested", extra={
                    "step": STEP, "customer": rt.customer_ref(event.customer_id)})
            yield None

    agent = app.agent(rt.topic(TOPIC_ERASURE), name="churnwatch.erasure", concurrency=1)
    return rt.watch(agent(erasure))
