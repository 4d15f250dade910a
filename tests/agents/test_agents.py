"""The ingest agent's batches (streams.ingest.Ingest) on a Faust app with memory tables.

Batches are made of stand-in Faust events (a message with topic, partition, offset and
value, and an ``ack``), as the agent's ``take_events`` hands them over; every send is
mocked and asserted on (an unmocked send would pass silently). The clock's wall time is
the test's, so when held events go on is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock

import pytest

from streams import ingest as ingest_module
from streams.agents import ingest as ingest_agent
from streams.app import create_app
from streams.domain.clock import EventTimeClock
from streams.replay import LocalPipeline
from streams.runtime import SILENCE_TICK, Runtime
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_DEAD_LETTER,
    TOPIC_ENGAGEMENT,
    TOPIC_ERASURE,
    TOPIC_HEALTH,
    TOPIC_PURCHASES,
    TOPIC_RECOVERED,
    TOPIC_SUPPORT,
    TOPIC_TICKS,
)

T0 = datetime(2026, 2, 2, tzinfo=UTC)
IDLE_S = 5.0


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None
    timestamp: float = 0.0
    headers: Any = None
    refs: int = 1

    def incref(self) -> None:
        self.refs += 1


@dataclass
class Record:
    """A stand-in for the Faust event of one consumed record."""

    message: Message
    acks: list[int] = field(default_factory=list)

    def ack(self) -> bool:
        self.message.refs -= 1
        self.acks.append(self.message.refs)
        return self.message.refs == 0

    @property
    def applied(self) -> bool:
        """Acked for good (the batch's own ack plus the one taken while held)."""
        return self.message.refs <= 0


class Feed:
    """Records for the agent, numbered per topic like a log."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.offsets: dict[str, int] = {}
        self.wall = [0.0]

    def record(self, logical: str, type_name: str | None, body: Any,
               customer: str = "c1") -> Record:
        topic = self.rt.settings.topic(logical)
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        value = body if type_name is None else self.rt.codec.encode(type_name, body)
        return Record(Message(topic, 0, offset, value, customer.encode(), T0.timestamp()))

    async def batch(self, *records: Record) -> None:
        """One batch, and the batch's own acks (as take_events gives them after it)."""
        await self.rt.ingest.run(list(records))
        for record in records:
            record.ack()

    async def settle(self) -> None:
        """Let the inputs fall quiet for longer than the idle time, then give a tick."""
        self.wall[0] += IDLE_S + 1
        await self.batch(self.record(TOPIC_TICKS, None, SILENCE_TICK))


@pytest.fixture
async def runtime(make_settings):
    # async: the app binds to the test's running event loop instead of making its own
    # no order grace: the tests' own clock (``wall``) rules when partitions fall quiet
    settings = make_settings(clock="event", partitions=1, order_grace_s=0.0)
    app = create_app(settings)
    wall = [0.0]
    rt = Runtime(app, settings, clock=EventTimeClock(
        timedelta(seconds=settings.allowed_lateness_s), idle_s=IDLE_S,
        monotonic=lambda: wall[0]))
    rt.wall = wall
    rt.recovered = lambda: True  # type: ignore[method-assign]
    for logical in (TOPIC_DEAD_LETTER, TOPIC_HEALTH, TOPIC_AT_RISK, TOPIC_RECOVERED,
                    TOPIC_CHAMPIONS, TOPIC_PURCHASES):
        rt.topic(logical).send = AsyncMock()  # type: ignore[method-assign]
    rt.agent = ingest_agent.register(app, rt)
    # no consumer here: no partition is reported read to its end, idle time rules
    rt.ingest.assigned_inputs = lambda: []
    rt.untracked = []  # records taken off the consumer's wait for acks
    rt.ingest.untrack = rt.untracked.append
    yield rt
    # the Faust consumer is never started here, so close the event loop its (never
    # started) thread created
    thread = getattr(app._consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


@pytest.fixture
def feed(runtime):
    f = Feed(runtime)
    f.wall = runtime.wall
    return f


def sent(rt, logical):
    return [call.kwargs for call in rt.topic(logical).send.await_args_list]


def decoded(rt, logical, type_name):
    return [rt.codec.decode(s["value"], type_name)[1] for s in sent(rt, logical)]


def purchase(n, day, customer="c1", amount=1000):
    return {"event_id": f"{customer}-{n}", "customer_id": customer,
            "occurred_at": T0 + timedelta(days=day), "order_id": f"o{n}",
            "amount_minor": amount, "currency": "EUR", "items": 1, "channel": "web"}


def login(n, day, customer="c1"):
    return {"event_id": f"{customer}-l{n}", "customer_id": customer,
            "occurred_at": T0 + timedelta(days=day), "kind": "login"}


def ticket(n, day, customer="c1"):
    return {"event_id": f"{customer}-t{n}", "customer_id": customer,
            "occurred_at": T0 + timedelta(days=day), "ticket_id": f"t{n}",
            "kind": "ticket_opened", "category": "billing", "sentiment": -0.5}


async def test_a_customers_events_are_applied_in_event_time_order_whatever_topic_comes_first(
        runtime, feed):
    # the support topic is read ahead of the engagement topic, which is ahead of purchases
    late_topics = [
        ("Purchase", TOPIC_PURCHASES, purchase(n, 7.0 * n)) for n in range(6)]
    early = [("SupportEvent", TOPIC_SUPPORT, ticket(1, 30.5)),
             ("Engagement", TOPIC_ENGAGEMENT, login(1, 30.2))]
    await feed.batch(*(feed.record(topic, t, body) for t, topic, body in early))
    # nothing was applied yet: the purchases topic may still bring older events
    assert sent(runtime, TOPIC_HEALTH) == [] and len(runtime.ingest.order) == 2
    await feed.batch(*(feed.record(topic, t, body) for t, topic, body in late_topics))
    await feed.settle()
    in_order = sorted(early + late_topics, key=lambda r: r[2]["occurred_at"])
    expected = LocalPipeline(runtime.settings, runtime.scoring).run(
        (t, body) for t, _, body in in_order)
    assert decoded(runtime, TOPIC_HEALTH, "HealthScoreChanged") == [
        r for t, r in expected if t == "HealthScoreChanged"]
    assert len(runtime.ingest.order) == 0


async def test_inputs_falling_quiet_while_a_batch_is_applied_run_no_check_past_held_events(
        runtime, feed, monkeypatch):
    # c1 buys weekly, then goes quiet (silence checks fall due every few days) while c2
    # buys on; c1's login of day 92.5 is held: events go on up to day 92
    purchases = sorted([purchase(n, 7.0 * n) for n in range(7)]
                       + [purchase(n, 5.0 * n, "c2") for n in range(20)],
                       key=lambda body: body["occurred_at"])
    history = [("Purchase", TOPIC_PURCHASES, body) for body in purchases]
    history += [("Engagement", TOPIC_ENGAGEMENT, login(1, 92.5))]
    apply = runtime.ingest.apply

    async def slow_apply(pending):
        feed.wall[0] += IDLE_S + 1  # the inputs fall quiet while the batch is applied
        await apply(pending)

    monkeypatch.setattr(runtime.ingest, "apply", slow_apply)
    await feed.batch(*(feed.record(topic, t, body, body["customer_id"])
                       for t, topic, body in history))
    monkeypatch.setattr(runtime.ingest, "apply", apply)
    await feed.settle()
    # c1's check due on day 93 runs after its login, as in a replay of the input
    pipeline = LocalPipeline(runtime.settings, runtime.scoring)
    expected = pipeline.run((t, body) for t, _, body in history)
    expected += pipeline.tick(T0 + timedelta(days=95))

    def of_c1(records):
        return [(r["event_id"], r["occurred_at"], r["score"]) for r in records
                if r["customer_id"] == "c1"]

    assert of_c1(decoded(runtime, TOPIC_HEALTH, "HealthScoreChanged")) == of_c1(
        r for t, r in expected if t == "HealthScoreChanged")


async def test_duplicates_change_nothing_and_held_events_are_acked_once_applied(
        runtime, feed):
    records = [feed.record(TOPIC_PURCHASES, "Purchase", purchase(n, 0)) for n in (1, 2, 2)]
    await feed.batch(*records)
    assert not any(r.applied for r in records)  # held: a crash now re-reads them
    await feed.settle()
    assert all(r.applied for r in records)
    assert runtime.metrics.duplicates.labels("purchases")._value.get() == 1
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 2
    assert b"c1" in runtime.tables["purchase-features"]
    assert b"c1" in runtime.tables["customer-health"]


async def test_a_record_is_acked_only_once_every_record_before_it_in_its_partition_is(
        runtime, feed):
    # one partition: a purchase of day 5, then a late one of day 3 and a bad record; once
    # it falls quiet, a login of day 7 lets events go on up to day 4, so the late one goes
    # on first. Acking it (or the bad one) before the held one would let the consumer
    # commit past the held record (a gap of one offset at the committed position is not
    # seen as a gap), and a crash would lose it
    first = feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 5))
    late = feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 3))
    bad = feed.record(TOPIC_PURCHASES, None, b"\x00garbage")
    await feed.batch(first, late, bad)
    feed.wall[0] += IDLE_S + 1
    await feed.batch(feed.record(TOPIC_ENGAGEMENT, "Engagement", login(1, 7)))
    assert len(runtime.ingest.order) == 2  # the late one was applied; day 5 and 7 held
    assert runtime.metrics.applied.labels("purchases")._value.get() == 1
    assert not any(r.applied for r in (first, late, bad))
    await feed.settle()
    assert all(r.applied for r in (first, late, bad))
    assert [r.acks[-1] for r in (first, late, bad)] == [0, 0, 0]


async def test_a_record_read_twice_in_one_batch_is_acked_twice_in_offset_order(
        runtime, feed):
    # around a rebalance, a batch can hold a record and its copy read again (one offset)
    first = feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 5))
    again = Record(Message(**{**first.message.__dict__, "refs": 1,
                              "timestamp": first.message.timestamp + 60}))
    bad = feed.record(TOPIC_PURCHASES, None, b"\x00garbage")
    await feed.batch(first, again, bad, feed.record(TOPIC_ENGAGEMENT, "Engagement",
                                                    login(1, 7)))
    assert not any(r.applied for r in (first, again, bad))
    await feed.settle()
    assert all(r.applied for r in (first, again, bad))
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 1


async def test_a_record_delivered_again_after_later_ones_is_taken_once(runtime, feed):
    # after a rebalance the consumer can deliver a partition's records, then the same
    # offsets again from the committed one: the copies are not judged (too late) again
    records = [feed.record(TOPIC_PURCHASES, "Purchase", purchase(n, 4.0 * n))
               for n in range(3)]
    await feed.batch(*records, feed.record(TOPIC_ENGAGEMENT, "Engagement", login(1, 8)))
    again = Record(Message(**{**records[0].message.__dict__, "refs": 1,
                              "timestamp": records[0].message.timestamp + 60}))
    await feed.batch(again)
    assert sent(runtime, TOPIC_DEAD_LETTER) == []
    assert again.applied  # nothing before it is held: acked with its batch
    await feed.settle()
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 3
    assert runtime.metrics.duplicates.labels("purchases")._value.get() == 0


async def test_a_rebalance_or_a_stop_does_not_wait_for_held_records_to_be_acked(
        runtime, feed):
    # the consumer waits for every record it delivered to be acked before it gives up its
    # partitions or stops; held records (and those behind them) are taken off that wait
    held = feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 5))
    waiting = feed.record(TOPIC_PURCHASES, None, b"\x00garbage")  # behind the held one
    other = feed.record(TOPIC_SUPPORT, None, b"\x00garbage")  # acked with the batch
    await feed.batch(held, waiting, other)
    assert runtime.untracked == [held.message, waiting.message]
    assert not held.applied and not waiting.applied and other.applied


def engagement_backlog(runtime, monkeypatch) -> list[Any]:
    """Partition 0 of purchases and of engagement assigned; the engagement one has unread
    records (a backlog), so the purchases wait behind it."""
    from faust.types import TP

    inputs = [TP(runtime.settings.topic(t), 0) for t in (TOPIC_PURCHASES, TOPIC_ENGAGEMENT)]
    backlog = (inputs[1].topic, 0)
    monkeypatch.setattr(runtime.ingest, "assigned_inputs", lambda: inputs)
    monkeypatch.setattr(runtime.ingest, "note_positions",
                        lambda: runtime.clock.caught_up(backlog, False))
    return inputs


async def test_held_records_read_again_after_a_rebalance_are_not_too_late(
        runtime, feed, monkeypatch):
    engagement_backlog(runtime, monkeypatch)

    def history():
        return [feed.record(TOPIC_ENGAGEMENT, "Engagement", login(1, 0))] + [
            feed.record(TOPIC_PURCHASES, "Purchase", purchase(n, 5.0 * n)) for n in range(5)]

    await feed.batch(*history())
    assert len(runtime.ingest.order) == 6  # all held, never acked
    runtime.ingest.stale = True  # a rebalance gives this worker the same partitions back
    await feed.batch(*history())  # read again from the committed offsets
    await feed.settle()
    assert sent(runtime, TOPIC_DEAD_LETTER) == []
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 5


async def test_the_kept_watermark_of_a_partition_leaves_out_the_records_it_holds(
        runtime, feed, monkeypatch):
    inputs = engagement_backlog(runtime, monkeypatch)
    monkeypatch.setattr(ingest_module, "KEEP_WATERMARK_EVERY_S", 0.0)  # every batch
    key = f"{inputs[0].topic}/0".encode()

    def kept() -> tuple[datetime, int] | None:  # (latest event time before, offset)
        raw = runtime.watermarks.get(key)
        if raw is None:
            return None
        ms, offset = raw.split()
        return datetime.fromtimestamp(int(ms) / 1000, UTC), int(offset)

    # a backlog delivers day 0 and holds everything after it: purchases of days 0 and 5
    # are held, so nothing is kept (read again after a restart, they must all pass)
    await feed.batch(feed.record(TOPIC_ENGAGEMENT, "Engagement", login(1, 0)),
                     *(feed.record(TOPIC_PURCHASES, "Purchase", purchase(n, 5.0 * n))
                       for n in range(2)))
    assert kept() is None
    # the backlog moves on to day 9: day 5 and before go (the lateness is 3 days), day 10
    # (offset 2) is held: kept are offset 2 and day 5, the latest before it
    await feed.batch(feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 10.0)),
                     feed.record(TOPIC_ENGAGEMENT, "Engagement", login(2, 9)))
    assert kept() == (T0 + timedelta(days=5), 2)
    await feed.settle()
    assert kept() == (T0 + timedelta(days=10), 3)


async def test_after_a_restart_records_taken_before_are_not_judged_again(
        runtime, feed, monkeypatch):
    from faust.types import TP

    inputs = [TP(runtime.settings.topic(TOPIC_PURCHASES), 0)]
    monkeypatch.setattr(runtime.ingest, "assigned_inputs", lambda: inputs)
    monkeypatch.setattr(runtime.ingest, "note_positions", lambda: None)  # no consumer
    taken = [feed.record(TOPIC_PURCHASES, "Purchase", purchase(n, day))
             for n, day in enumerate((0, 5, 10))]
    await feed.batch(*taken)
    await feed.settle()
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 3
    # a restart: the clock knows nothing but the kept watermark (day 10, offset 3), and
    # the records from the committed offset (here 0) are read again: not too late now
    runtime.ingest.stale = True
    runtime.clock.assigned(())
    runtime.watermarks_stale = True
    await feed.batch(*(Record(Message(**{**r.message.__dict__, "refs": 1})) for r in taken))
    assert sent(runtime, TOPIC_DEAD_LETTER) == []
    # the next record is judged as it would have been without the restart: day 6 is more
    # than the allowed lateness (3 days) behind day 10
    await feed.batch(feed.record(TOPIC_PURCHASES, "Purchase", purchase(3, 6)))
    await feed.settle()
    letters = [runtime.codec.decode(r["value"])[1] for r in sent(runtime, TOPIC_DEAD_LETTER)]
    assert [(r["event_id"], r["reason"]) for r in letters] == [("c1-3", "too_late")]
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 3


async def test_bad_records_are_dead_lettered_and_the_agent_goes_on(runtime, feed):
    codec = runtime.codec
    huge = codec.encode("Purchase", purchase(1, 0) | {"order_id": "o" * 1_200_000})
    await feed.batch(
        feed.record(TOPIC_PURCHASES, None, b"\x00garbage"),
        feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 0, amount=-5)),
        feed.record(TOPIC_PURCHASES, None, huge),
        feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 0)))
    await feed.settle()
    letters = decoded(runtime, TOPIC_DEAD_LETTER, "DeadLetter")
    assert [d["reason"] for d in letters] == ["malformed", "invalid_field", "too_large"]
    assert letters[0]["payload"] == b"\x00garbage"
    big = sent(runtime, TOPIC_DEAD_LETTER)[2]
    assert len(big["value"]) < runtime.app.conf.producer_max_request_size
    assert letters[2]["payload_size"] == len(huge) and huge.startswith(letters[2]["payload"])
    assert dict(sent(runtime, TOPIC_DEAD_LETTER)[1]["headers"])[
        "churnwatch.reason"] == b"invalid_field"
    assert [s["key"] for s in sent(runtime, TOPIC_HEALTH)] == [b"c1"]  # and it goes on


async def test_a_defect_while_applying_is_dead_lettered_and_the_agent_goes_on(runtime, feed):
    runtime.tables["purchase-features"].data[b"broken"] = b"{not json"  # corrupt state
    runtime.tables["customer-health"].data[b"old"] = b'{"s": {}}'  # an old, partial value
    await feed.batch(
        feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 0, "broken"), "broken"),
        feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 0, "old"), "old"),
        feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 0)))
    await feed.settle()
    letters = decoded(runtime, TOPIC_DEAD_LETTER, "DeadLetter")
    assert [(d["reason"], d["customer_id"]) for d in letters] == [
        ("processing_error", "broken"), ("processing_error", "old")]
    assert "JSONDecodeError" in letters[0]["error"]
    assert [s["key"] for s in sent(runtime, TOPIC_HEALTH)] == [b"c1"]


async def test_erasure_forgets_the_customer_and_what_was_held_for_it(runtime, feed):
    await feed.batch(feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, 0)))
    await feed.settle()
    assert b"c1" in runtime.tables["customer-health"]
    held = feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 1))
    request = {"event_id": "x1", "customer_id": "c1", "occurred_at": T0}
    await feed.batch(held, feed.record(TOPIC_ERASURE, "ErasureRequest", request))
    assert held.applied and len(runtime.ingest.order) == 0
    assert all(b"c1" not in runtime.tables[name]
               for name in ("purchase-features", "customer-health"))
    for logical in (TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS):
        assert sent(runtime, logical) == [{"key": b"c1", "value": None}]
    health = sent(runtime, TOPIC_HEALTH)
    assert health[-1] == {"key": b"c1", "value": None} and len(health) == 2


async def test_one_record_far_ahead_is_held_then_dead_lettered_when_refuted(runtime, feed):
    # a 2025 backfill, and one valid record of months later inside it
    await feed.batch(feed.record(TOPIC_PURCHASES, "Purchase", purchase(1, -300)),
                     feed.record(TOPIC_PURCHASES, "Purchase", purchase(2, 0)))
    assert len(runtime.ingest.order) == 2
    await feed.batch(feed.record(TOPIC_PURCHASES, "Purchase", purchase(3, -299)))
    (letter,) = decoded(runtime, TOPIC_DEAD_LETTER, "DeadLetter")
    assert letter["reason"] == "clock_outlier" and letter["event_id"] == "c1-2"
    await feed.settle()
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 2
    # the clock never went past the input: no silence check ran a year ahead
    assert max(h["occurred_at"] for h in decoded(
        runtime, TOPIC_HEALTH, "HealthScoreChanged")) <= T0 - timedelta(days=299)


async def test_a_crashing_agent_makes_the_worker_not_ready(runtime, monkeypatch):
    agent = runtime.agent
    runtime.ready = True
    assert runtime.not_ready_because() is None
    await agent._on_error(agent, RuntimeError("boom"))  # what Faust calls when it raises
    assert "churnwatch.ingest" in (runtime.not_ready_because() or "")
    assert runtime.metrics.agent_crashes.labels("churnwatch.ingest")._value.get() == 1


class FlakyRegistry:
    """A registry client in front of a real one that cannot answer its first calls."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("registry unreachable")
        return self.inner.get_schema(schema_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_schema_registry_outage_delays_records_and_dead_letters_none(
        runtime, feed, monkeypatch):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from streams import runtime as runtime_module
    from streams.codec import RegistryCodec

    monkeypatch.setattr(runtime_module, "REGISTRY_RETRY_S", 0.01)
    registry = SchemaRegistryClient.new_client({"url": "mock://churnwatch-agents"})
    producer_side = RegistryCodec(registry)
    flaky = FlakyRegistry(registry, failures=3)
    runtime.codec = RegistryCodec(flaky)  # type: ignore[arg-type]  # the worker's codec
    value = producer_side.encode("Purchase", purchase(1, 0))
    unknown = b"\x00" + (9999).to_bytes(4, "big") + b"\x00"
    await feed.batch(feed.record(TOPIC_PURCHASES, None, value),
                     feed.record(TOPIC_PURCHASES, None, unknown))
    await feed.settle()
    # retried until the registry answered: the record is applied, not dead-lettered
    assert runtime.metrics.registry_retries._value.get() == 3
    assert runtime.metrics.events_accepted.labels("purchases")._value.get() == 1
    # an id the registry does not know is dead-lettered, once, without retrying
    (letter,) = decoded(runtime, TOPIC_DEAD_LETTER, "DeadLetter")
    assert letter["reason"] == "unknown_schema"
