"""Logging set-up: plain or JSON lines, with the processing step as a field.

The Kafka clients' own logs come through here too: librdkafka's (confluent-kafka, whose
``logger`` option every client of ours sets to :data:`KAFKA_LOGGER`) and aiokafka's (the
worker's client). :class:`KafkaClientFilter` keeps them readable: a broker that cannot be
reached is reported once by the command that needed it, not by every reconnect attempt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

STANDARD = set(vars(logging.makeLogRecord({})))
PLAIN_FORMAT = "[%(asctime)s] [%(levelname)s] %(name)s: %(message)s"

#: The logger librdkafka's messages are sent to (the confluent-kafka ``logger`` option).
KAFKA_LOGGER = "churnwatch.kafka"
#: Loggers of the Kafka clients, whose records :class:`KafkaClientFilter` looks after.
KAFKA_CLIENT_LOGGERS = (KAFKA_LOGGER, "aiokafka")
#: Client messages logged at debug level: the coordinator a fresh consumer group waits
#: for at every start (aiokafka retries until it is there).
HARMLESS = re.compile(r"GroupCoordinatorNotAvailable|Coordinator load in progress",
                      re.IGNORECASE)
#: librdkafka's reports of a broker that does not answer, logged at debug level: the
#: command that needed the broker says so once, within CHURN_KAFKA_TIMEOUT_S, instead of
#: every reconnect attempt (about twenty a second).
UNREACHABLE = re.compile(
    r"Connection refused|Connect to .* failed|Broker transport failure|brokers are down"
    r"|Disconnected|connection closed by peer"
    r"|Failed to resolve|Timed out .*(?:ApiVersion|Metadata)|Connection setup timed out",
    re.IGNORECASE)
#: librdkafka's reports that the cluster refused the credentials or TLS set-up, logged at
#: debug level: the client raises ``streams.topics.AccessRefusedError`` on them, which the
#: command reports once, instead of every retry saying it again.
REFUSED = re.compile(r"SASL authentication error|SSL handshake failed", re.IGNORECASE)
#: Distinct messages remembered by one :class:`KafkaClientFilter`.
_REMEMBERED = 1000
_NUMBERS = re.compile(r"\d+")


def kafka_logger() -> logging.Logger:
    """The logger to give confluent-kafka clients as their ``logger`` option."""
    return logging.getLogger(KAFKA_LOGGER)


class KafkaClientFilter(logging.Filter):
    """Demotes the Kafka clients' harmless messages to debug and rate-limits the rest.

    A message that matches :data:`HARMLESS`, or a librdkafka one that matches
    :data:`UNREACHABLE` or :data:`REFUSED`, becomes a debug record (dropped unless the root
    logger is at debug level). Of the others, the same message (numbers aside) is let
    through once per ``interval`` seconds; the next one that goes through says how many
    were held back.
    Records of other loggers pass unchanged.
    """

    def __init__(self, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (last, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(KAFKA_CLIENT_LOGGERS) or getattr(
                record, "step", None) == "kafka":  # the link's own news: once per change
            return True
        message = record.getMessage()
        harmless = HARMLESS.search(message) or (
            record.name.startswith(KAFKA_LOGGER)
            and (UNREACHABLE.search(message) or REFUSED.search(message)))
        if harmless and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.levelno < logging.getLogger().getEffectiveLevel():
            return False
        key = (record.name, record.levelno, _NUMBERS.sub("#", message))
        now = self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) >= _REMEMBERED:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{message} ({held:,} more like this in the last " \
                         f"{now - (last or now):.0f}s)"
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD and key not in payload and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def logging_config(level: str, *, json_lines: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping: plain text or JSON lines on stderr."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if json_lines else {"format": PLAIN_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"kafka_clients": {"()": f"{__name__}.KafkaClientFilter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "filters": ["kafka_clients"]}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def command_log_level(level: str) -> str:
    """The log level of a command other than the worker: warnings and errors only, or
    everything when the settings ask for debug."""
    return "debug" if level.lower() == "debug" else max(
        level.lower(), "warning", key=lambda name: logging.getLevelName(name.upper()))


def customer_ref(customer_id: str | None, *, hashed: bool) -> str | None:
    """The customer id as it may appear in logs."""
    if customer_id is None or not hashed:
        return customer_id
    return hashlib.sha256(customer_id.encode()).hexdigest()[:16]
