"""Faust's own ceiling: a minimal Faust agent over churnwatch's input topics that only
decodes each record (the codec churnwatch uses), nothing else. Run by bench/throughput.py
as a child process; prints one line "RATE <events/s> <seconds>" measured between 10% and
90% of ``--expected`` records, and runs until it is stopped.

Run: python bench/faust_ceiling.py --bootstrap HOST:PORT --topics a,b,c --expected N
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import faust

from streams.codec import build_codec
from streams.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    codec = build_codec(Settings(_env_file=None))
    app = faust.App(f"ceiling-{uuid.uuid4().hex[:6]}", broker=f"kafka://{args.bootstrap}",
                    store="memory://", datadir=args.data_dir, web_enabled=False,
                    consumer_auto_offset_reset="earliest", topic_partitions=args.partitions)
    topic = app.topic(*args.topics.split(","), key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    marks: dict[float, float] = {}
    seen = [0]

    @app.agent(topic, concurrency=1)
    async def decode(stream: faust.StreamT[bytes]) -> AsyncIterator[Any]:
        async for value in stream:
            codec.decode(value)
            seen[0] += 1
            for fraction in (0.1, 0.9):
                if fraction not in marks and seen[0] >= fraction * args.expected:
                    marks[fraction] = time.perf_counter()
            if seen[0] >= args.expected:
                window = marks[0.9] - marks[0.1]
                print(f"RATE {0.8 * args.expected / window:.1f} {window:.2f}", flush=True)
            yield None

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
