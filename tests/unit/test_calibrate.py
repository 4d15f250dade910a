"""churnwatch calibrate: the fitted scorecard, the config it writes, and its refusals."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from streams.calibration.config_out import to_toml
from streams.calibration.fit import CANDIDATES, fit_scorecard
from streams.calibration.metrics import auc, calibration_table, precision_at
from streams.calibration.run import CalibrationError, calibrate_main, plan_cutoffs
from streams.calibration.snapshots import Snapshot
from streams.cli import app
from streams.domain.btyd import BgNbd
from streams.domain.scoring import compute_score, load_config, parse_config
from streams.settings import Settings

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY0 = START.timestamp() / 86400


def _history(path: Path, customers: int, days: int, seed: int = 3) -> Path:
    """A purchase CSV where each customer buys at its own rate until it stops for good."""
    rng = random.Random(seed)
    rows = ["customer_id,date,amount"]
    for c in range(customers):
        rate = rng.choice([1 / 7, 1 / 20, 1 / 45])
        stops = rng.uniform(0, days * 1.5)
        t = rng.uniform(0, 30)
        while t < min(days, stops):
            day = START + timedelta(days=t)
            rows.append(f"c{c:04d},{day:%Y-%m-%d},{rng.randint(5, 80)}.00")
            t += rng.expovariate(rate) + 1
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("calibrate")
    events = _history(tmp / "orders.csv", 400, 300)
    out, report_dir = tmp / "calibrated.toml", tmp / "report"
    report = calibrate_main(events, START + timedelta(days=300), timedelta(days=60), out,
                            report_dir, Settings(), Console(width=120, record=True))
    return out, report_dir, report


def test_calibrate_writes_a_config_the_loader_reads_and_a_report(calibrated):
    out, report_dir, report = calibrated
    config = load_config(out)
    assert config.version.startswith("calibrated-")
    assert config.link is not None and "60 days" in config.link.meaning
    assert config.bands.watch_min == config.alerts.enter_below
    assert config.alerts.exit_above > config.alerts.enter_below
    for name in ("report.json", "roc.png", "reliability.png"):
        assert (report_dir / name).stat().st_size > 0
    saved = json.loads((report_dir / "report.json").read_text("utf-8"))
    ranking = saved["held_out"]["ranking"]
    assert set(ranking) == {"calibrated", "days_since_last_activity", "lifetime_frequency",
                            "bgnbd_expected_purchases", "rfm_logistic_regression",
                            "default_config"}
    assert ranking["calibrated"]["auc"] > 0.6  # leaving is predictable in this history
    assert report["held_out"]["snapshots"] > 0
    # held-out cutoffs come after every fitted label
    horizon = timedelta(days=report["horizon_days"])
    fitted = [datetime.fromisoformat(d) for d in report["cutoffs"]["fitted_for_the_check"]]
    held = [datetime.fromisoformat(d) for d in report["cutoffs"]["held_out"]]
    assert fitted and held and max(fitted) + horizon <= min(held)


def test_a_calibrated_config_round_trips_through_toml(calibrated):
    out, _, _ = calibrated
    config = load_config(out)
    data = config.model_dump(mode="json", exclude_none=True)
    again = parse_config(to_toml(data))
    assert again.model_dump(mode="json", exclude_none=True) == {**data,
                                                                "version": again.version}


def _calibrated_signals():
    return st.fixed_dictionaries({
        "purchase.last_at_d": st.floats(DAY0, DAY0 + 200),
        "purchase.orders_total": st.integers(1, 60).map(float),
        "purchase.aov": st.floats(0, 100_000),
        "purchase.span_d": st.floats(0, 200),
        "purchase.days_90": st.integers(1, 16).map(float),
    }, optional={"purchase.gap_mean_d": st.floats(1, 60),
                 "purchase.orders_28d": st.integers(0, 20).map(float)})


@settings(max_examples=200, deadline=None)
@given(signals=_calibrated_signals(), later=st.floats(0, 400))
def test_contributions_add_up_to_the_calibrated_score(calibrated, signals, later):
    config = load_config(calibrated[0])
    signals["purchase.first_at_d"] = signals["purchase.last_at_d"] - signals["purchase.span_d"]
    score = compute_score(config, signals, now_d=signals["purchase.last_at_d"] + later,
                          segment="default", tenure_d=None)
    assert score is not None
    assert 0.0 <= score.score <= 100.0
    assert sum(c.contribution for c in score.contributions) == pytest.approx(score.score,
                                                                          abs=0.01)
    assert config.link is not None
    assert score.score == pytest.approx(100 * config.link.probability(score.points), abs=0.01)


def test_the_stronger_predictor_gets_the_larger_weight():
    # who comes back depends strongly on days since the last purchase, not on orders
    rng = random.Random(7)
    snaps = []
    for i in range(4000):
        days = rng.uniform(0, 200)
        orders = float(rng.randint(1, 10))
        p = 1 / (1 + math.exp(-(2.0 - days / 25)))
        snaps.append(Snapshot(f"c{i}", DAY0 + 300, {
            "purchase.last_at_d": DAY0 + 300 - days, "purchase.orders_total": orders},
            "default", None, rng.random() < p))
    chosen = [c for c in CANDIDATES if c.name in ("purchase_days_since", "purchase_orders")]
    card = fit_scorecard(load_config(), snaps, chosen)
    spread = {m.candidate.name: m.spread for m in card.measures}
    assert spread["purchase_days_since"] > 5 * spread.get("purchase_orders", 0.0)
    days = next(m for m in card.measures if m.candidate.name == "purchase_days_since")
    assert days.values == sorted(days.values, reverse=True)  # monotone, as the domain says


def test_a_history_too_short_for_its_horizon_is_refused(tmp_path: Path):
    events = _history(tmp_path / "short.csv", 50, 100)
    with pytest.raises(CalibrationError, match="too short for a 90-day horizon"):
        calibrate_main(events, START + timedelta(days=100), timedelta(days=90),
                       tmp_path / "out.toml", tmp_path / "rep", Settings(), Console())
    assert not (tmp_path / "out.toml").exists() and not (tmp_path / "rep").exists()
    result = CliRunner().invoke(app, ["calibrate", "--events", str(events), "--until",
                                      "2025-04-11", "--out", str(tmp_path / "out.toml")])
    assert result.exit_code == 1
    assert "too short" in result.output


def test_cutoffs_hold_out_the_latest_and_fit_on_labels_that_end_before_them():
    plan = plan_cutoffs(START, START + timedelta(days=400), timedelta(days=60),
                        timedelta(days=30))
    assert plan.cutoffs[-1] == START + timedelta(days=340)
    assert plan.held_out and plan.fit_for_check
    assert max(plan.fit_for_check) + timedelta(days=60) <= min(plan.held_out)


def test_ranking_metrics_on_known_orders():
    assert auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auc([1, 1, 1, 1], [True, False, True, False]) == 0.5
    assert precision_at(list(range(10)), [i >= 9 for i in range(10)], 0.1) == 1.0
    bins = calibration_table([0.05, 0.05, 0.95, 0.95], [False, False, True, False])
    assert [(b.customers, b.observed) for b in bins] == [(2, 0.0), (2, 0.5)]


def test_bgnbd_matches_the_published_cdnow_example():
    # Fader, Hardie and Lee's CDNOW parameters (weeks); a customer with 2 repeat purchases,
    # the last at week 30.43 of 38.86, expects about 1.226 purchases in the next 39 weeks
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert model.expected(2, 30.43, 38.86, 39) == pytest.approx(1.226, abs=0.002)
    assert 0 < model.p_alive(2, 30.43, 38.86) < 1
    assert model.expected(0, 0, 38.86, 39) < model.expected(2, 38.0, 38.86, 39)


def test_a_file_that_is_no_history_is_refused_in_one_line(tmp_path: Path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello world\nfoo\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calibrate", "--events", str(garbage), "--until",
                                      "2025-06-01", "--out", str(tmp_path / "out.toml")])
    assert result.exit_code == 1
    assert "neither JSON Lines nor a CSV of purchases" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.toml").exists()
