"""Worker throughput and latency against Faust's own ceiling, on one broker in one run.

Run: .venv/bin/python bench/throughput.py [--events 200000] [--customers 10000]

1. Starts a local Kafka (scripts/kafka-local.sh) unless CHURN_KAFKA_BOOTSTRAP is set, and
   produces the input events (profiles, purchases, engagement, support) for the customers.
2. raw: one confluent-kafka consumer reads every input record and Avro-decodes it.
3. Faust ceiling: a minimal Faust agent that only decodes (bench/faust_ceiling.py).
4. churnwatch with 1 process, then with 2 (``churnwatch worker --processes 2``), each from
   the start of the topics with its own consumer group, on the event clock with RocksDB
   tables. Rates are taken between 10% and 90% of the events applied.
5. Latency: a worker on the wall clock, fed fresh events at half the 1-process rate; p50,
   p90 and p99 from its own ``churnwatch_end_to_end_seconds`` histogram (input append to
   output sent); ``--latency-only RATE`` measures only that.
Prints each figure and its ratio to the Faust ceiling.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from streams.codec import build_codec
from streams.kafka_io import make_producer, produce_records
from streams.processes import WorkerChild, WorkerWeb, bench_broker, free_port, stop_process
from streams.security import client_config
from streams.settings import INPUT_TOPICS, Settings
from streams.topics import ensure_topics

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APPLIED = "churnwatch_events_applied_total"


def events(total: int, customers: int, seed: int = 1, *, start: datetime = T0,
           step_s: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
    rnd = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for c in range(customers):
        cid = f"cust-{c:06d}"
        out.append(("ProfileChange", {
            "event_id": f"{cid}-profile-{seed}", "customer_id": cid, "occurred_at": start,
            "segment": rnd.choice(["b2c", "b2b"]), "signup_at": start - timedelta(days=300),
            "plan": None, "mrr_minor": 9900, "cost_to_serve_minor": 3000, "currency": "EUR",
            "products": rnd.randint(1, 4), "referrals": 0,
            "consent": {"email": True, "sms": False, "phone": False, "push": False}}))
    for n in range(total - customers):
        cid = f"cust-{rnd.randrange(customers):06d}"
        at = start + timedelta(seconds=n * step_s)
        kind = rnd.random()
        if kind < 0.3:
            out.append(("Purchase", {
                "event_id": f"p-{seed}-{n}", "customer_id": cid, "occurred_at": at,
                "order_id": f"o-{n}", "amount_minor": rnd.randint(500, 20000),
                "currency": "EUR", "items": 1, "channel": "web"}))
        elif kind < 0.85:
            out.append(("Engagement", {
                "event_id": f"e-{seed}-{n}", "customer_id": cid, "occurred_at": at,
                "kind": "session", "count": 1, "duration_s": rnd.randint(10, 900),
                "feature": None}))
        else:
            out.append(("SupportEvent", {
                "event_id": f"s-{seed}-{n}", "customer_id": cid, "occurred_at": at,
                "kind": "ticket_opened", "ticket_id": f"t-{n}", "csat": None, "nps": None,
                "sentiment": rnd.uniform(-1, 1), "category": None}))
    return out


def raw_rate(settings: Settings, expected: int) -> float:
    codec = build_codec(settings)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         **client_config(settings),
                         "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.topic(t) for t in INPUT_TOPICS])
    seen, started = 0, None
    deadline = time.monotonic() + 300
    while seen < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=1.0):
            if message.error():
                continue
            if started is None:
                started = time.perf_counter()
            codec.decode(message.value())
            seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    if seen < expected:
        raise SystemExit(f"raw consumer read only {seen} of {expected} records")
    return seen / elapsed


def faust_ceiling(settings: Settings, expected: int, workdir: Path) -> float:
    topics = ",".join(settings.topic(t) for t in INPUT_TOPICS)
    log_path = workdir / "ceiling.log"
    log = log_path.open("wb")
    # a Faust worker sends its stdout to its log: the rate is read from there
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("faust_ceiling.py")),
         "--bootstrap", settings.kafka_bootstrap, "--topics", topics,
         "--expected", str(expected), "--partitions", str(settings.partitions),
         "--data-dir", str(workdir / "ceiling")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            for line in log_path.read_text(errors="replace").splitlines():
                if "RATE " in line:
                    return float(line.split("RATE ", 1)[1].split()[0])
            if proc.poll() is not None:
                break
            time.sleep(0.5)  # polling the child's log
        raise SystemExit(f"the Faust ceiling agent gave no rate; see {log_path}")
    finally:
        stop_process(proc, 30)
        log.close()


def applied(children: list[WorkerWeb]) -> float:
    return sum(child.metric(APPLIED) for child in children)


def profile_top(raw: Path, top: int = 12) -> list[tuple[float, str]]:
    """The functions with the most samples on top of the stack (self time), as shares,
    from py-spy's raw (collapsed stacks) output."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf] = counts.get(leaf, 0) + int(number)
        total += int(number)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return [(n / total, name) for name, n in ranked] if total else []


def churnwatch_rate(settings: Settings, expected: int, workdir: Path,
                    processes: int, profile: Path | None = None) -> tuple[float, float]:
    """Sustained events/s of ``processes`` worker processes in one fresh group; with
    ``profile``, py-spy samples the (single) worker process from 10% of the events on."""
    run = settings.model_copy(update={
        "app_id": f"bench-{uuid.uuid4().hex[:6]}", "web_port": free_port(),
        "data_dir": workdir / f"state-{processes}", "clock": "event",
        "store": "rocksdb://", "log_level": "warning"})
    log = workdir / f"worker-{processes}.log"
    group = WorkerChild(run, log, args=("-m", "streams.cli", "worker", "--processes",
                                        str(processes)))
    # one view per process on its own web port (see streams.processes.process_group_env)
    views = [WorkerWeb(f"http://127.0.0.1:{run.web_port + i}") for i in range(processes)]
    marks: dict[float, float] = {}
    spy: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            done = applied(views)
            now = time.perf_counter()
            for fraction in (0.1, 0.9):
                if fraction not in marks and done >= fraction * expected:
                    marks[fraction] = now
            if profile is not None and spy is None and 0.1 in marks:
                spy = subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                     str(group.proc.pid), "--rate", "100", "--format", "raw", "--nonblocking",
                     "--duration", "20", "-o", str(profile)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if done >= 0.9 * expected:
                break
            if not group.alive():
                raise SystemExit(f"worker exited; see {log}")
            time.sleep(0.5)  # polling the workers' /metrics (each scrape costs them)
        else:
            raise SystemExit(f"workers applied only {applied(views)} events; see {log}")
    finally:
        if spy is not None:
            spy.wait(60)
        group.stop(60)
    window = marks[0.9] - marks[0.1]
    return 0.8 * expected / window, window


def histogram_quantile(child: WorkerChild, name: str, q: float) -> tuple[float, int]:
    """The ``q`` quantile of a histogram on ``/metrics`` (all label sets summed), read at
    the upper bound of its bucket, and the number of observations."""
    buckets: dict[float, float] = {}
    for family in child.metrics() or ():
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    if not buckets:
        return float("nan"), 0
    total = buckets[float("inf")]
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound, int(total)
    return float("inf"), int(total)


def latency(settings: Settings, rate: float, workdir: Path, seconds: float) -> tuple[
        dict[float, float], int, float]:
    """p50, p90 and p99 end-to-end latency of a live (wall clock) worker fed at ``rate``
    events/s, the number of outputs measured and the rate achieved."""
    live = settings.model_copy(update={
        "app_id": f"bench-{uuid.uuid4().hex[:6]}", "web_port": free_port(),
        "topic_prefix": f"live-{uuid.uuid4().hex[:6]}-", "data_dir": workdir / "live",
        "clock": "wall", "store": "rocksdb://", "log_level": "warning",
        "score_step": 0.0})  # every evaluation publishes: every event is measured
    ensure_topics(live)
    worker = WorkerChild(live, workdir / "live.log")
    codec = build_codec(live)
    producer = make_producer(live, **{"linger.ms": 5})
    sent = 0
    try:
        worker.wait_ready(120)
        total = int(rate * seconds)
        started = time.perf_counter()
        chunk = max(1, int(rate / 50))  # 50 sends a second
        seed = 7
        while sent < total:
            now = datetime.now(UTC)
            batch = events(chunk + 1, 1, seed, start=now, step_s=0.0)[1:]  # no profile
            for _, record in batch:
                record["customer_id"] = f"live-{random.randrange(5000):05d}"
            produce_records(live, codec, batch, producer=producer)
            seed += 1
            sent += len(batch)
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)  # pacing the producer
        producer.flush(30)
        deadline = time.monotonic() + 60
        while worker.metric(APPLIED) < sent and time.monotonic() < deadline:
            time.sleep(0.2)
        achieved = sent / (time.perf_counter() - started)
        quantiles = {}
        for q in (0.5, 0.9, 0.99):
            quantiles[q], count = histogram_quantile(worker, "churnwatch_end_to_end_seconds", q)
        return quantiles, count, achieved
    finally:
        worker.stop(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-only", type=float, default=None, metavar="RATE",
                        help="measure only the latency, at RATE events/s")
    parser.add_argument("--profile", type=Path, default=None,
                        help="sample the 1-process worker with py-spy into this file and "
                        "print the top of the profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        workdir = Path(tmp)
        settings = Settings(_env_file=None, kafka_bootstrap=bootstrap,
                            topic_prefix=f"bench-{uuid.uuid4().hex[:6]}-",
                            partitions=args.partitions)
        ensure_topics(settings)
        if args.latency_only is not None:
            print_latency(settings, args.latency_only, workdir, args.latency_seconds, "")
            return
        records = events(args.events, args.customers)
        started = time.perf_counter()
        produce_records(settings, build_codec(settings), records)
        produce_s = time.perf_counter() - started
        n = len(records)
        print(f"produced {n:,} events for {args.customers:,} customers on "
              f"{args.partitions} partitions in {produce_s:.1f} s")
        raw = raw_rate(settings, n)
        print(f"raw consume + Avro decode:            {raw:>9,.0f} events/s")
        ceiling = faust_ceiling(settings, n, workdir)
        print(f"Faust ceiling (agent that decodes):   {ceiling:>9,.0f} events/s")
        one, window = churnwatch_rate(settings, n, workdir, 1, args.profile)
        print(f"churnwatch, 1 process ({window:5.1f} s):    {one:>9,.0f} events/s"
              f"   {one / ceiling:.2f} x ceiling")
        if args.profile is not None and args.profile.exists():
            print("top of the 1-process profile (self time):")
            for share, name in profile_top(args.profile):
                print(f"  {share:6.1%}  {name}")
        two, window = churnwatch_rate(settings, n, workdir, 2)
        print(f"churnwatch, 2 processes ({window:5.1f} s):  {two:>9,.0f} events/s"
              f"   {two / one:.2f} x 1 process")
        print_latency(settings, one / 2, workdir, args.latency_seconds, "half of 1 process, ")


def print_latency(settings: Settings, rate: float, workdir: Path, seconds: float,
                  what: str) -> None:
    quantiles, count, achieved = latency(settings, rate, workdir, seconds)
    bounds = "  ".join(f"p{round(q * 100)} <= {bound * 1000:.0f} ms"
                       for q, bound in quantiles.items())
    print(f"end to end at {achieved:,.0f} events/s ({what}wall clock): {bounds} "
          f"(histogram buckets) over {count:,} outputs")


if __name__ == "__main__":
    main()
