"""Whether a worker can reach Kafka, told once per change instead of once per retry.

While the brokers are down, the Kafka client of the worker (aiokafka) logs an ERROR line
for every failed connection, metadata refresh, fetch and coordinator look-up: about 75 a
second, all saying the same. :class:`BrokerLink` is a logging filter on the client's
loggers that learns the link's state from those reports: the first failure is logged as
it comes, the ones after it are held back; when failures have lasted
:data:`UNREACHABLE_AFTER_S` the worker logs one warning and ``/ready`` answers that Kafka
is unreachable; once no failure has come for :data:`REACHABLE_AFTER_S`, one line says
that Kafka is back and how many errors were held back. Other client log lines pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: The client's loggers (aiokafka names most of them after their modules).
CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.cluster",
    "aiokafka.conn",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)
#: Words of the client's reports that a broker could not be reached.
CONNECTION_FAILURES = (
    "Unable connect to node",
    "Unable to update metadata",
    "Connect call failed",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "CoordinatorNotAvailable",
    "marking coordinator dead",
)
#: Failures for this long make the link unreachable (a single one is a retry, not an
#: outage).
UNREACHABLE_AFTER_S = 2.0
#: No failure for this long makes it reachable again.
REACHABLE_AFTER_S = 3.0

log = logging.getLogger("churnwatch.kafka")


def is_connection_failure(record: logging.LogRecord) -> bool:
    """Whether a client log record reports that a broker could not be reached."""
    if record.levelno < logging.WARNING:
        return False
    text = record.getMessage()
    return any(words in text for words in CONNECTION_FAILURES)


class BrokerLink(logging.Filter):
    """The state of the worker's link to Kafka, from its client's failure reports."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.monotonic = monotonic
        self.first_failure: float | None = None  # start of the current run of failures
        self.last_failure = 0.0
        self.unreachable = False
        self.held_back = 0

    def install(self) -> None:
        """Filter the client's loggers (call once, in the worker process)."""
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_connection_failure(record):
            return True
        return self.failed()

    def failed(self) -> bool:
        """Count one failure to reach a broker; True for the first of a run (to be logged
        as it is), False for the others (held back)."""
        now = self.monotonic()
        self.last_failure = now
        if self.first_failure is None:
            self.first_failure = now
            return True
        self.held_back += 1
        self.check()
        return False

    def check(self) -> None:
        """Move to the state the failures say (also called by a timer: recovery is told by
        the failures stopping)."""
        if self.first_failure is None:
            return
        now = self.monotonic()
        if now - self.last_failure >= REACHABLE_AFTER_S:
            if self.unreachable:
                log.warning("Kafka is reachable again after %.0f s (%d connection errors of "
                            "the client not logged)", self.last_failure - self.first_failure,
                            self.held_back, extra={"step": "kafka"})
            elif self.held_back:
                log.info("%d more connection errors of the client not logged",
                         self.held_back, extra={"step": "kafka"})
            self.first_failure, self.unreachable, self.held_back = None, False, 0
        elif not self.unreachable and now - self.first_failure >= UNREACHABLE_AFTER_S:
            self.unreachable = True
            log.error("Kafka is unreachable: the client has failed to connect for %.0f s; "
                      "its further connection errors are not logged until it is back",
                      now - self.first_failure, extra={"step": "kafka"})

    def unreachable_for(self) -> float | None:
        """Seconds since the failures began while the link is down, else None."""
        if not self.unreachable or self.first_failure is None:
            return None
        return self.monotonic() - self.first_failure
