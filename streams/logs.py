"""Logging set-up: plain or JSON lines, with the processing step as a field."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

STANDARD = set(vars(logging.makeLogRecord({})))
PLAIN_FORMAT = "[%(asctime)s] [%(levelname)s] %(name)s: %(message)s"


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
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def customer_ref(customer_id: str | None, *, hashed: bool) -> str | None:
    """The customer id as it may appear in logs."""
    if customer_id is None or not hashed:
        return customer_id
    return hashlib.sha256(customer_id.encode()).hexdigest()[:16]
