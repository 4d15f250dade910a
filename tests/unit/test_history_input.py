"""Histories are told apart by their content, and a backtest that fails writes nothing."""

import io
from datetime import timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from streams.backtest import (
    HistoryFormatError,
    NothingToReplayError,
    backtest_main,
    history_format,
    read_events,
)
from streams.cli import app
from streams.codec import to_json_line
from streams.scenario import scenario
from streams.settings import Settings

CSV = "customer_id,timestamp,amount\nann,2026-01-05,12.50\nann,2026-01-12,8\n"


def json_lines(count=3, shift=timedelta(0)):
    records = scenario(customers=1, weeks=2)[:count]
    return "\n".join(to_json_line(name, {**record, "occurred_at": record["occurred_at"] + shift})
                     for name, record in records) + "\n"


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("events.jsonl", json_lines(), "jsonl"),
    ("events.csv", json_lines(), "jsonl"),  # JSON Lines whatever the name says
    ("orders.jsonl", CSV, "csv"),
    ("orders.txt", "\ufeff" + CSV.replace(",", ";"), "csv"),
    ("events.jsonl", "\x00garbage\n" + json_lines(), "jsonl"),  # a bad first line
])
def test_the_format_is_told_by_the_content(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert history_format(path) == expected
    records, errors = read_events(path)
    assert records and len(errors) == (1 if text.startswith("\x00") else 0)


@pytest.mark.parametrize("text", ["hello world\nthis is not json\n", "a;b;c\n1;2;3\n"])
def test_a_file_of_neither_format_says_so_and_not_only_what_a_csv_lacks(tmp_path, text):
    path = tmp_path / "events.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HistoryFormatError) as caught:
        read_events(path)
    message = str(caught.value)
    assert "neither JSON Lines nor a CSV of purchases" in message
    assert "not a JSON object" in message and "lacks column(s)" in message


def test_an_empty_file_is_no_history(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(HistoryFormatError, match="is empty"):
        read_events(path)


@pytest.mark.parametrize(("text", "until", "says"), [
    ('{"a": 1}\n{"type": "Purchase"}\n', None, "no usable records"),
    (CSV, "2025-01-01", "no record lies at or before --until"),
    (json_lines(shift=timedelta(days=3650 * 3)), None, "passed the workers' checks"),
])
def test_a_failed_backtest_writes_no_report(tmp_path, text, until, says):
    path = tmp_path / "events.jsonl"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    console = Console(file=io.StringIO(), width=200)
    from streams.cli import _parse_time

    with pytest.raises(NothingToReplayError, match=says):
        backtest_main(path, None, _parse_time(until, "--until"), out,
                      Settings(_env_file=None, clock="event"), console)
    assert not out.exists()
    assert "report written" not in console.file.getvalue()


def test_the_backtest_command_fails_on_a_jsonl_that_is_not_json(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("hello world\nthis is not json\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["backtest", "--events", str(path), "--out", str(out)])
    printed = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "neither JSON Lines nor a CSV of purchases" in printed
    assert "report written" not in printed and "None .. None" not in printed
    assert not out.exists()


def test_produce_refuses_a_file_of_neither_format_before_connecting(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("hello world\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["produce", "--events", str(path), "--bootstrap",
                                      "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "neither JSON Lines nor a CSV" in " ".join(result.output.split())


def test_the_simulators_noise_is_summarised_as_intended_in_one_line(tmp_path):
    from streams.simulator import SimulationConfig, simulate, write_jsonl, write_truth

    sim = simulate(SimulationConfig(customers=60, months=3, seed=4))
    assert sim.counts.malformed and sim.counts.invalid
    events, truth = tmp_path / "events.jsonl", tmp_path / "truth.csv"
    write_jsonl(sim.items, events)
    write_truth(sim.truth, truth)
    runs = {}
    for name, truth_file in (("simulated", truth), ("plain", None)):
        console = Console(file=io.StringIO(), width=300)
        backtest_main(events, truth_file, None, tmp_path / name,
                      Settings(_env_file=None, clock="event"), console)
        runs[name] = console.file.getvalue()
    noise = [line for line in runs["simulated"].splitlines() if "intended noise" in line]
    assert len(noise) == 1
    assert f"{sim.counts.malformed:,} malformed line(s) skipped" in noise[0]
    assert f"{sim.counts.invalid:,} invalid record(s) rejected" in noise[0]
    assert "events.jsonl:" not in runs["simulated"]
    assert "record(s) as" not in runs["simulated"]  # no per-reason warning lines
    # without the simulator's truth file nothing says the bad lines are intended
    assert "intended" not in runs["plain"] and "events.jsonl:" in runs["plain"]
