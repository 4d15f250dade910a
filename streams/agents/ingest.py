"""The ingest agent: every input topic in, every output out, in one Faust hop per record.

It reads all the input topics (co-partitioned, so one worker holds all of a customer's
records) and the worker's tick topic, a batch at a time, and hands each batch to
:class:`streams.ingest.Ingest`: intake, event-time order, the family step and the score in
one step, silence checks, and one table write per changed customer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.ingest import Ingest
from streams.runtime import Runtime
from streams.settings import INPUT_TOPICS, TOPIC_TICKS


def register(app: faust.App, rt: Runtime) -> Any:
    ingest = rt.ingest = Ingest(rt)
    settings = rt.settings
    topic = app.topic(
        *(settings.topic(t) for t in (*INPUT_TOPICS, TOPIC_TICKS)), key_type=bytes,
        value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        ingest.stale = True  # drop what was held; read states from the tables again

    async def process(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.batch_size, settings.batch_wait_s)
        async for batch in batches:
            await ingest.run(batch)
            yield None

    return rt.watch(app.agent(topic, name="churnwatch.ingest", concurrency=1)(process))
