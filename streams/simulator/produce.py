"""Producing a simulation to the input topics, malformed items included."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from streams.scenario import Record
from streams.simulator.model import TYPES, Item, Malformed

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from streams.codec import Codec
    from streams.settings import Settings


class ProduceError(RuntimeError):
    """The cluster cannot take the simulation (unreachable, or input topics missing)."""


def _check_topics(settings: Settings, client: Producer, timeout: float = 10.0) -> None:
    from confluent_kafka import KafkaException

    from streams.kafka_io import INPUT_TOPIC_OF

    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ProduceError(
            f"cannot reach the Kafka cluster at {settings.kafka_bootstrap} within "
            f"{timeout:g}s: {exc}"
        ) from exc
    needed = [settings.topic(INPUT_TOPIC_OF[t]) for t in TYPES]
    missing = [name for name in needed if name not in metadata.topics]
    if missing:
        raise ProduceError(
            f"input topic(s) {', '.join(missing)} do not exist on "
            f"{settings.kafka_bootstrap}: create them with `churnwatch topics` first"
        )


def produce_items(
    settings: Settings,
    codec: Codec,
    items: Iterable[Item],
    *,
    rate: float = 0.0,
    progress: Callable[[int], object] | None = None,
    producer: Producer | None = None,
    batch: int = 5_000,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Produce ``items`` in order to the input topics, keyed by customer id; return the
    number produced.

    Records are encoded with ``codec`` (``streams.kafka_io.produce_records``); a malformed
    item's payload is produced as it is to the topic of its family. ``rate`` limits the
    records per second (0: as fast as possible). Without ``producer``, checks first that
    the cluster answers and has the input topics (:class:`ProduceError` if not). Raises
    ``DeliveryError`` when any record was not acknowledged.
    """
    from streams.kafka_io import INPUT_TOPIC_OF, DeliveryError, make_producer, produce_records

    if producer is None:
        client = make_producer(settings)
        _check_topics(settings, client, settings.kafka_timeout_s)
    else:
        client = producer
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err}")

    size = max(1, min(batch, int(rate / 10) or 1)) if rate > 0 else batch
    pending: list[Record] = []
    count = 0
    started = clock()

    def send_pending() -> None:
        nonlocal count
        if pending:
            count += produce_records(settings, codec, pending, producer=client, progress=progress)
            pending.clear()

    for item in items:
        if rate > 0 and len(pending) == 0:
            due = started + count / rate
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        if isinstance(item, Malformed):
            send_pending()
            topic = settings.topic(INPUT_TOPIC_OF[item.type_name])
            while True:
                try:
                    client.produce(
                        topic,
                        key=item.customer_id.encode(),
                        value=item.payload,
                        headers=[("churnwatch.type", item.type_name.encode())],
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    client.poll(0.1)
            client.poll(0)
            count += 1
            if progress is not None:
                progress(1)
            continue
        pending.append(item)
        if len(pending) >= size:
            send_pending()
    send_pending()
    remaining = client.flush(60.0)
    if remaining:
        failures.append(f"{remaining} records still queued after 60s")
    if failures:
        raise DeliveryError(failures, count)
    return count
