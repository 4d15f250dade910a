"""Latency of the customer lookup (GET /customers/{id}) while two workers process input.

Run: .venv/bin/python bench/lookup.py [--customers 2000] [--events 150000]

1. Starts a local Kafka (scripts/kafka-local.sh) unless CHURN_KAFKA_BOOTSTRAP is set, and
   two workers in one consumer group with the lookup switched on.
2. Produces a profile and a few events for every customer and waits until they are scored.
3. Produces --events more in the background and, while the workers process them, asks
   the first worker for random customers: an answer the first worker gives itself is a
   local hit, one it forwards to the second worker is routed.
Prints p50/p90/p99 of each kind and the workers' processing rate meanwhile.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from throughput import events, processed

from streams.codec import build_codec
from streams.kafka_io import produce_records
from streams.processes import WorkerChild, bench_broker, free_port
from streams.settings import Settings
from streams.topics import ensure_topics

TOKEN = "bench-token"


def start_worker(settings: Settings, workdir: Path, n: int) -> WorkerChild:
    return WorkerChild(settings, workdir / f"worker-{n}.log",
                       env={"CHURN_LOG_LEVEL": "warning"})


def ask(url: str, customer: str) -> tuple[float, str | None]:
    """Seconds the answer took, and the worker that gave it (None for a 503: the
    customer's partition was moving)."""
    request = urllib.request.Request(f"{url}/customers/{customer}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return time.perf_counter() - started, None
    return time.perf_counter() - started, str(body["answered_by"])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def consumed(ports: list[int]) -> float:
    return sum(processed(port) for port in ports)


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.25)


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "too few samples"
    cut = statistics.quantiles(values, n=100, method="inclusive")
    return (f"{len(values):>6,} requests  p50 {cut[49] * 1000:6.1f} ms  "
            f"p90 {cut[89] * 1000:6.1f} ms  p99 {cut[98] * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        workdir = Path(tmp)
        procs: list[WorkerChild] = []
        try:
            base = Settings(_env_file=None, kafka_bootstrap=bootstrap,
                            topic_prefix=f"bench-{uuid.uuid4().hex[:6]}-",
                            app_id=f"bench-{uuid.uuid4().hex[:6]}", partitions=args.partitions,
                            clock="event", lookup_enabled=True, lookup_token=TOKEN,
                            lapse_check_interval_s=3600)
            ensure_topics(base)
            workers = [base.model_copy(update={"web_port": free_port(),
                                               "data_dir": workdir / f"state-{n}"})
                       for n in range(2)]
            procs = [start_worker(s, workdir, n) for n, s in enumerate(workers)]
            ports = [s.web_port for s in workers]
            wait_until(lambda: all(ready(port) for port in ports), 300, "both workers ready")
            codec = build_codec(base)
            warm = events(args.customers * 5, args.customers, seed=1)
            produce_records(base, codec, warm)
            wait_until(lambda: consumed(ports) >= len(warm), 600, "the first events")
            more = events(args.events + args.customers, args.customers, seed=2)
            more = [r for r in more if r[0] != "ProfileChange"]
            done = consumed(ports)
            feeder = threading.Thread(target=produce_records, args=(base, codec, more),
                                      daemon=True)
            feeder.start()
            first = base.advertised_url().rsplit(":", 1)[0] + f":{ports[0]}"
            rnd = random.Random(3)
            local: list[float] = []
            routed: list[float] = []
            moving = 0
            began, before = time.perf_counter(), consumed(ports)
            while consumed(ports) < done + 0.9 * len(more):
                seconds, owner = ask(first, f"cust-{rnd.randrange(args.customers):06d}")
                if owner is None:
                    moving += 1
                else:
                    (local if owner == first else routed).append(seconds)
            rate = (consumed(ports) - before) / (time.perf_counter() - began)
            print(f"two workers, {args.partitions} partitions, {args.customers:,} customers; "
                  f"processing {rate:,.0f} events/s while asked")
            print(f"local hit   {quantiles(local)}")
            print(f"routed      {quantiles(routed)}")
            print(f"503 (partition moving): {moving:,}")
        finally:
            for proc in procs:
                proc.stop(60)


if __name__ == "__main__":
    main()
