"""ensure_topics against a real broker: creates, is idempotent, refuses mismatches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from streams.settings import ALL_TOPICS, TOPIC_PURCHASES, TOPIC_TICKS, Settings
from streams.topics import (
    BrokerUnreachableError,
    MissingTopicsError,
    TopicMismatchError,
    changelog_topics,
    delete_topics,
    ensure_topics,
    physical_topics,
)
from tests.integration.workers import wait_for

pytestmark = pytest.mark.integration


def partition_counts(admin: AdminClient, prefix: str) -> dict[str, int]:
    metadata = admin.list_topics(timeout=10)
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name.startswith(prefix)
    }


def create_topic(admin: AdminClient, name: str, partitions: int) -> None:
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)
    # created is not yet visible everywhere: wait until the metadata shows its partitions
    # (else the code under test may take it for missing on a loaded machine)
    wait_for(lambda: len(getattr(admin.list_topics(name, timeout=10).topics.get(name),
                                 "partitions", {})) == partitions,
             timeout=30, what=f"topic {name} in the metadata")


def test_creates_every_topic_with_the_configured_partitions_once(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
    drop_topics: Callable[[Settings], None],
) -> None:
    settings = make_settings(partitions=3)
    drop_topics(settings)
    expected = {settings.topic(name): 3 for name in ALL_TOPICS}

    created = ensure_topics(settings, admin)

    assert sorted(created) == sorted(physical_topics(settings))
    assert partition_counts(admin, settings.topic_prefix) == expected
    # the tables' changelogs exist before any worker starts, compacted
    changelogs = changelog_topics(settings)
    assert partition_counts(admin, f"{settings.app_id}-") == dict.fromkeys(changelogs, 3)
    assert f"{settings.app_id}-customer-health-changelog" in changelogs
    resource = ConfigResource(ResourceType.TOPIC, changelogs[0])
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    assert config["cleanup.policy"].value == "compact"
    # A second run (another worker starting, or a restart) changes nothing.
    assert ensure_topics(settings, admin) == []
    assert partition_counts(admin, settings.topic_prefix) == expected


def test_makes_its_own_admin_client_from_the_settings(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
    drop_topics: Callable[[Settings], None],
) -> None:
    settings = make_settings()
    drop_topics(settings)

    assert len(ensure_topics(settings)) == len(ALL_TOPICS) + len(changelog_topics(settings))
    assert set(partition_counts(admin, settings.topic_prefix).values()) == {2}


def test_only_creates_the_topics_that_are_missing(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
    drop_topics: Callable[[Settings], None],
) -> None:
    settings = make_settings(partitions=2)
    drop_topics(settings)
    ticks = settings.topic(TOPIC_TICKS)
    create_topic(admin, ticks, 2)

    created = ensure_topics(settings, admin)

    assert ticks not in created
    assert sorted(created) == sorted(t for t in physical_topics(settings) if t != ticks)


def test_refuses_an_existing_topic_with_more_partitions(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
    drop_topics: Callable[[Settings], None],
) -> None:
    settings = make_settings(partitions=2)
    drop_topics(settings)
    ticks = settings.topic(TOPIC_TICKS)
    create_topic(admin, ticks, 3)

    with pytest.raises(TopicMismatchError) as caught:
        ensure_topics(settings, admin)

    error = caught.value
    assert (error.topic, error.actual, error.expected) == (ticks, 3, 2)
    message = str(error)
    assert f"topic '{ticks}' has 3 partitions, but 2 are configured" in message
    assert "co-partitioning" in message
    assert "set CHURN_PARTITIONS=3 to match" in message
    assert "recreate" in message
    # Partitions cannot be removed, so altering is not offered.
    assert "--alter" not in message
    # Nothing was created next to the mismatching topic.
    assert partition_counts(admin, settings.topic_prefix) == {ticks: 3}


def test_refuses_an_existing_topic_with_fewer_partitions(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
    drop_topics: Callable[[Settings], None],
) -> None:
    settings = make_settings(partitions=2)
    drop_topics(settings)
    ensure_topics(settings, admin)
    purchases = settings.topic(TOPIC_PURCHASES)
    delete_topics(settings, admin, topics=[purchases])
    create_topic(admin, purchases, 1)

    with pytest.raises(TopicMismatchError) as caught:
        ensure_topics(settings, admin)

    message = str(caught.value)
    assert f"topic '{purchases}' has 1 partitions, but 2 are configured" in message
    assert f"kafka-topics --alter --topic {purchases} --partitions 2" in message
    # The other topics already have 2 partitions: changing the setting alone cannot help.
    assert "CHURN_PARTITIONS=1" not in message


def test_without_create_missing_topics_are_an_error(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
) -> None:
    settings = make_settings()

    with pytest.raises(MissingTopicsError) as caught:
        ensure_topics(settings, admin, create=False)

    assert settings.topic(TOPIC_TICKS) in str(caught.value)
    assert "CHURN_CREATE_TOPICS=true" in str(caught.value)
    assert partition_counts(admin, settings.topic_prefix) == {}


def test_delete_topics_removes_them(
    make_settings: Callable[..., Settings],
    admin: AdminClient,
) -> None:
    settings = make_settings()
    ensure_topics(settings, admin)

    deleted = delete_topics(settings, admin)

    assert sorted(deleted) == sorted(physical_topics(settings))
    assert partition_counts(admin, settings.topic_prefix) == {}
    assert delete_topics(settings, admin) == []


def test_an_unreachable_broker_is_a_clear_error_not_a_hang(
    make_settings: Callable[..., Settings],
) -> None:
    # Nothing listens on port 1 of the loopback address.
    settings = make_settings(kafka_bootstrap="127.0.0.1:1")

    with pytest.raises(BrokerUnreachableError) as caught:
        ensure_topics(settings, timeout=2)

    assert "127.0.0.1:1" in str(caught.value)
    assert "CHURN_KAFKA_BOOTSTRAP" in str(caught.value)
