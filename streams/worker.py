"""Assemble and run a churnwatch worker process."""

from __future__ import annotations

import faust

from streams import web
from streams.agents import register_all
from streams.app import create_app
from streams.codec import RegistryCodec
from streams.logs import logging_config
from streams.metrics import Metrics
from streams.runtime import Runtime
from streams.settings import Settings
from streams.topics import ensure_topics


def build(settings: Settings, metrics: Metrics | None = None) -> tuple[faust.App, Runtime]:
    """The app with every agent and web view declared, and its runtime."""
    app = create_app(settings)
    runtime = Runtime(app, settings, metrics=metrics)
    register_all(app, runtime)
    web.register(app, runtime)
    return app, runtime


def run(settings: Settings) -> None:
    """Create the topics if asked to, then run a worker until it is stopped."""
    ensure_topics(settings, create=settings.create_topics)
    app, runtime = build(settings)
    runtime.broker.install()  # one line per change of the Kafka link, not one per retry
    if isinstance(runtime.codec, RegistryCodec):
        runtime.codec.warm_up()  # register our schemas before any agent needs them
    worker = faust.Worker(
        app, loglevel=settings.log_level.upper(), quiet=True,
        logging_config=logging_config(settings.log_level, json_lines=settings.log_json))
    # no terminal spinner: Faust sets one up at any level from WARNING on, and it puts the
    # root logger at DEBUG, so that every debug call of Faust and its Kafka client builds
    # a record that the handler then drops (about 5% of a busy worker's time)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    run(Settings())
