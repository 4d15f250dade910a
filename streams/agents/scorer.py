"""The scorer: SignalUpdates in; HealthScoreChanged, CustomerAtRisk, CustomerRecovered out.

The scorer knows only signals (by name), the profile its profile updates carry (segment,
tenure, fit and consent) and the scoring config. It reads no other agent's table, so what
it publishes depends only on its own input, however far ahead the feature agents run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.codec import DecodeError
from streams.domain.events import Rejection
from streams.pipeline import HEALTH_TABLE, score_step
from streams.runtime import INPUT_TS_HEADER, Runtime, header
from streams.settings import TOPIC_SIGNALS

STEP = "scorer"


def register(app: faust.App, rt: Runtime) -> Any:
    health_table = rt.table(HEALTH_TABLE, "signals, score and alert state per customer")

    async def scorer(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            done = rt.timed(STEP)
            message = record.message
            rt.metrics.events_consumed.labels(message.topic, STEP).inc()
            try:
                _, update = rt.codec.decode(message.value, "SignalUpdate")
            except DecodeError as exc:
                await rt.dead_letter(message, Rejection(exc.reason, str(exc)), STEP)
            else:
                try:
                    result = score_step(health_table, update, rt.scoring, rt.settings,
                                        message.partition)
                except (ValueError, TypeError, KeyError) as exc:  # a defect: route it
                    await rt.dead_letter(message, Rejection(
                        "processing_error", repr(exc), update.get("event_id"),
                        update.get("customer_id")), STEP)
                    done()
                    yield None
                    continue
                if result.erased:
                    await rt.erase_outputs(update["customer_id"])
                elif result.due_ms is not None:
                    rt.due.schedule(update["customer_id"], result.due_ms, message.partition)
                input_ts = header(message, INPUT_TS_HEADER)
                await rt.publish(result.outputs, STEP,
                                 input_ms=int(input_ts) if input_ts else None)
            done()
            yield None

    agent = app.agent(rt.topic(TOPIC_SIGNALS), name="churnwatch.scorer", concurrency=1)
    return rt.watch(agent(scorer))
