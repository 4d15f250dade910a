"""Create and check churnwatch's Kafka topics.

Every churnwatch topic is keyed by ``customer_id`` and all of them must have the same
partition count (``settings.partitions``), so that every event and all state of one
customer land on the same worker (co-partitioning). :func:`ensure_topics` creates the
missing topics and refuses to go on when an existing topic has another partition count,
with a message that says how to fix it.

The functions here block (they wait on the Kafka admin API); call them before the Faust
app starts, or from a thread, never from inside an agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# confluent_kafka.admin re-exports these without listing them in __all__; this is the
# documented import path, so only mypy's implicit re-export check is silenced.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    NewTopic,
)

from streams.logs import kafka_logger
from streams.pipeline import TABLES
from streams.security import REFUSALS, client_config
from streams.settings import ALL_TOPICS, Settings

__all__ = [
    "AccessRefusedError",
    "BrokerUnreachableError",
    "MissingTopicsError",
    "TopicMismatchError",
    "TopicsError",
    "delete_topics",
    "wait_for_cluster",
    "ensure_topics",
    "physical_topics",
]

#: Seconds between metadata polls while waiting for topics to appear or disappear.
_POLL_INTERVAL_S = 0.1
#: Upper bound of one metadata request, so a dead broker cannot block a whole deadline.
_MAX_REQUEST_S = 5.0


class TopicsError(Exception):
    """Base class of every error raised by :mod:`streams.topics`."""


class BrokerUnreachableError(TopicsError):
    """The Kafka cluster did not answer within the timeout."""

    def __init__(self, bootstrap: str, timeout: float, cause: str) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        super().__init__(
            f"Kafka at {bootstrap} did not answer within {timeout:g}s ({cause}). "
            "Check that the broker is running and that CHURN_KAFKA_BOOTSTRAP points at it "
            "(for a local broker: scripts/kafka-local.sh start DIR prints the address); "
            "CHURN_KAFKA_TIMEOUT_S sets the wait."
        )


class AccessRefusedError(BrokerUnreachableError):
    """The cluster refused churnwatch's credentials or TLS set-up.

    Raised as soon as the client reports it, without waiting for the timeout: unlike a
    broker that is down, retrying cannot help. It is a :class:`BrokerUnreachableError`,
    so every command that fails with one line on an unreachable cluster does so here too.
    """

    def __init__(self, bootstrap: str, cause: str) -> None:
        self.bootstrap = bootstrap
        self.timeout = 0.0
        TopicsError.__init__(
            self,
            f"Kafka at {bootstrap} refused the connection ({cause}). Check "
            "CHURN_KAFKA_SECURITY_PROTOCOL, CHURN_KAFKA_SASL_* and CHURN_KAFKA_SSL_* "
            "(docs/operations.md, \"Secure clusters\")."
        )

    @classmethod
    def raise_on_refusal(cls, bootstrap: str) -> Callable[[KafkaError], None]:
        """An ``error_cb`` for a confluent-kafka client that raises this error (from the
        client's ``poll``, ``consume`` or ``flush``) when the cluster refuses it."""

        def error_cb(error: KafkaError) -> None:
            if error.code() in REFUSALS:
                raise cls(bootstrap, error.str())

        return error_cb


class TopicMismatchError(TopicsError):
    """Existing topics have another partition count than the configured one.

    ``mismatches`` maps each such physical topic name to its actual partition count;
    ``topic`` and ``actual`` are those of the first one, ``expected`` is the configured
    count. ``others_match`` tells whether other existing churnwatch topics already have
    the configured count (then changing the setting alone cannot fix it).
    """

    def __init__(
        self, mismatches: dict[str, int], expected: int, *, others_match: bool = False
    ) -> None:
        if not mismatches:
            raise ValueError("TopicMismatchError needs at least one mismatching topic")
        self.mismatches = dict(mismatches)
        self.expected = expected
        self.topic, self.actual = next(iter(self.mismatches.items()))
        by_count: dict[int, list[str]] = {}
        for name, actual in self.mismatches.items():
            by_count.setdefault(actual, []).append(name)
        found = "; ".join(
            f"topic {names[0]!r} has {actual} partitions"
            if len(names) == 1
            else f"topics {', '.join(repr(n) for n in names)} have {actual} partitions"
            for actual, names in by_count.items()
        )
        if len(by_count) == 1 and not others_match:
            match = f"set CHURN_PARTITIONS={self.actual} to match the existing topics"
        else:
            match = "make the existing topics agree on one count and set CHURN_PARTITIONS to it"
        fixes = [match, f"delete and recreate the topic(s) with {expected} partitions"]
        if all(actual < expected for actual in self.mismatches.values()):
            alter_topic = self.topic if len(self.mismatches) == 1 else "NAME"
            fixes.append(
                f"add partitions with `kafka-topics --alter --topic {alter_topic} "
                f"--partitions {expected}` (this moves keys to other partitions, so only "
                "before any data is written)"
            )
        super().__init__(
            f"{found}, but {expected} are configured (CHURN_PARTITIONS={expected}). "
            "All churnwatch topics must have the same partition count so that all events "
            "of a customer meet on one worker (co-partitioning). To fix it, "
            + ", or ".join(fixes)
            + "."
        )


class MissingTopicsError(TopicsError):
    """Topics are missing and creating them was not allowed."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(
            f"missing Kafka topics: {', '.join(self.missing)}. Create them with the "
            "configured partition count, or set CHURN_CREATE_TOPICS=true to let churnwatch "
            "create them."
        )


def changelog_topics(settings: Settings) -> list[str]:
    """The changelog topic of every per-customer table a worker keeps (Faust's naming).

    Workers would create them at start-up, but on a freshly started broker a worker's
    metadata can miss the newest ones; its assignor then ignores them and the scorer fails
    on every record until the metadata is refreshed minutes later. Creating them here,
    before any worker starts, avoids that race.
    """
    return [f"{settings.app_id}-{table}-changelog" for table in TABLES]


def physical_topics(settings: Settings) -> list[str]:
    """The physical names of all churnwatch topics (ALL_TOPICS order), then changelogs."""
    return [settings.topic(name) for name in ALL_TOPICS] + changelog_topics(settings)


def wait_for_cluster(settings: Settings, timeout: float | None = None) -> ClusterMetadata:
    """The cluster's metadata, once it answers; :class:`BrokerUnreachableError` if it does
    not within ``timeout`` seconds (default: ``settings.kafka_timeout_s``), at once
    :class:`AccessRefusedError` if it refuses the credentials or TLS set-up."""
    wait = settings.kafka_timeout_s if timeout is None else timeout
    return _metadata(make_admin(settings), settings, time.monotonic() + wait, wait)


def ensure_topics(
    settings: Settings,
    admin: AdminClient | None = None,
    *,
    create: bool = True,
    timeout: float | None = None,
) -> list[str]:
    """Make sure every churnwatch topic exists with ``settings.partitions`` partitions.

    Missing topics are created with ``settings.partitions`` partitions and
    ``settings.replication_factor`` replicas and the broker's default configuration,
    and the call returns once each of them has a leader for every partition. Existing
    topics are checked first, so nothing is created when one of them has another
    partition count.

    Args:
        settings: Supplies the bootstrap servers, topic prefix, partitions and replicas.
        admin: An admin client to use; by default one is made from ``settings``.
        create: Create missing topics; when false, missing topics raise
            :class:`MissingTopicsError`.
        timeout: Overall deadline in seconds for the whole call (default:
            ``settings.kafka_timeout_s``).

    Returns:
        The physical names of the topics this call created (empty when all existed).

    Raises:
        BrokerUnreachableError: The cluster did not answer in time.
        AccessRefusedError: The cluster refused the credentials or TLS set-up.
        TopicMismatchError: An existing topic has another partition count.
        MissingTopicsError: Topics are missing and ``create`` is false.
        TopicsError: The cluster refused to create a topic, or it did not appear in time.
    """
    client = admin if admin is not None else make_admin(settings)
    timeout = settings.kafka_timeout_s if timeout is None else timeout
    deadline = time.monotonic() + timeout
    wanted = physical_topics(settings)
    expected = settings.partitions

    metadata = _metadata(client, settings, deadline, timeout)
    missing = _check_existing(metadata, wanted, expected)
    if not missing:
        return []
    if not create:
        raise MissingTopicsError(missing)

    changelogs = set(changelog_topics(settings))
    new_topics = [
        NewTopic(name, num_partitions=expected, replication_factor=settings.replication_factor,
                 config={"cleanup.policy": "compact"} if name in changelogs else {})
        for name in missing
    ]
    request_s = max(_remaining(deadline), 0.1)
    futures = client.create_topics(
        new_topics, operation_timeout=request_s, request_timeout=request_s
    )
    created: list[str] = []
    for name, future in futures.items():
        error = _future_error(future, deadline)
        if error is None:
            created.append(name)
        elif error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            # Created concurrently by another worker is fine; it is checked below.
            raise TopicsError(f"could not create topic {name!r}: {error.str()}")

    def ready(md: ClusterMetadata) -> bool:
        return all(_is_ready(md, name) for name in missing)

    metadata = _wait_for(client, settings, deadline, timeout, ready, f"topics {missing}")
    still_missing = _check_existing(metadata, wanted, expected)
    if still_missing:  # pragma: no cover - _wait_for only returns once all are ready
        raise TopicsError(f"topics did not appear: {', '.join(still_missing)}")
    return [name for name in missing if name in created]


def delete_topics(
    settings: Settings,
    admin: AdminClient | None = None,
    *,
    topics: Iterable[str] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Delete churnwatch topics and wait until the cluster no longer lists them.

    Meant for tests and clean-up scripts: it destroys data.

    Args:
        settings: Supplies the bootstrap servers and topic prefix.
        admin: An admin client to use; by default one is made from ``settings``.
        topics: Physical topic names to delete; by default all churnwatch topics of
            ``settings``. Names that do not exist are skipped.
        timeout: Overall deadline in seconds for the whole call.

    Returns:
        The physical names of the topics this call deleted.

    Raises:
        BrokerUnreachableError: The cluster did not answer in time.
        TopicsError: The cluster refused a deletion, or a topic did not go away in time.
    """
    client = admin if admin is not None else make_admin(settings)
    deadline = time.monotonic() + timeout
    wanted = list(topics) if topics is not None else physical_topics(settings)

    metadata = _metadata(client, settings, deadline, timeout)
    present = [name for name in wanted if name in metadata.topics]
    if not present:
        return []

    request_s = max(_remaining(deadline), 0.1)
    futures = client.delete_topics(present, operation_timeout=request_s, request_timeout=request_s)
    deleted: list[str] = []
    for name, future in futures.items():
        error = _future_error(future, deadline)
        if error is None:
            deleted.append(name)
        elif error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise TopicsError(f"could not delete topic {name!r}: {error.str()}")

    def gone(md: ClusterMetadata) -> bool:
        return not any(name in md.topics for name in present)

    _wait_for(client, settings, deadline, timeout, gone, f"deletion of {present}")
    return deleted


def make_admin(settings: Settings) -> AdminClient:
    """An admin client for ``settings``' cluster that logs through churnwatch's logging;
    its calls raise :class:`AccessRefusedError` once the cluster refuses it."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        **client_config(settings),
        "logger": kafka_logger(),
        "error_cb": AccessRefusedError.raise_on_refusal(settings.kafka_bootstrap),
    }
    return AdminClient(config)


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _metadata(
    client: AdminClient, settings: Settings, deadline: float, timeout: float
) -> ClusterMetadata:
    """One metadata request, bounded by the deadline."""
    request_s = min(max(_remaining(deadline), 0.1), _MAX_REQUEST_S)
    while True:
        try:
            return client.list_topics(timeout=request_s)
        except KafkaException as exc:
            client.poll(0)  # hand librdkafka's own messages to the logging set-up
            if _remaining(deadline) <= 0:
                raise BrokerUnreachableError(
                    settings.kafka_bootstrap, timeout, _describe(exc)
                ) from exc
            time.sleep(min(_POLL_INTERVAL_S, max(_remaining(deadline), 0.0)))
            request_s = min(max(_remaining(deadline), 0.1), _MAX_REQUEST_S)


def _wait_for(
    client: AdminClient,
    settings: Settings,
    deadline: float,
    timeout: float,
    condition: Callable[[ClusterMetadata], bool],
    what: str,
) -> ClusterMetadata:
    """Poll the cluster metadata until ``condition`` holds or the deadline passes."""
    while True:
        metadata = _metadata(client, settings, deadline, timeout)
        if condition(metadata):
            return metadata
        if _remaining(deadline) <= 0:
            raise TopicsError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(_POLL_INTERVAL_S, max(_remaining(deadline), 0.0)))


def _check_existing(metadata: ClusterMetadata, wanted: Sequence[str], expected: int) -> list[str]:
    """Raise on a partition count mismatch; return the wanted topics that are missing."""
    missing: list[str] = []
    mismatches: dict[str, int] = {}
    matching = 0
    for name in wanted:
        topic = metadata.topics.get(name)
        if topic is None or _unknown_topic(topic.error):
            missing.append(name)
            continue
        actual = len(topic.partitions)
        if actual != expected:
            mismatches[name] = actual
        else:
            matching += 1
    if mismatches:
        raise TopicMismatchError(mismatches, expected, others_match=matching > 0)
    return missing


def _is_ready(metadata: ClusterMetadata, name: str) -> bool:
    """True when the topic exists without error and every partition has a leader."""
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in topic.partitions.values())


def _unknown_topic(error: KafkaError | None) -> bool:
    return error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def _future_error(future: Future[None], deadline: float) -> KafkaError | None:
    """Wait for an admin future; return its Kafka error, or None on success."""
    try:
        future.result(timeout=max(_remaining(deadline), 0.1))
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError):
            return error
        raise TopicsError(f"Kafka admin request failed: {exc}") from exc
    except FutureTimeoutError as exc:
        raise TopicsError("timed out waiting for the Kafka admin request") from exc
    return None


def _describe(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error.str()
    return str(exc)
