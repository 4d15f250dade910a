"""``churnwatch produce``: a shop's CSV export through the real workers, as the backtest
reads it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.backtest import read_events, run_backtest
from streams.cli import app
from streams.codec import build_codec
from streams.kafka_io import collect
from streams.settings import TOPIC_AT_RISK, TOPIC_HEALTH, Settings

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(event_settings: Callable[..., Settings]) -> Settings:
    # a generous lateness: the two customers' partitions may be read unevenly
    return event_settings(allowed_lateness_s=10 * 86400, lapse_check_interval_s=1.0,
                          gauges_interval_s=5.0)


def shop_export(path: Path) -> None:
    """Line items (two per order), slashed day-first times, decimal commas, a refund."""
    rows = ["Invoice;Customer ID;Invoice Date;Quantity;Unit Price"]
    for week in range(20):
        for customer, weeks in (("17850", 20), ("13047", 6)):
            if week >= weeks:
                continue
            at = T0 + timedelta(days=7 * week, hours=int(customer) % 5)
            stamp = at.strftime("%d/%m/%Y %H:%M")
            order = f"{customer}-{week}"
            rows += [f"{order};{customer};{stamp};2;3,50", f"{order};{customer};{stamp};1;12,00"]
    rows.append(f"C1;17850;{(T0 + timedelta(days=3)).strftime('%d/%m/%Y %H:%M')};-1;3,50")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_shop_export_produced_to_the_workers_alerts_as_its_backtest(settings, worker,
                                                                      tmp_path: Path):
    path = tmp_path / "orders.csv"
    shop_export(path)
    records, errors = read_events(path, currency="GBP")
    assert len(records) == 26 and [e.line for e in errors] == [54]
    assert {r["amount_minor"] for _, r in records} == {1900}
    probe = run_backtest(records, settings)
    assert probe.until is not None
    watermark = probe.until - timedelta(seconds=settings.allowed_lateness_s)
    expected = run_backtest(records, settings, ticks_until=watermark)
    at_risk = sorted(r["event_id"] for r in expected.of_type("CustomerAtRisk"))
    assert at_risk == ["13047:health_at_risk:1"]  # the one who stopped buying

    result = CliRunner().invoke(app, [
        "produce", "--events", str(path), "--currency", "GBP", "--pace", "20",
        "--bootstrap", settings.kafka_bootstrap, "--topic-prefix", settings.topic_prefix])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # the console wraps long lines
    assert "produced 26 records for 2 customers" in printed
    assert "orders.csv:54: Quantity: '-1' is negative" in printed  # the refund, reported

    codec = build_codec(settings)
    got = collect(settings, codec, [TOPIC_AT_RISK], timeout=90,
                  until=lambda got: len(got) >= len(at_risk))
    assert sorted(r["event_id"] for _, _, r in got) == at_risk
    health = collect(settings, codec, [TOPIC_HEALTH], timeout=30,
                     until=lambda got: {r["customer_id"] for _, _, r in got} >= {"17850"})
    assert {r["customer_id"] for _, _, r in health} == {"17850", "13047"}
