"""Erasure: on an ErasureRequest, delete the customer from every table and tombstone its
key on every output topic (GDPR right to erasure)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.runtime import OUTPUT_TOPIC_OF, Runtime
from streams.settings import TOPIC_ERASURE

STEP = "erasure"
log = logging.getLogger("churnwatch.erasure")


def register(app: faust.App, rt: Runtime) -> Any:
    async def erasure(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            event = await rt.accept(record.message, "ErasureRequest", STEP)
            if event is not None:
                key = event.customer_id.encode()
                for table in rt.tables.values():
                    if key in table:
                        del table[key]
                rt.due.forget(event.customer_id)
                for logical in OUTPUT_TOPIC_OF.values():
                    await rt.topic(logical).send(key=key, value=None)
                rt.metrics.events_accepted.labels(STEP).inc()
                log.info("erased customer", extra={
                    "step": STEP, "customer": rt.customer_ref(event.customer_id)})
            yield None

    agent = app.agent(rt.topic(TOPIC_ERASURE), name="churnwatch.erasure", concurrency=1)
    return rt.watch(agent(erasure))
