"""Prometheus metrics of a churnwatch worker: one module, an injectable registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from streams.domain.retention import Snapshot

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        self.processing_seconds = Histogram(
            "churnwatch_processing_seconds", "Time to process one record in a step.",
            ["step"], buckets=LATENCY_BUCKETS, registry=r)

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

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
