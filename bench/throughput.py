"""Worker throughput against a raw consume + Avro-decode loop, on the same broker.

Run: .venv/bin/python bench/throughput.py [--events 200000] [--customers 10000]

1. Starts a local Kafka (scripts/kafka-local.sh) unless CHURN_KAFKA_BOOTSTRAP is set.
2. Produces the input events (purchases, engagement, support, profiles) for the customers.
3. Baseline: one confluent-kafka consumer reads every input record and Avro-decodes it.
4. Worker: one churnwatch worker process consumes the same topics from the start; its
   /metrics are polled and the sustained rate is taken between 10% and 90% of the events.
Prints both rates and their ratio (worker / baseline).
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

from streams.codec import build_codec
from streams.kafka_io import produce_records
from streams.processes import bench_broker, stop_process, worker_env
from streams.security import client_config
from streams.settings import INPUT_TOPICS, Settings
from streams.topics import ensure_topics

FEATURE_STEPS = ("purchases", "engagement", "support", "profile")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def events(total: int, customers: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    rnd = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for c in range(customers):
        cid = f"cust-{c:06d}"
        out.append(("ProfileChange", {
            "event_id": f"{cid}-profile", "customer_id": cid, "occurred_at": T0,
            "segment": rnd.choice(["b2c", "b2b"]), "signup_at": T0 - timedelta(days=300),
            "plan": None, "mrr_minor": 9900, "cost_to_serve_minor": 3000, "currency": "EUR",
            "products": rnd.randint(1, 4), "referrals": 0,
            "consent": {"email": True, "sms": False, "phone": False, "push": False}}))
    for n in range(total - customers):
        cid = f"cust-{rnd.randrange(customers):06d}"
        at = T0 + timedelta(seconds=n * 30)
        kind = rnd.random()
        if kind < 0.3:
            out.append(("Purchase", {
                "event_id": f"p-{n}", "customer_id": cid, "occurred_at": at,
                "order_id": f"o-{n}", "amount_minor": rnd.randint(500, 20000),
                "currency": "EUR", "items": 1, "channel": "web"}))
        elif kind < 0.85:
            out.append(("Engagement", {
                "event_id": f"e-{n}", "customer_id": cid, "occurred_at": at,
                "kind": "session", "count": 1, "duration_s": rnd.randint(10, 900),
                "feature": None}))
        else:
            out.append(("SupportEvent", {
                "event_id": f"s-{n}", "customer_id": cid, "occurred_at": at,
                "kind": "ticket_opened", "ticket_id": f"t-{n}", "csat": None, "nps": None,
                "sentiment": rnd.uniform(-1, 1), "category": None}))
    return out


def baseline_rate(settings: Settings, expected: int) -> float:
    codec = build_codec(settings)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         **client_config(settings),
                         "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.topic(t) for t in INPUT_TOPICS])
    seen, started = 0, None
    deadline = time.monotonic() + 300
    while seen < expected and time.monotonic() < deadline:
        batch = consumer.consume(1000, timeout=1.0)
        for message in batch:
            if message.error():
                continue
            if started is None:
                started = time.perf_counter()
            codec.decode(message.value())
            seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    if seen < expected:
        raise SystemExit(f"baseline read only {seen} of {expected} records")
    return seen / elapsed


def processed(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:  # noqa: S310
            text = r.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "churnwatch_events_consumed_total"
                    and sample.labels.get("step") in FEATURE_STEPS):
                total += sample.value
    return total


def worker_rate(settings: Settings, expected: int, workdir: Path) -> tuple[float, float]:
    # the bench's settings (its cluster and credentials, topics, app id, web port), run as
    # a real deployment would: event clock, RocksDB tables
    env = worker_env(settings, CHURN_CLOCK="event", CHURN_STORE="rocksdb://",
                     CHURN_DATA_DIR=str(workdir / "state"), CHURN_LOG_LEVEL="warning")
    log = (workdir / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    marks: dict[float, float] = {}
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            done = processed(settings.web_port)
            now = time.perf_counter()
            for fraction in (0.1, 0.9):
                if fraction not in marks and done >= fraction * expected:
                    marks[fraction] = now
            if done >= expected:
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker exited; see {workdir / 'worker.log'}")
            time.sleep(0.25)
        else:
            raise SystemExit(f"worker processed only {processed(settings.web_port)} events")
    finally:
        stop_process(proc, 60)
        log.close()
    sustained = 0.8 * expected / (marks[0.9] - marks[0.1])
    return sustained, marks[0.9] - marks[0.1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        workdir = Path(tmp)
        settings = Settings(_env_file=None, kafka_bootstrap=bootstrap,
                            topic_prefix=f"bench-{uuid.uuid4().hex[:6]}-",
                            app_id=f"bench-{uuid.uuid4().hex[:6]}",
                            partitions=args.partitions, web_port=free_port())
        ensure_topics(settings)
        records = events(args.events, args.customers)
        started = time.perf_counter()
        produce_records(settings, build_codec(settings), records)
        produce_s = time.perf_counter() - started
        print(f"produced {len(records):,} events for {args.customers:,} customers "
              f"in {produce_s:.1f} s ({len(records) / produce_s:,.0f}/s)")
        base = baseline_rate(settings, len(records))
        print(f"baseline  raw consume + Avro decode: {base:>10,.0f} events/s")
        rate, window = worker_rate(settings, len(records), workdir)
        print(f"worker    sustained (10%..90%, {window:.1f} s): {rate:>10,.0f} events/s")
        print(f"ratio     worker / baseline: {rate / base:.3f}")


if __name__ == "__main__":
    main()
