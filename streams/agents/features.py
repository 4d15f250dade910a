"""The shape every feature agent shares: input topic -> feature state -> SignalUpdate.

A feature agent module names its :class:`~streams.pipeline.FeatureFamily` and calls
:func:`register_feature_agent`. The agent body decodes and validates (dead-lettering bad
records), applies the event to the customer's feature state (ignoring duplicates), and
publishes the family's signals for the scorer on the same partition.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.domain.events import Event, Rejection
from streams.pipeline import FeatureFamily, FeatureResult, feature_step
from streams.runtime import Message, Runtime

log = logging.getLogger("churnwatch.features")


async def publish_signals(rt: Runtime, family: FeatureFamily, event: Event, message: Message,
                          result: FeatureResult) -> None:
    """Count the outcome of a feature step and send its signals to the scorer."""
    if not result.changed:
        rt.metrics.duplicates.labels(family.step).inc()
        return
    rt.metrics.events_accepted.labels(family.step).inc()
    await rt.send_signals(event=event, family=family.family, message=message,
                          signals=result.signals, profile=result.profile)


def register_feature_agent(app: faust.App, rt: Runtime, family: FeatureFamily) -> Any:
    """Declare the family's state table and agent on the app; returns the agent."""
    table = rt.table(family.table, f"{family.family} features per customer")

    async def process(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for record in stream.events():
            done = rt.timed(family.step)
            event = await rt.accept(record.message, family.record_type, family.step)
            if event is not None:
                try:
                    result = feature_step(family, table, event, rt.settings)
                except (ValueError, TypeError, KeyError) as exc:  # a defect: route it
                    await rt.dead_letter(record.message, Rejection(
                        "processing_error", repr(exc), event.event_id, event.customer_id),
                        family.step)
                    log.exception("cannot apply event", extra={"step": family.step})
                else:
                    await publish_signals(rt, family, event, record.message, result)
            done()
            yield None

    return rt.watch(app.agent(rt.topic(family.topic), name=f"churnwatch.{family.step}",
                     concurrency=1)(process))
