from typer.testing import CliRunner

from streams.cli import app


def test_backtest_command_on_a_purchase_csv(tmp_path):
    rows = ["customer_id,timestamp,amount"]
    rows += [f"ann,2026-01-{day:02d},12.50" for day in (1, 8, 15, 22)]
    rows += [f"bob,2026-0{1 + d // 31}-{1 + d % 31:02d},20" for d in range(0, 56, 7)]
    events = tmp_path / "shop.csv"
    events.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["backtest", "--events", str(events), "--until",
                                      "2026-03-20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "report.json", "customers.csv", "precision_recall.png", "lead_times.png"}
    lines = (out / "customers.csv").read_text().splitlines()
    ann = next(line for line in lines if line.startswith("ann,"))
    assert ",at_risk," in ann and "purchase_lapse" in ann


def test_backtest_rejects_a_bad_until(tmp_path):
    events = tmp_path / "e.csv"
    events.write_text("customer_id,timestamp,amount\nann,2026-01-01,1\n")
    result = CliRunner().invoke(app, ["backtest", "--events", str(events), "--until", "soon"])
    assert result.exit_code == 2 and "--until" in result.output


def test_backtest_of_a_file_with_nothing_usable_fails_saying_why(tmp_path):
    events = tmp_path / "e.csv"
    events.write_bytes(b"\x00\xff garbage, not a header\n\x01\x02\n")
    result = CliRunner().invoke(app, ["backtest", "--events", str(events), "--out",
                                      str(tmp_path / "out")])
    printed = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "CSV header lacks column(s): customer id, timestamp, amount" in printed
    assert "neither JSON Lines nor a CSV of purchases" in printed
    assert not (tmp_path / "out").exists() and "report written" not in printed
