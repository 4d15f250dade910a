"""The backtest: inputs, metrics on handmade cases, and end-to-end reports."""

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from streams.backtest import (
    KEPT_OUTPUTS,
    HistoryFormatError,
    JsonlHistory,
    Truth,
    _OutputFold,
    alert_starts,
    backtest_main,
    classify,
    false_alerts_per_1000_per_month,
    final_states,
    flapping_rate,
    lead_time_stats,
    load_truth,
    min_scores,
    quantile,
    read_events,
    report_dict,
    run_backtest,
    summary_table,
    threshold_curve,
    write_report,
)
from streams.codec import to_json_line
from streams.scenario import LAPSING, personas, scenario
from streams.settings import Settings
from streams.simulator import SimulationConfig, simulate, write_jsonl, write_truth

T0 = datetime(2026, 1, 5, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def settings():
    return Settings(_env_file=None, clock="event")


def day(n):
    return T0 + timedelta(days=n)


# --------------------------------------------------------------------------- metrics


def test_classify_counts_warned_churners_within_the_horizon():
    starts = {
        "a": [day(10)],  # churned day 40: warned 30 days ahead
        "b": [day(50)],  # churned day 40: alert after churn, not warned
        "c": [day(0), day(90)],  # churned day 100: first in window is day 90 (horizon 30)
        "d": [day(5)],  # did not churn: false alarm
        "x": [day(5)],  # not in truth: ignored
    }
    truth = {"a": Truth(True, day(40)), "b": Truth(True, day(40)),
             "c": Truth(True, day(100)), "d": Truth(False), "e": Truth(True, day(20)),
             "f": Truth(False)}
    result = classify(starts, truth, horizon=timedelta(days=30))
    assert result.warned == {"a": day(10), "c": day(90)}
    assert result.alerted == {"a", "b", "c", "d"}
    assert result.precision_incl_late_alerts == 0.75  # a, b, c churned of 4 alerted
    assert result.precision_before_churn == 0.5  # a, c warned of the 4
    assert result.precision == result.precision_before_churn  # the headline is the strict one
    assert result.recall == 0.5  # 2 warned / 4 churned
    assert result.f1 == 0.5  # of the headline precision and the recall
    assert result.lead_days == (30.0, 10.0)


def test_metrics_without_alerts_or_churners_are_undefined_not_zero():
    result = classify({}, {"a": Truth(False)})
    assert result.precision is None and result.recall is None and result.f1 is None
    assert flapping_rate({}) is None
    assert lead_time_stats([]) == {"median": None, "p10": None, "p90": None}


def test_lead_time_quantiles_interpolate_linearly():
    lead = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert lead_time_stats(lead) == {"median": 30.0, "p10": 14.0, "p90": 46.0}
    assert quantile([7.0], 0.9) == 7.0


def test_false_alerts_per_1000_customers_per_month():
    truth = {f"c{i}": Truth(False) for i in range(200)}
    truth["c0"] = Truth(True, day(10))
    starts = {"c0": [day(1)], "c1": [day(1), day(20)], "c2": [day(3)], "other": [day(2)]}
    period = timedelta(days=365.25 / 12 * 2)  # two months
    # 3 alerts for non-churners / (200 / 1000) / 2 months
    assert false_alerts_per_1000_per_month(starts, truth, period) == pytest.approx(7.5)


def test_flapping_rate_counts_episodes_beyond_the_first():
    starts = {"a": [day(1)], "b": [day(1), day(20), day(40)], "c": [day(2), day(9)]}
    assert flapping_rate(starts) == 1.0  # (0 + 2 + 1) / 3


def test_threshold_curve_from_lowest_scores():
    lowest = {"a": 30.0, "b": 50.0, "c": 40.0, "d": 80.0}
    truth = {"a": Truth(True, day(9)), "b": Truth(True, day(9)), "c": Truth(False),
             "d": Truth(False)}
    assert threshold_curve(lowest, truth, [20.0, 45.0, 60.0, 100.0]) == [
        (20.0, None, 0.0), (45.0, 0.5, 0.5), (60.0, 2 / 3, 1.0), (100.0, 0.5, 1.0)]


# --------------------------------------------------------------------------- inputs


def test_csv_purchases_with_aliases_decimal_amounts_and_a_bad_line(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer,date,amount,order_id\n"
        "c1,2026-01-07,12.50,o-1\n"
        "c2,2026-01-05T10:00:00Z,7,\n"
        "c1,not a date,3.00,o-3\n"
        "c3,2026-01-06T09:30:00+01:00,1.999,o-4\n",
        encoding="utf-8")
    records, errors = read_events(path, currency="USD")
    assert [(e.line, e.message[:32]) for e in errors] == [(4, "date: Invalid isoformat string: ")]
    assert [r["event_id"] for _, r in records] == ["csv-3", "csv-5", "csv-2"]  # sorted by time
    second, third, first = records
    assert first == ("Purchase", {
        "event_id": "csv-2", "customer_id": "c1", "occurred_at": day(2), "order_id": "o-1",
        "amount_minor": 1250, "currency": "USD", "items": 1, "channel": "other"})
    assert second[1]["amount_minor"] == 700 and second[1]["order_id"] == "csv-3"
    assert third[1]["amount_minor"] == 200  # rounded to minor units


def test_csv_amount_minor_column(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,occurred_at,amount_minor\nc1,2026-01-05,2500\n",
                    encoding="utf-8")
    records, errors = read_events(path)
    assert not errors
    assert records[0][1]["amount_minor"] == 2500 and records[0][1]["currency"] == "EUR"


def test_csv_without_required_columns_is_reported(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("who,when\nc1,2026-01-05\n", encoding="utf-8")
    with pytest.raises(HistoryFormatError, match="lacks column.*amount"):
        read_events(path)


def test_jsonl_loads_sorted_and_counts_bad_lines(tmp_path):
    later, earlier = scenario(customers=1, weeks=2)[3], scenario(customers=1, weeks=2)[1]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([
        to_json_line(*later), "{not json", "", to_json_line(*earlier),
        '{"type": "Purchase", "record": {"event_id": "x"}}']) + "\n", encoding="utf-8")
    records, errors = read_events(path)
    assert [e.line for e in errors] == [2, 5]
    assert [r["event_id"] for _, r in records] == [earlier[1]["event_id"],
                                                   later[1]["event_id"]]


def test_load_truth(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("customer_id,churned,churned_at\na,true,2026-03-01\nb,0,\nc,1,"
                    "2026-02-01T12:00:00Z\n", encoding="utf-8")
    assert load_truth(path) == {
        "a": Truth(True, datetime(2026, 3, 1, tzinfo=UTC)), "b": Truth(False),
        "c": Truth(True, datetime(2026, 2, 1, 12, tzinfo=UTC))}
    path.write_text("customer_id,churned,churned_at\na,maybe,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        load_truth(path)


# --------------------------------------------------------------------------- end to end


def scenario_truth(customers, weeks):
    """Lapsing personas churned 28 days after their last event; the others did not."""
    records = scenario(customers=customers, weeks=weeks)
    last = {}
    for _, record in records:
        last[record["customer_id"]] = record["occurred_at"]
    truth = {c: Truth(True, last[c] + timedelta(days=28)) if p in LAPSING else Truth(False)
             for c, p in personas(customers).items()}
    return records, truth


def test_scenario_backtest_warns_churners_and_writes_every_report(tmp_path):
    records, truth = scenario_truth(60, 12)
    result = run_backtest(records, settings(), truth=truth)
    paths = write_report(result, tmp_path)

    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    figures = report["truth"]
    assert figures["recall"] > 0.8
    assert figures["churned"] == sum(1 for t in truth.values() if t.churned)
    assert figures["lead_time_days"]["median"] > 14
    assert report["counts"]["events"] == len(records)
    assert report["config_version"].startswith("default-2")
    assert set(report["bands"]) <= {"healthy", "watch", "at_risk", "none"}

    with (tmp_path / "customers.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert {r["alert_state"] for r in rows} <= {"at_risk", "recovered", "none"}
    assert all(r["churned"] in ("true", "false") for r in rows)
    for name in ("precision_recall.png", "lead_times.png"):
        assert paths[name].read_bytes()[:8] == PNG_MAGIC
    assert summary_table(result).row_count > 5


def test_purchase_only_csv_scores_sensibly(tmp_path):
    lines = ["customer_id,timestamp,amount"]
    for week in range(20):  # a steady weekly buyer
        lines.append(f"steady,{(T0 + timedelta(weeks=week)).date()},25.00")
    for week in range(8):  # a weekly buyer who goes silent after 8 weeks
        lines.append(f"silent,{(T0 + timedelta(weeks=week, days=1)).date()},25.00")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, errors = read_events(path)
    assert not errors

    result = run_backtest(records, settings())
    write_report(result, tmp_path / "out")
    with (tmp_path / "out" / "customers.csv").open(encoding="utf-8", newline="") as handle:
        rows = {r["customer_id"]: r for r in csv.DictReader(handle)}
    assert rows["silent"]["alert_state"] == "at_risk"
    assert rows["silent"]["band"] == "at_risk"
    assert "purchase_lapse" in rows["silent"]["reasons"]
    assert rows["steady"]["band"] == "healthy" and rows["steady"]["alert_state"] == "none"
    assert result.alert_starts().keys() == {"silent"}


def test_until_stops_the_replay_and_ticks_up_to_it():
    records, _ = scenario_truth(10, 6)
    until = records[len(records) // 2][1]["occurred_at"]
    result = run_backtest(records, settings(), until=until, keep_outputs=True)
    assert result.until == until
    assert result.events == sum(1 for _, r in records if r["occurred_at"] <= until)
    assert result.outputs and all(r["occurred_at"] <= until for _, r in result.outputs)


def test_a_rejected_record_does_not_move_the_replayed_period():
    records, _ = scenario_truth(10, 6)
    last = max(r["occurred_at"] for _, r in records)
    bogus = dict(records[-1][1], event_id="from-the-future",
                 occurred_at=last + timedelta(days=5 * 365))
    result = run_backtest([*records, (records[-1][0], bogus)], settings())
    assert [r.reason for r in result.rejections] == ["in_future"]
    assert result.until == last  # no silence checks run five years ahead


def test_backtest_main_reads_replays_and_reports(tmp_path):
    records, truth = scenario_truth(20, 8)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(to_json_line(*r) for r in records) + "\nnot json\n",
                      encoding="utf-8")
    truth_path = tmp_path / "truth.csv"
    truth_path.write_text("customer_id,churned,churned_at\n" + "".join(
        f"{c},{str(t.churned).lower()},{t.churned_at.isoformat() if t.churned_at else ''}\n"
        for c, t in truth.items()), encoding="utf-8")
    console = Console(file=io.StringIO(), width=120)
    result = backtest_main(events, truth_path, None, tmp_path / "out", settings(), console)
    assert result.events == len(records)
    assert [e.line for e in result.load_errors] == [len(records) + 1]
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["bad_lines"] == 1
    text = console.file.getvalue()
    assert "recall" in text and f"events.jsonl:{len(records) + 1}" in text


# --------------------------------------------------------------------------- folded outputs


def whole_list_figures(outputs, customers, truth, horizon):
    """What the report read from the whole sorted list of outputs before they were folded."""
    return {
        "alert_starts": list(alert_starts(outputs).items()),
        "finals": [(c, _alerting(f)) for c, f in final_states(outputs, customers).items()],
        "lowest": min_scores(outputs, truth, horizon),
        "counts": list(Counter(name for name, _ in outputs).items()),
        "alerts": [o for o in outputs if o[0] in KEPT_OUTPUTS],
        "config_version": next(
            (r["config_version"] for _, r in outputs if "config_version" in r), None),
    }


def _alerting(final):
    """A final state without its score and band: the report takes those as of the end of
    the replay, not from the last published score."""
    return (final.alert_state, final.episodes, final.first_alert_at, final.reasons)


def folded_figures(result):
    return {
        "alert_starts": list(result.alert_starts().items()),
        "finals": [(c, _alerting(f)) for c, f in result.finals.items()],
        "lowest": result.lowest_scores,
        "counts": list(result.output_counts.items()),
        "alerts": result.alerts,
        "config_version": result.config_version,
    }


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A small simulated population, written and read back as ``churnwatch backtest`` does."""
    sim = simulate(SimulationConfig(customers=60, months=4, seed=3))
    folder = tmp_path_factory.mktemp("sim")
    write_jsonl(sim.items, folder / "events.jsonl")
    write_truth(sim.truth, folder / "truth.csv")
    records, _ = read_events(folder / "events.jsonl")
    return records, load_truth(folder / "truth.csv")


def test_folded_outputs_give_what_the_whole_list_gave(simulated):
    records, truth = simulated
    horizon = timedelta(days=30)
    folded = run_backtest(records, settings(), truth=truth, horizon=horizon)
    kept = run_backtest(records, settings(), truth=truth, horizon=horizon, keep_outputs=True)
    assert folded.outputs is None
    assert kept.outputs is not None
    outputs = kept.outputs
    assert [r["occurred_at"] for _, r in outputs] == sorted(r["occurred_at"] for _, r in outputs)

    expected = whole_list_figures(outputs, kept.customers, truth, horizon)
    assert folded_figures(folded) == expected  # dict orders included: the report keeps them
    assert folded_figures(kept) == expected
    assert folded.of_type("CustomerAtRisk") == [r for n, r in outputs if n == "CustomerAtRisk"]
    with pytest.raises(ValueError, match="keep_outputs"):
        folded.of_type("HealthScoreChanged")

    # the case worth checking: a churner's lowest score inside its window is not its lowest
    churners = {c for c, t in truth.items() if t.churned}
    anytime = min_scores(outputs, {c: Truth(False) for c in churners})
    assert any(anytime[c] < low for c, low in expected["lowest"].items() if c in churners)
    assert expected["alerts"] and len(expected["counts"]) >= 3

    def report(result):
        return {k: v for k, v in report_dict(result).items() if k != "throughput_events_per_s"}

    assert report(folded) == report(kept)
    assert report(folded)["counts"]["outputs"] == dict(expected["counts"])
    assert [(c, f.score) for c, f in folded.finals.items()] == [
        (c, f.score) for c, f in kept.finals.items()]
    assert folded.ranking is not None and folded.ranking == kept.ranking


OUTPUT_TYPES = ("HealthScoreChanged", "CustomerAtRisk", "CustomerRecovered", "CustomerChampion")


@st.composite
def produced_outputs(draw):
    """Outputs in an arbitrary production order, with event times that tie."""
    outputs = []
    for i in range(draw(st.integers(0, 40))):
        name = draw(st.sampled_from(OUTPUT_TYPES))
        record = {"customer_id": draw(st.sampled_from("abcd")),
                  "occurred_at": day(draw(st.integers(0, 6))),
                  "score": float(draw(st.integers(0, 100))),
                  "band": draw(st.sampled_from(("healthy", "watch", "at_risk"))),
                  "reasons": [{"code": f"r{i}"}], "config_version": f"v{i}"}
        outputs.append((name, record))
    return outputs


@given(produced_outputs(), st.integers(1, 5))
def test_folding_in_production_order_equals_the_stable_sort_by_event_time(outputs, chunk):
    truth = {"a": Truth(True, day(4)), "b": Truth(False), "c": Truth(True, day(9))}
    horizon = timedelta(days=3)
    fold = _OutputFold(truth, horizon, keep_outputs=False)
    for i in range(0, len(outputs), chunk):
        fold.add(outputs[i:i + chunk])
    ordered = sorted(outputs, key=lambda o: o[1]["occurred_at"])
    expected = whole_list_figures(ordered, "abcde", truth, horizon)
    assert {
        "alert_starts": list(alert_starts(fold.alerts()).items()),
        "finals": [(c, _alerting(f)) for c, f in fold.finals("abcde").items()],
        "lowest": fold.lowest,
        "counts": list(fold.output_counts().items()),
        "alerts": fold.alerts(),
        "config_version": fold.version[2] if fold.version else None,
    } == expected


@pytest.mark.parametrize(("families", "at_most"), [
    # curves that keep ranking (days since the last purchase falls for two years) leave
    # fewer flat stretches than curves that end at 0 after a few gaps
    (None, 0.85),
    ({"Purchase"}, 0.5),  # sparse: most checks fall where nothing happens
])
def test_skipping_checks_that_change_nothing_changes_no_output(simulated, monkeypatch,
                                                               families, at_most):
    """Silence checks are skipped while a customer's score cannot move, or falls without
    reaching anything that publishes; what is published is what checking every day
    publishes (trends aside: the averages fold fewer samples)."""
    import streams.domain.health as health_module

    records, truth = simulated
    if families is not None:
        records = [r for r in records if r[0] in families]
    evaluations = Counter()
    real_score = health_module.compute_score

    def counted(*args, **kwargs):
        evaluations[mode] += 1
        return real_score(*args, **kwargs)

    monkeypatch.setattr(health_module, "compute_score", counted)
    mode = "steady"
    steady = run_backtest(records, settings(), truth=truth, keep_outputs=True).outputs
    mode = "daily"
    monkeypatch.setattr(health_module, "next_check_ms", lambda health, config, at_ms, *a, **k:
                        at_ms + int(config.lapse.check_every_d * 86_400_000))
    daily = run_backtest(records, settings(), truth=truth, keep_outputs=True).outputs

    def without_trends(outputs):  # per customer, in the order produced
        return sorted([(n, {k: v for k, v in r.items() if not k.startswith("trend_")})
                       for n, r in outputs], key=lambda o: o[1]["customer_id"])

    assert without_trends(steady) == without_trends(daily)
    assert sum(n == "CustomerAtRisk" for n, _ in daily) >= 3
    assert evaluations["steady"] < at_most * evaluations["daily"], evaluations


def test_holdout_after_until_counts_who_came_back_per_band():
    def buy(customer, n):
        return ("Purchase", {
            "event_id": f"{customer}-{n}", "customer_id": customer, "occurred_at": day(n),
            "order_id": f"{customer}-o{n}", "amount_minor": 1000, "currency": "EUR",
            "items": 1, "channel": "web"})

    records = sorted([buy("gone", n) for n in range(0, 60, 7)]
                     + [buy("loyal", n) for n in range(0, 140, 7)]
                     + [buy("back", n) for n in (*range(0, 40, 7), 120)],
                     key=lambda r: r[1]["occurred_at"])
    result = run_backtest(records, settings(), until=day(100))
    holdout = report_dict(result)["after_until"]
    assert holdout["days"] == 133 - 100
    assert holdout["customers_came_back"] == 2
    assert holdout["by_band"] == {
        "at_risk": {"customers": 2, "came_back": 1, "share": 0.5},
        "healthy": {"customers": 1, "came_back": 1, "share": 1.0}}
    assert result.finals["loyal"].band == "healthy"
    assert report_dict(run_backtest(records, settings()))["after_until"] is None


_ODD_VALUES = ["null", "1e309", "-1", '""', "[]", "{}", "true", "9" * 30, '"\\u0000"',
               '"2026-13-45T00:00:00Z"', '"1970-01-01T00:00:00Z"', '"9999-12-31T23:59:59Z"',
               "NaN", "-0", '"' + "x" * 300 + '"']


def _corrupt(line: str, rng) -> str:
    """One value swapped for an odd one, a byte garbled, or the line cut short."""
    roll = rng.random()
    colons = [i for i, c in enumerate(line) if c == ":"]
    if roll < 0.5 and colons:
        start = rng.choice(colons) + 1
        end, depth = start, 0
        while end < len(line) and not (depth == 0 and line[end] in ",}"):
            depth += line[end] in "[{"
            depth -= line[end] in "]}"
            end += 1
        return line[:start] + rng.choice(_ODD_VALUES) + line[end:]
    if roll < 0.8:
        data = bytearray(line.encode())
        data[rng.randrange(len(data))] = rng.choice([b for b in range(256) if b not in b"\r\n"])
        return data.decode("utf-8", "replace")
    return line[:rng.randrange(len(line))]


@pytest.mark.parametrize("seed", range(6))
def test_a_corrupted_history_never_stops_the_backtest(tmp_path, seed):
    import random

    rng = random.Random(seed)
    path = tmp_path / "events.jsonl"
    write_jsonl(simulate(SimulationConfig(customers=40, months=2, seed=seed)).items, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [_corrupt(line, rng) if rng.random() < 0.4 else line for line in lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, errors = read_events(path)
    assert len(records) + len(errors) == sum(1 for line in lines if line.strip())
    assert errors and records
    result = run_backtest(records, settings())
    assert result.rejections and result.finals  # bad values refused, the rest scored


def test_a_lazy_history_reads_what_the_list_holds(tmp_path):
    sim = simulate(SimulationConfig(customers=20, months=2, seed=5))
    path = tmp_path / "events.jsonl"
    write_jsonl(sim.items, path)
    # a byte-order mark, Windows line ends and a blank line do not change what is read
    text = path.read_bytes().replace(b"\n", b"\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text + b"\r\n{broken\r\n")
    eager, eager_errors = read_events(path)
    lazy, lazy_errors = read_events(path, lazy=True)
    assert isinstance(lazy, JsonlHistory) and isinstance(eager, list)
    assert eager_errors == lazy_errors
    assert [e.line for e in lazy_errors] == [text.count(b"\n") + 2]
    assert len(lazy) == len(eager) and list(lazy) == eager
    assert lazy[0] == eager[0] and lazy[-1] == eager[-1] and lazy[3:7] == eager[3:7]
    times = [r["occurred_at"] for _, r in lazy]
    assert times == sorted(times)
    assert report_dict(run_backtest(lazy, settings())) == report_dict(
        run_backtest(eager, settings())) | {"throughput_events_per_s": ANY}


def test_backtest_reads_a_large_history_lazily_with_the_same_report(tmp_path, monkeypatch):
    import streams.backtest.run as backtest_module

    path = tmp_path / "events.jsonl"
    write_jsonl(simulate(SimulationConfig(customers=15, months=2, seed=8)).items, path)
    console = Console(file=io.StringIO())
    reports = []
    for limit in (1 << 40, 0):  # small enough to hold, then "too large": lazy
        monkeypatch.setattr(backtest_module, "LAZY_READ_ABOVE_BYTES", limit)
        read = backtest_module.read_events
        kinds = []

        def spy(*args, _read=read, _kinds=kinds, **kwargs):
            records, errors = _read(*args, **kwargs)
            _kinds.append(type(records).__name__)
            return records, errors

        monkeypatch.setattr(backtest_module, "read_events", spy)
        backtest_main(path, None, None, tmp_path / f"out-{limit}", settings(), console)
        monkeypatch.setattr(backtest_module, "read_events", read)
        report = json.loads((tmp_path / f"out-{limit}" / "report.json").read_text())
        reports.append((kinds, {k: v for k, v in report.items()
                                if k != "throughput_events_per_s"}))
    (eager_kinds, eager), (lazy_kinds, lazy) = reports
    assert eager_kinds == ["list"] and lazy_kinds == ["JsonlHistory"]
    assert eager == lazy and eager["counts"]["events"] > 100
