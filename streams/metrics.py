"""Prometheus metrics of a churnwatch worker: one module, an injectable registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.domain.retention import Snapshot

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)
#: event time -> processed: seconds up to a week (a replay of old events lands in +Inf)
EVENT_AGE_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
                     86400.0, 604800.0)
SCORE_BUCKETS = tuple(float(x) for x in range(10, 101, 10))

#: (topic, partition, lag in records) for each partition this worker consumes
LagSource = Callable[[], Iterable[tuple[str, int, int]]]


class LagCollector(Collector):
    """Consumer lag per topic-partition (end offset minus committed offset), computed
    when Prometheus scrapes, from what the worker's consumer already knows."""

    def __init__(self) -> None:
        self.source: LagSource = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "churnwatch_consumer_lag", "Records not yet committed per topic-partition "
            "(end offset minus committed offset).", labels=["topic", "partition"])
        for topic, partition, lag in self.source():
            family.add_metric([topic, str(partition)], lag)
        yield family


class Metrics:
    """The worker's metrics, registered on the given (or a fresh) registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "churnwatch_events_consumed_total", "Input records consumed.",
            ["topic", "step"], registry=r)
        self.events_accepted = Counter(
            "churnwatch_events_accepted_total", "Input events that changed customer state.",
            ["step"], registry=r)
        self.applied = Counter(
            "churnwatch_events_applied_total", "Accepted input events applied to customer "
            "state in event-time order (duplicates included).", ["step"], registry=r)
        self.duplicates = Counter(
            "churnwatch_duplicate_events_total", "Events ignored as recently seen ids.",
            ["step"], registry=r)
        self.rekeyed = Counter(
            "churnwatch_rekeyed_events_total",
            "Records whose Kafka key was not their customer_id, re-sent with the right key.",
            ["step"], registry=r)
        self.dead_letters = Counter(
            "churnwatch_dead_letters_total", "Records routed to the dead-letter topic.",
            ["step", "reason"], registry=r)
        self.outputs = Counter(
            "churnwatch_outputs_total", "Output events published.",
            ["type", "band"], registry=r)
        self.agent_crashes = Counter(
            "churnwatch_agent_crashes_total", "Agent crashes (the agent is restarted; the "
            "worker reports not ready for a minute after each).", ["agent"], registry=r)
        self.at_risk = Counter(
            "churnwatch_at_risk_total", "CustomerAtRisk events by likely churn reason and "
            "the team they are routed to.", ["churn_reason", "team"], registry=r)
        self.registry_retries = Counter(
            "churnwatch_schema_registry_retries_total", "Attempts to fetch a schema that "
            "failed because the Schema Registry could not answer (retried with backoff).",
            registry=r)
        self.held = Gauge(
            "churnwatch_events_held", "Accepted events waiting for the low watermark, to be "
            "applied in event-time order.", registry=r)
        self.processing_seconds = Histogram(
            "churnwatch_processing_seconds", "Time to process one batch of records.",
            ["step"], buckets=LATENCY_BUCKETS, registry=r)

        self.event_age = Histogram(
            "churnwatch_event_age_seconds", "Wall time from an event's occurred_at until a "
            "step processed it.", ["step"], buckets=EVENT_AGE_BUCKETS, registry=r)
        self.end_to_end = Histogram(
            "churnwatch_end_to_end_seconds", "Wall time from the input record's append to "
            "Kafka until an output it caused was sent.", ["type"], buckets=LATENCY_BUCKETS,
            registry=r)
        self.scores = Histogram(
            "churnwatch_published_score", "Scores of published HealthScoreChanged events.",
            buckets=SCORE_BUCKETS, registry=r)
        self.customers_per_partition = Gauge(
            "churnwatch_customers_per_partition", "Scored customers this worker holds, per "
            "partition.", ["partition"], registry=r)
        self.lag = LagCollector()
        r.register(self.lag)
        self.timer_checked = Counter(
            "churnwatch_lapse_checks_total", "Customers re-scored by the silence timer.",
            registry=r)
        self.timer_seconds = Histogram(
            "churnwatch_lapse_tick_seconds", "Duration of one silence-timer tick.",
            buckets=LATENCY_BUCKETS, registry=r)

        self.customers_by_band = Gauge(
            "churnwatch_customers", "Customers held by this worker, per health band.",
            ["band"], registry=r)
        self.customers_by_segment = Gauge(
            "churnwatch_customers_by_segment", "Customers held by this worker, per segment.",
            ["segment"], registry=r)
        self.customers_by_activity = Gauge(
            "churnwatch_customers_by_activity",
            "Customers held by this worker: active, inactive, churned, new, unknown.",
            ["state"], registry=r)
        self.value_at_stake = Gauge(
            "churnwatch_value_at_stake_minor", "Revenue this worker's customers are expected "
            "to bring within the BG/NBD horizon if they stay, per band and currency (minor "
            "units).", ["band", "currency"], registry=r)
        self.nps = Gauge(
            "churnwatch_nps", "Net Promoter Score over the latest answers of this worker's "
            "customers (-100..100).", registry=r)

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Publish a retention snapshot (see streams.domain.retention) as gauges."""
        for band, count in snapshot["bands"].items():
            self.customers_by_band.labels(band).set(count)
        self.customers_by_segment.clear()
        for segment, count in snapshot["segments"].items():
            self.customers_by_segment.labels(segment).set(count)
        for state, count in snapshot["activity"].items():
            self.customers_by_activity.labels(state).set(count)
        self.nps.set(snapshot["nps"] if snapshot["nps"] is not None else float("nan"))
        self.value_at_stake.clear()
        for band, by_currency in snapshot["value_at_stake"].items():
            for currency, value in by_currency.items():
                self.value_at_stake.labels(band, currency).set(value)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
