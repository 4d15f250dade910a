"""Agents through Faust's test_context with memory tables; every send is mocked and
asserted on (an unmocked send would pass silently)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import AsyncMock

import pytest

from streams.agents import erasure, purchases, scorer
from streams.app import create_app
from streams.runtime import Runtime
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_RECOVERED,
    TOPIC_SIGNALS,
)

T0 = datetime(2026, 2, 2, tzinfo=UTC)


@pytest.fixture
async def runtime(make_settings):
    # async: the app binds to the test's running event loop instead of making its own
    settings = make_settings(clock="event", partitions=1)  # test_context puts on partition 0
    app = create_app(settings)
    rt = Runtime(app, settings)
    for logical in (TOPIC_SIGNALS, TOPIC_DEAD_LETTER, TOPIC_HEALTH, TOPIC_AT_RISK,
                    TOPIC_RECOVERED, TOPIC_CHAMPIONS):
        rt.topic(logical).send = AsyncMock()  # type: ignore[method-assign]
    yield rt
    # test_context never starts the consumer Faust makes lazily, so close the event loop
    # its (never started) thread created
    thread = getattr(app._consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


def sent(rt, logical):
    return [call.kwargs for call in rt.topic(logical).send.await_args_list]


def purchase(n, day, customer="c1", amount=1000):
    return {"event_id": f"{customer}-{n}", "customer_id": customer,
            "occurred_at": T0 + timedelta(days=day), "order_id": f"o{n}",
            "amount_minor": amount, "currency": "EUR", "items": 1, "channel": "web"}


async def test_purchase_agent_emits_signals_once_per_event_id(runtime):
    agent = purchases.register(runtime.app, runtime)
    codec = runtime.codec
    async with agent.test_context() as ctx:
        for record in (purchase(1, 0), purchase(2, 7), purchase(2, 7)):
            await ctx.put(key=b"c1", value=codec.encode("Purchase", record))
    updates = [codec.decode(s["value"], "SignalUpdate")[1] for s in sent(runtime, TOPIC_SIGNALS)]
    assert [u["event_id"] for u in updates] == ["c1-1", "c1-2"]
    assert updates[1]["signals"]["purchase.last_at_d"] == pytest.approx(
        (T0 + timedelta(days=7)).timestamp() / 86400)
    assert all(s["key"] == b"c1" for s in sent(runtime, TOPIC_SIGNALS))
    assert runtime.metrics.duplicates.labels("purchases")._value.get() == 1
    assert b"c1" in runtime.tables["purchase-features"]


async def test_purchase_agent_dead_letters_bad_bytes_and_goes_on(runtime):
    agent = purchases.register(runtime.app, runtime)
    codec = runtime.codec
    async with agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=b"\x00garbage")
        await ctx.put(key=b"c1", value=codec.encode("Purchase", purchase(1, 0, amount=-5)))
        await ctx.put(key=b"c1", value=codec.encode("Purchase", purchase(2, 0)))
    letters = [codec.decode(s["value"], "DeadLetter")[1] for s in sent(runtime, TOPIC_DEAD_LETTER)]
    assert [d["reason"] for d in letters] == ["malformed", "invalid_field"]
    assert letters[0]["payload"] == b"\x00garbage"
    headers = dict(sent(runtime, TOPIC_DEAD_LETTER)[1]["headers"])
    assert headers["churnwatch.reason"] == b"invalid_field"
    assert len(sent(runtime, TOPIC_SIGNALS)) == 1


async def test_scorer_publishes_health_then_at_risk(runtime):
    agent = scorer.register(runtime.app, runtime)
    codec = runtime.codec
    day = T0.timestamp() / 86400

    def update(event_id, at_day, signals):
        return codec.encode("SignalUpdate", {
            "event_id": event_id, "customer_id": "c1",
            "occurred_at": datetime.fromtimestamp(at_day * 86400, tz=UTC),
            "family": "purchase", "signals": signals})

    rhythm = {"purchase.last_at_d": day, "purchase.gap_mean_d": 7.0, "purchase.gap_std_d": 0.0}
    async with agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=update("u1", day, rhythm))
        await ctx.put(key=b"c1", value=update("u2", day + 1, rhythm))  # no move: no output
        await ctx.put(key=b"c1", value=update("u3", day + 40, rhythm))
    health = [codec.decode(s["value"], "HealthScoreChanged")[1]
              for s in sent(runtime, TOPIC_HEALTH)]
    # u3 comes 39 days later: the daily silence checks that fell due in between run
    # first, as of their due times, so the lapse is seen as it happened
    assert health[0]["event_id"] == "c1:health:u1" and health[0]["band"] == "healthy"
    assert all(h["trigger"] == "timer" for h in health[1:])
    assert [h["band"] for h in health if h["band"] != health[0]["band"]][-1] == "at_risk"
    times = [h["occurred_at"] for h in health]
    assert times == sorted(times) and times[-1] < datetime.fromtimestamp(
        (day + 40) * 86400, tz=UTC)
    (alert,) = [codec.decode(s["value"], "CustomerAtRisk")[1]
                for s in sent(runtime, TOPIC_AT_RISK)]
    assert alert["event_id"] == "c1:health_at_risk:1"
    assert alert["occurred_at"] < datetime.fromtimestamp((day + 40) * 86400, tz=UTC)
    assert alert["contactable"] is False  # no profile: no consent known


async def test_erasure_deletes_state_and_tombstones_outputs_in_order(runtime):
    feature_agent = purchases.register(runtime.app, runtime)
    erase_agent = erasure.register(runtime.app, runtime)
    score_agent = scorer.register(runtime.app, runtime)
    codec = runtime.codec
    async with feature_agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=codec.encode("Purchase", purchase(1, 0)))
    (update,) = [s["value"] for s in sent(runtime, TOPIC_SIGNALS)]
    request = {"event_id": "x1", "customer_id": "c1", "occurred_at": T0}
    async with erase_agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=codec.encode("ErasureRequest", request))
    assert b"c1" not in runtime.tables["purchase-features"]
    marker = sent(runtime, TOPIC_SIGNALS)[-1]
    assert codec.decode(marker["value"], "SignalUpdate")[1]["family"] == "erasure"
    assert sent(runtime, TOPIC_HEALTH) == []  # nothing is tombstoned before the scorer
    # the scorer meets the update queued before the marker, then the marker
    async with score_agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=update)
        assert b"c1" in runtime.tables["customer-health"]
        await ctx.put(key=b"c1", value=marker["value"])
    assert b"c1" not in runtime.tables["customer-health"]
    for logical in (TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS):
        assert sent(runtime, logical) == [{"key": b"c1", "value": None}]
    health = sent(runtime, TOPIC_HEALTH)
    assert health[-1] == {"key": b"c1", "value": None} and len(health) == 2


async def test_a_record_of_a_megabyte_is_dead_lettered_within_the_producer_limit(runtime):
    agent = purchases.register(runtime.app, runtime)
    codec = runtime.codec
    huge = codec.encode("Purchase", purchase(1, 0) | {"order_id": "o" * 1_200_000})
    async with agent.test_context() as ctx:
        await ctx.put(key=b"c1", value=huge)
        await ctx.put(key=b"c1", value=codec.encode("Purchase", purchase(2, 0)))
    (sent_letter,) = sent(runtime, TOPIC_DEAD_LETTER)
    assert len(sent_letter["value"]) < runtime.app.conf.producer_max_request_size
    letter = codec.decode(sent_letter["value"], "DeadLetter")[1]
    assert letter["reason"] == "too_large" and letter["payload_size"] == len(huge)
    assert huge.startswith(letter["payload"])
    assert dict(sent_letter["headers"])["churnwatch.payload_size"] == str(len(huge)).encode()
    assert [s["key"] for s in sent(runtime, TOPIC_SIGNALS)] == [b"c1"]  # and it goes on


async def test_a_defect_while_applying_is_dead_lettered_and_the_agent_goes_on(runtime):
    agent = purchases.register(runtime.app, runtime)
    codec = runtime.codec
    runtime.tables["purchase-features"].data[b"broken"] = b"{not json"  # corrupt state
    async with agent.test_context() as ctx:
        await ctx.put(key=b"broken", value=codec.encode("Purchase", purchase(1, 0, "broken")))
        await ctx.put(key=b"c1", value=codec.encode("Purchase", purchase(2, 0)))
    (letter,) = [codec.decode(s["value"], "DeadLetter")[1]
                 for s in sent(runtime, TOPIC_DEAD_LETTER)]
    assert letter["reason"] == "processing_error"
    assert letter["customer_id"] == "broken" and "JSONDecodeError" in letter["error"]
    assert [s["key"] for s in sent(runtime, TOPIC_SIGNALS)] == [b"c1"]


async def test_a_crashing_agent_makes_the_worker_not_ready(runtime, monkeypatch):
    agent = purchases.register(runtime.app, runtime)
    monkeypatch.setattr(runtime, "recovered", lambda: True)
    runtime.ready = True
    assert runtime.not_ready_because() is None
    await agent._on_error(agent, RuntimeError("boom"))  # what Faust calls when it raises
    assert "churnwatch.purchases" in (runtime.not_ready_because() or "")
    assert runtime.metrics.agent_crashes.labels("churnwatch.purchases")._value.get() == 1


async def test_scorer_dead_letters_unreadable_state_and_goes_on(runtime):
    agent = scorer.register(runtime.app, runtime)
    codec = runtime.codec
    runtime.tables["customer-health"].data[b"broken"] = b'{"s": {}}'  # an old, partial value

    def update(customer):
        return codec.encode("SignalUpdate", {
            "event_id": f"{customer}-1", "customer_id": customer, "occurred_at": T0,
            "family": "purchase", "signals": {"purchase.last_at_d": T0.timestamp() / 86400}})

    async with agent.test_context() as ctx:
        await ctx.put(key=b"broken", value=update("broken"))
        await ctx.put(key=b"c1", value=update("c1"))
    (letter,) = [codec.decode(s["value"], "DeadLetter")[1]
                 for s in sent(runtime, TOPIC_DEAD_LETTER)]
    assert letter["reason"] == "processing_error" and letter["step"] == "scorer"
    assert [s["key"] for s in sent(runtime, TOPIC_HEALTH)] == [b"c1"]
