"""``churnwatch simulate`` and producing a simulation to Kafka (with a stand-in producer)."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.backtest import load_truth, read_events
from streams.cli import app
from streams.codec import build_codec
from streams.kafka_io import DeliveryError
from streams.settings import Settings
from streams.simulator import Malformed, SimulationConfig, produce_items, simulate


def test_simulate_writes_json_lines_and_the_truth_next_to_them(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    result = CliRunner().invoke(
        app,
        ["simulate", "--customers", "50", "--days", "90", "--seed", "9", "--jsonl", str(events)],
    )
    assert result.exit_code == 0, result.output
    records, errors = read_events(events)
    truth = load_truth(tmp_path / "truth.csv")
    assert len(truth) == 50
    assert {r["customer_id"] for _, r in records if r["customer_id"]} == set(truth)
    lines = events.read_text().splitlines()
    assert len(records) + len(errors) == len(lines)
    for heading in (
        "Purchase",
        "duplicates",
        "malformed",
        "invalid values",
        "churned",
        "customers",
        "items/s",
        "Personas",
    ):
        assert heading in result.stderr
    again = tmp_path / "again.jsonl"
    CliRunner().invoke(
        app,
        [
            "simulate",
            "--customers",
            "50",
            "--days",
            "90",
            "--seed",
            "9",
            "--jsonl",
            str(again),
            "--truth",
            str(tmp_path / "t2.csv"),
        ],
    )
    assert again.read_bytes() == events.read_bytes()
    assert (tmp_path / "t2.csv").read_bytes() == (tmp_path / "truth.csv").read_bytes()


def test_simulate_to_stdout_keeps_the_summary_on_stderr(tmp_path: Path):
    truth = tmp_path / "truth.csv"
    result = CliRunner().invoke(
        app, ["simulate", "--customers", "5", "--days", "30", "--jsonl", "-", "--truth", str(truth)]
    )
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert first["type"] == "ProfileChange"
    assert "delivered items" in result.stderr and "delivered" not in result.stdout
    assert len(load_truth(truth)) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2099-01-01"], "future"),
        (["--start", "soon"], "--start"),
        (["--truth", "{events}"], "same file"),  # the truth over the events
    ],
)
def test_simulate_refuses_bad_options(tmp_path: Path, args: list[str], message: str):
    events = tmp_path / "e.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--customers",
            "3",
            "--days",
            "10",
            "--jsonl",
            str(events),
            *(arg.format(events=events) for arg in args),
        ],
    )
    assert result.exit_code == 2
    assert message in result.output


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeProducer:
    """Records what is produced; fails the deliveries to ``failing`` topics."""

    def __init__(self, failing: str | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.callbacks: list[tuple[Any, str]] = []
        self.failing = failing

    def produce(
        self,
        topic: str,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        self.sent.append((topic, key, value))
        self.callbacks.append((on_delivery, topic))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        for callback, topic in self.callbacks:
            callback("broker down" if topic == self.failing else None, FakeMessage(topic))
        self.callbacks.clear()
        return 0


def small_simulation():
    return simulate(SimulationConfig(customers=20, days=60, seed=1, malformed_share=0.05))


def test_produce_items_sends_records_and_raw_malformed_payloads_in_order():
    sim = small_simulation()
    settings = Settings(topic_prefix="t-")
    codec = build_codec(settings)
    producer = FakeProducer()
    progressed: list[int] = []
    count = produce_items(
        settings, codec, sim.items, producer=producer, batch=100, progress=progressed.append
    )
    assert count == len(sim.items) == len(producer.sent) == sum(progressed)
    topic_of = {
        "Purchase": "t-customer.purchases",
        "Engagement": "t-customer.engagement",
        "SupportEvent": "t-customer.support",
        "ProfileChange": "t-customer.profile",
        "BillingEvent": "t-customer.billing",
    }
    for item, (topic, key, value) in zip(sim.items, producer.sent, strict=True):
        if isinstance(item, Malformed):
            assert (topic, key, value) == (
                topic_of[item.type_name],
                item.customer_id.encode(),
                item.payload,
            )
        else:
            type_name, record = item
            assert topic == topic_of[type_name]
            assert key == record["customer_id"].encode()
            assert codec.decode(value) == (type_name, record)
    assert any(isinstance(item, Malformed) for item in sim.items)


def test_produce_items_raises_on_failed_deliveries():
    sim = small_simulation()
    producer = FakeProducer(failing="customer.engagement")
    with pytest.raises(DeliveryError, match="not delivered"):
        produce_items(Settings(), build_codec(Settings()), sim.items, producer=producer)


def test_produce_items_paces_to_the_rate():
    sim = small_simulation()
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    count = produce_items(
        Settings(),
        build_codec(Settings()),
        sim.items,
        rate=100.0,
        producer=FakeProducer(),
        sleep=sleep,
        clock=lambda: now[0],
    )
    # the last batch starts once all but its records are due; nothing ran ahead of the rate
    assert (count - 10) / 100.0 <= now[0] <= count / 100.0
