"""Records of a megabyte and more on an input topic reach the dead-letter topic, within the
producer's message limit, and the worker goes on with the records after them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from streams.codec import build_codec
from streams.kafka_io import collect, make_producer, produce_records
from streams.settings import TOPIC_DEAD_LETTER, TOPIC_HEALTH, TOPIC_PURCHASES, Settings
from tests.integration.test_pipeline import purchase

pytestmark = pytest.mark.integration

#: the input topic and the test's producer accept records up to this size
LARGE_MESSAGES = 4 * 1024 * 1024


@pytest.fixture
def settings(event_settings: Callable[..., Settings], admin: AdminClient) -> Settings:
    settings = event_settings(lapse_check_interval_s=3600)
    # a cluster whose input topic takes records of more than the 1 MB default
    resource = ConfigResource(
        ConfigResource.Type.TOPIC, settings.topic(TOPIC_PURCHASES),
        incremental_configs=[ConfigEntry("max.message.bytes", str(LARGE_MESSAGES),
                                         incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    return settings


def test_records_of_a_megabyte_are_dead_lettered_and_the_worker_goes_on(settings, worker):
    codec = build_codec(settings)
    _, first = purchase("dora", 1, 1.0)
    _, after = purchase("dora", 2, 2.0)
    huge_avro = codec.encode("Purchase", dict(first, event_id="huge",
                                              order_id="o" * 1_200_000))
    huge_garbage = bytes(range(256)) * 6000  # 1.5 MB that is not Avro at all
    assert len(huge_avro) > 1024 * 1024 and len(huge_garbage) > 1024 * 1024
    producer = make_producer(settings, **{"message.max.bytes": LARGE_MESSAGES})
    produce_records(settings, codec, [("Purchase", first)], producer=producer)
    for value in (huge_avro, huge_garbage):
        producer.produce(settings.topic(TOPIC_PURCHASES), key=b"dora", value=value)
    produce_records(settings, codec, [("Purchase", after)], producer=producer)

    letters = collect(settings, codec, [TOPIC_DEAD_LETTER], timeout=60,
                      until=lambda got: len(got) >= 2)
    assert [(t, r["reason"]) for _, t, r in letters] == [("DeadLetter", "too_large")] * 2
    for (_, _, letter), original in zip(letters, (huge_avro, huge_garbage), strict=True):
        assert letter["payload_size"] == len(original)
        assert letter["payload_sha256"] == hashlib.sha256(original).hexdigest()
        assert original.startswith(letter["payload"]) and len(letter["payload"]) < len(original)

    # the purchase after them is processed: the second one moves the customer's score
    health = collect(settings, codec, [TOPIC_HEALTH], timeout=60, until=bool)
    assert {r["customer_id"] for _, _, r in health} == {"dora"}
    worker.wait_metric("churnwatch_events_accepted_total", 2, step="purchases")
    assert worker.metric("churnwatch_agent_crashes_total") == 0
    assert worker.proc.poll() is None
