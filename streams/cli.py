"""The ``churnwatch`` command line.

Every command reads its settings from the environment (``CHURN_*``, see
``streams.settings``); an option given on the command line overrides only the setting it
names. Heavy imports (Faust) happen inside the commands that need them, so ``--help`` and
the Kafka-only commands start fast.

The commands live in :mod:`streams.commands` by what they do; this module makes the app,
registers them in the order ``--help`` lists them, and is the console script's entry point.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from streams.commands.common import _parse_time as _parse_time  # tests parse times here
from streams.commands.common import load_settings
from streams.commands.live import demo, topics, watch, worker
from streams.commands.offline import backtest, calibrate
from streams.commands.produce import produce, produce_scenario, simulate

app = typer.Typer(
    name="churnwatch",
    help="Event-driven churn risk: explainable customer health scores and at-risk events "
         "from Kafka streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _logging() -> None:
    """Route every log, the Kafka clients' included, through churnwatch's logging set-up
    (a worker sets its own level when Faust starts)."""
    import logging.config

    from streams.logs import command_log_level, logging_config

    settings = load_settings()
    logging.config.dictConfig(logging_config(command_log_level(settings.log_level),
                                             json_lines=settings.log_json))


app.command()(worker)
app.command()(topics)
app.command("produce-scenario")(produce_scenario)
app.command()(simulate)
app.command()(produce)
app.command()(watch)
app.command()(backtest)
app.command()(calibrate)
app.command()(demo)


def main() -> None:
    """Entry point of the ``churnwatch`` console script.

    An error no command expected is one line and exit code 1; its traceback is shown
    with CHURN_LOG_LEVEL=debug."""
    import logging

    try:
        app()
    except Exception as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] {type(exc).__name__}: {exc} (CHURN_LOG_LEVEL=debug "
            "shows where)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
