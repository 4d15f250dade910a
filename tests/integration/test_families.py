"""The contract kit on a real broker: a worker fed every registered family's records (each
family's own customers) publishes, per family, what the in-process replay of the same
records publishes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from streams.codec import build_codec
from streams.families import REGISTRY, Family
from streams.families.profile import FAMILY as PROFILE
from streams.families.purchases import FAMILY as PURCHASES
from streams.kafka_io import collect, produce_records
from streams.replay import LocalPipeline
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_HEALTH,
    TOPIC_RECOVERED,
    Settings,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 6, 2, tzinfo=UTC)
OUTPUTS = [TOPIC_HEALTH, TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS]


@pytest.fixture
def settings(event_settings: Callable[..., Settings]) -> Settings:
    return event_settings(lapse_check_interval_s=1.0, gauges_interval_s=5.0)


def family_records(family: Family) -> list[tuple[str, dict]]:
    records = []
    for c in range(3):
        customer = f"{family.name}-{c}"
        # a profile and a first order, so that every customer has a score to move
        for other in {PROFILE, PURCHASES} - {family}:
            records.append((other.record_type, other.sample(0, customer, T0)))
        # a few weeks of this family's events, then the customer falls silent
        records += [(family.record_type, family.sample(n, customer,
                                                       T0 + timedelta(days=3 * n + c)))
                    for n in range(1, 12)]
    return records


def test_a_worker_and_the_replay_publish_the_same_for_every_family(settings, worker):
    per_family = {f.name: family_records(f) for f in REGISTRY}
    records = sorted((r for rs in per_family.values() for r in rs),
                     key=lambda r: r[1]["occurred_at"])
    # the replay runs the silence checks due by the last event time at its end, as a
    # worker that has read everything does
    replay = LocalPipeline(settings)
    expected = replay.run(records)
    expected += replay.tick(records[-1][1]["occurred_at"])
    produce_records(settings, build_codec(settings), records)
    worker.wait_metric("churnwatch_events_applied_total", len(records), timeout=90)
    outputs = collect(settings, build_codec(settings), OUTPUTS, timeout=60,
                      until=lambda got: len(got) >= len(expected))
    got = [(t, r) for _, t, r in outputs]

    def by_customer_and_type(items):
        out: dict[tuple[str, str], list[str]] = {}
        for type_name, record in items:
            out.setdefault((record["customer_id"], type_name), []).append(record["event_id"])
        return out

    published = by_customer_and_type(got)
    replayed = by_customer_and_type(expected)
    for name in per_family:
        mine = {key for key in replayed if key[0].startswith(f"{name}-")}
        assert mine, f"{name}: its records produced no output to compare"
        assert {k: published.get(k) for k in mine} == {k: replayed[k] for k in mine}, name
    assert published.keys() == replayed.keys()
