"""Small confluent-kafka helpers for the CLI, the demo, the tests and the benchmarks.

These run outside the Faust worker (blocking calls; never use them inside an agent).
Records are produced keyed by their ``customer_id`` with the ``murmur2_random``
partitioner, the partitioner of the Java client and of Faust's producer, so a key lands
on the same partition whichever client wrote it (librdkafka's default, ``consistent_random``,
hashes keys with CRC32 and would put them elsewhere).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from streams.codec import Codec, DecodeError
from streams.families import ERASURE_TYPE, REGISTRY
from streams.logs import kafka_logger
from streams.security import client_config
from streams.settings import (
    TOPIC_ERASURE,
    Settings,
)

#: Input record type -> logical input topic.
INPUT_TOPIC_OF: dict[str, str] = {f.record_type: f.topic for f in REGISTRY}
INPUT_TOPIC_OF[ERASURE_TYPE] = TOPIC_ERASURE

#: Type name yielded for a record without a value (a tombstone, e.g. after an erasure).
TOMBSTONE = "Tombstone"
#: Type name yielded for a value the codec cannot decode.
UNDECODABLE = "Undecodable"

#: How many records to produce between progress callbacks.
_PROGRESS_EVERY = 500

Output = tuple[str, str, dict[str, Any] | None]
#: Sort key of a consumed record: broker timestamp, rank of its topic, partition, offset.
Order = tuple[int, int, int, int]


class DeliveryError(RuntimeError):
    """One or more records were not acknowledged by the cluster."""

    def __init__(self, failures: Sequence[str], total: int) -> None:
        self.failures = list(failures)
        shown = "; ".join(self.failures[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        super().__init__(f"{len(self.failures)} of {total} records were not delivered: "
                         f"{shown}{more}")


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer for ``settings``' cluster, partitioning keys as Java and Faust do; its
    ``poll`` and ``flush`` raise ``streams.topics.AccessRefusedError`` once the cluster
    refuses it."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        **client_config(settings),
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "enable.idempotence": True,
        "acks": "all",
        "queue.buffering.max.messages": 200_000,
        "logger": kafka_logger(),
        "error_cb": _refused(settings),
    }
    config.update(overrides)
    return Producer(config)


def _refused(settings: Settings) -> Callable[[KafkaError], None]:
    """An ``error_cb`` that raises ``streams.topics.AccessRefusedError`` (from ``poll``,
    ``flush`` or ``consume``) once the cluster refuses the credentials or TLS set-up."""
    from streams.topics import AccessRefusedError

    return AccessRefusedError.raise_on_refusal(settings.kafka_bootstrap)


def _send(producer: Producer, topic: str, key: bytes | None, value: bytes | None,
          on_delivery: Callable[[Any, Any], None],
          headers: list[tuple[str, str | bytes | None]] | None = None) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers,
                             on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)  # the local queue is full: serve deliveries, then retry


def produce_records(
    settings: Settings, codec: Codec, records: Iterable[tuple[str, Mapping[str, Any]]], *,
    progress: Callable[[int], object] | None = None, producer: Producer | None = None,
    timeout: float = 60.0,
) -> int:
    """Encode and produce input records to their topics, keyed by customer id.

    Each record goes to the input topic of its type (``INPUT_TOPIC_OF``, with the
    settings' topic prefix). ``progress`` is called with the number of records produced
    since its previous call. Waits until every record is acknowledged and raises
    :class:`DeliveryError` if any was not. Returns the number of records produced.
    A given ``producer`` is used (and flushed) instead of a new one.
    """
    client = make_producer(settings) if producer is None else producer
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err}")

    count = pending = 0
    for type_name, record in records:
        try:
            logical = INPUT_TOPIC_OF[type_name]
        except KeyError:
            raise ValueError(f"{type_name} is not an input record type; known: "
                             f"{', '.join(INPUT_TOPIC_OF)}") from None
        _send(client, settings.topic(logical), str(record["customer_id"]).encode(),
              codec.encode(type_name, record), delivered,
              headers=[("churnwatch.type", type_name.encode())])
        client.poll(0)
        count += 1
        pending += 1
        if progress is not None and pending >= _PROGRESS_EVERY:
            progress(pending)
            pending = 0
    remaining = client.flush(timeout)
    if progress is not None and pending:
        progress(pending)
    if remaining:
        failures.append(f"{remaining} records still queued after {timeout:g}s")
    if failures:
        raise DeliveryError(failures, count)
    return count


def produce_raw(settings: Settings, topic_logical: str, key: bytes | None,
                value: bytes | None, *, timeout: float = 30.0) -> None:
    """Produce one record of arbitrary bytes (e.g. a malformed one) and wait for it."""
    producer = make_producer(settings, **{"linger.ms": 0})
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err}")

    _send(producer, settings.topic(topic_logical), key, value, delivered)
    remaining = producer.flush(timeout)
    if remaining:
        failures.append(f"not acknowledged within {timeout:g}s")
    if failures:
        raise DeliveryError(failures, 1)


class OutputReader:
    """A consumer of churnwatch topics that decodes what it reads.

    ``poll(timeout)`` returns at most what is already there (or arrives within the
    timeout) as (logical topic, type name, record) triples, ordered by the broker
    timestamp, then by the position of the topic in ``topics``, then by offset.
    A tombstone yields type :data:`TOMBSTONE` and record None; bytes the codec cannot
    decode yield type :data:`UNDECODABLE` and ``{"error", "key", "payload"}``.
    Once every broker has been down for ``settings.kafka_timeout_s`` and the cluster still
    does not answer, reading raises ``streams.topics.BrokerUnreachableError``; once the
    cluster refuses the credentials or TLS set-up, ``streams.topics.AccessRefusedError``.
    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, settings: Settings, codec: Codec, topics: Sequence[str], *,
                 group_id: str | None = None, from_beginning: bool = True) -> None:
        self.codec = codec
        self.settings = settings
        self._down_since: float | None = None  # monotonic time all brokers went down
        self._refused = _refused(settings)
        self.logical = {settings.topic(t): t for t in topics}
        self._rank = {settings.topic(t): i for i, t in enumerate(topics)}
        self.consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap,
            **client_config(settings),
            "group.id": group_id or f"churnwatch-reader-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": group_id is not None,
            "enable.partition.eof": False,
            "topic.metadata.refresh.interval.ms": 2000,
            "logger": kafka_logger(),
            "error_cb": self._on_error,
        })
        self.consumer.subscribe(list(self.logical))
        self._closed = False

    def __enter__(self) -> OutputReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.consumer.close()

    def _on_error(self, error: KafkaError) -> None:
        self._refused(error)
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self._down_since is None:
            self._down_since = time.monotonic()

    def _check_cluster(self) -> None:
        """Raise once the brokers have been down for the timeout and still do not answer;
        forget the outage when they answer again."""
        from streams.topics import BrokerUnreachableError

        since = self._down_since
        if since is None or time.monotonic() - since < self.settings.kafka_timeout_s:
            return
        try:
            self.consumer.list_topics(timeout=min(5.0, self.settings.kafka_timeout_s))
        except KafkaException as exc:
            raise BrokerUnreachableError(self.settings.kafka_bootstrap,
                                         self.settings.kafka_timeout_s, str(exc)) from exc
        self._down_since = None

    def _decode(self, message: Any) -> Output:
        logical = self.logical.get(message.topic(), message.topic())
        value = message.value()
        if value is None:
            return logical, TOMBSTONE, None
        try:
            type_name, record = self.codec.decode(value)
        except DecodeError as exc:
            return logical, UNDECODABLE, {"error": str(exc), "key": message.key(),
                                          "payload": value}
        return logical, type_name, record

    def _read(self, timeout: float, max_records: int) -> list[tuple[Order, Output]]:
        batch: list[tuple[Order, Output]] = []
        for message in self.consumer.consume(max_records, timeout):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue  # a topic not created yet; the subscription picks it up later
                raise KafkaException(error)
            topic = message.topic() or ""
            order = (message.timestamp()[1], self._rank.get(topic, 0),
                     message.partition() or 0, message.offset() or 0)
            batch.append((order, self._decode(message)))
        if not batch:
            self._check_cluster()
        batch.sort(key=lambda item: item[0])
        return batch

    def poll(self, timeout: float, max_records: int = 1000) -> list[Output]:
        """What arrives within ``timeout`` seconds (or the first ``max_records``)."""
        return [output for _, output in self._read(timeout, max_records)]


def consume_outputs(settings: Settings, codec: Codec, topics: list[str], *,
                    group_id: str | None = None, from_beginning: bool = True,
                    poll_timeout: float = 1.0) -> Iterator[Output]:
    """Yield (logical topic, type name, decoded record) for every record on ``topics``,
    forever (until the caller stops iterating; the consumer is then closed)."""
    with OutputReader(settings, codec, topics, group_id=group_id,
                      from_beginning=from_beginning) as reader:
        while True:
            yield from reader.poll(poll_timeout)


def collect(settings: Settings, codec: Codec, topics: list[str], *,
            until: Callable[[list[Output]], bool], timeout: float,
            group_id: str | None = None) -> list[Output]:
    """Read ``topics`` from the beginning until ``until(received)`` is true or ``timeout``
    seconds have passed; return what was received either way (the caller asserts).

    The result is ordered by broker timestamp, then by the position of the topic in
    ``topics``, then by offset, so outputs a worker sends together (a health change and
    the alert it raises) come back in the order they were sent whatever topic they are on.
    """
    deadline = time.monotonic() + timeout
    received: list[tuple[Order, Output]] = []

    def ordered() -> list[Output]:
        return [output for _, output in sorted(received, key=lambda item: item[0])]

    with OutputReader(settings, codec, topics, group_id=group_id) as reader:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ordered()
            received.extend(reader._read(min(remaining, 0.25), 1000))
            if until(ordered()):
                # one more short read: records sent together on other topics come along
                received.extend(reader._read(0.5, 1000))
                return ordered()
