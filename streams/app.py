"""Build the Faust app from the settings object. Never imports agents."""

from __future__ import annotations

import faust

from streams.security import faust_credentials
from streams.settings import Settings


def broker_urls(bootstrap: str) -> list[str]:
    """Faust broker URLs for a comma-separated bootstrap list."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_app(settings: Settings) -> faust.App:
    """The one Faust app of a churnwatch process, configured from ``settings``."""
    return faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        # the ingest agent holds events for event-time order, acked once applied: a
        # rebalance or a stop must not wait for them (they are read again by the next
        # owner of their partition)
        stream_wait_empty=False,
        # static membership (group.instance.id): see docs/operations.md, "Restarts"
        consumer_group_instance_id=settings.worker_id,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.advertised_url(),
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        # outputs and changelog records go out in fewer, larger requests: one request per
        # record batch cost the worker about a sixth of its time in socket writes
        producer_linger=settings.produce_linger_ms / 1000,
        producer_max_batch_size=256 * 1024,
    )
