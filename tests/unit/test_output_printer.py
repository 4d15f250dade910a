"""What the demo and `churnwatch watch` print for outputs, and how they count them."""

import io
from datetime import UTC, datetime

from rich.console import Console

from streams.demo import OutputPrinter

AT = datetime(2026, 1, 5, tzinfo=UTC)


def dead_letter(offset, reason):
    return {"failed_at": AT, "source_topic": "customer.purchases", "source_partition": 0,
            "source_offset": offset, "reason": reason, "step": "purchases",
            "error": f"bad record {offset}"}


def printer(**options):
    console = Console(file=io.StringIO(), width=200, force_terminal=True)
    return OutputPrinter(console, **options), console


def plain(printer_):
    console = Console(file=io.StringIO(), width=200)
    console.print(printer_.summary.line())
    return console.file.getvalue()


def test_intended_noise_is_shown_once_per_reason_dimmed_and_then_counted():
    out, console = printer(noise_intended=True)
    for offset, reason in enumerate(["malformed", "malformed", "invalid_field", "malformed"]):
        out.handle("churnwatch.dead-letter", "DeadLetter", dead_letter(offset, reason))
    text = console.file.getvalue()
    assert text.count("dead letter (intended noise)") == 2
    assert "bad record 0" in text and "bad record 2" in text and "bad record 1" not in text
    assert "DEAD LETTER" not in text
    assert "\x1b[2m" in text  # dim, not the alarm colours
    assert out.summary.dead_letters == 4
    assert out.summary.dead_reasons == {"malformed": 3, "invalid_field": 1}
    assert "dead letters 4 (intended noise)" in plain(out)


def test_unexpected_dead_letters_stand_out():
    out, console = printer()
    for offset in range(3):
        out.handle("churnwatch.dead-letter", "DeadLetter", dead_letter(offset, "malformed"))
    text = console.file.getvalue()
    assert text.count("DEAD LETTER") == 3 and "intended noise" not in text
    assert "dead letters 3" in plain(out) and "intended" not in plain(out)


def test_the_status_line_shows_produced_of_total_while_producing():
    out, _ = printer()
    summary = out.summary
    summary.produced, summary.total, summary.consumed = 4_893, 11_947, 4_500
    assert "produced 4,893/11,947, worker consumed 4,500" in plain(out)
    summary.produced = summary.consumed = 11_947
    line = plain(out)
    assert "worker consumed 11,947/11,947" in line and "produced" not in line


def test_the_replay_is_done_once_everything_is_produced_consumed_and_quiet():
    from streams.demo import Summary, replayed

    summary = Summary(produced=100, total=120, consumed=100)
    assert not replayed(summary, quiet_s=60, idle_s=20)  # still producing
    summary.produced = 120
    assert not replayed(summary, quiet_s=60, idle_s=20)  # the worker is behind
    summary.consumed = 120
    assert not replayed(summary, quiet_s=5, idle_s=20)  # outputs still coming
    assert replayed(summary, quiet_s=20, idle_s=20)
