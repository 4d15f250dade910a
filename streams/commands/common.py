"""What the ``churnwatch`` commands share: the common options, the settings, one-line errors.

Every command reads its settings from the environment (``CHURN_*``, see
``streams.settings``); an option given on the command line overrides only the setting it
names (:func:`load_settings`).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from streams.settings import Settings

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", help="Kafka bootstrap servers (overrides CHURN_KAFKA_BOOTSTRAP).")]
Prefix = Annotated[str | None, typer.Option(
    "--topic-prefix", help="Topic name prefix (overrides CHURN_TOPIC_PREFIX).")]
Currency = Annotated[str, typer.Option(help="Currency of a CSV's amounts (ISO 4217 code).")]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options that were given on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        Console(stderr=True).print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def _reach(settings: Settings) -> None:
    """Fail with one line unless the cluster answers within CHURN_KAFKA_TIMEOUT_S."""
    from streams.topics import BrokerUnreachableError, wait_for_cluster

    try:
        wait_for_cluster(settings)
    except BrokerUnreachableError as exc:
        raise _fail(str(exc)) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line and give the exit to raise; with CHURN_LOG_LEVEL=debug the
    exception being handled, if any, is logged with its traceback first."""
    import logging

    if sys.exc_info()[0] is not None:
        logging.getLogger("churnwatch").debug("failed", exc_info=True)
    Console(stderr=True).print(f"[bold red]error:[/bold red] {message}", highlight=False,
                               soft_wrap=True)
    return typer.Exit(code)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"{option} {value!r} is not an ISO date or datetime", 2) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
