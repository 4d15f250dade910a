"""Every count in a printed table has thousands separators, whatever row it is in."""

import io
import re
from datetime import UTC, datetime, timedelta

from rich.console import Console

from streams.backtest import run_backtest, summary_table
from streams.demo import Summary
from streams.settings import Settings

T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: a run of four or more digits that is not part of a date, a time or a version hash
BARE = re.compile(r"(?<![\w,.:+-])\d{4,}(?![\w:-])")


def rendered(table) -> str:
    console = Console(file=io.StringIO(), width=300)
    console.print(table)
    return console.file.getvalue()


def purchase(n, at):
    return "Purchase", {"event_id": f"p{n}", "customer_id": f"c{n}", "occurred_at": at,
                        "order_id": f"o{n}", "amount_minor": 1000, "currency": "EUR",
                        "items": 1, "channel": "web"}


def test_the_backtest_table_separates_thousands_in_every_row():
    good = [purchase(n, T0 + timedelta(minutes=n)) for n in range(1_050)]
    future = [purchase(10_000 + n, T0 + timedelta(days=3650 * 3)) for n in range(1_002)]
    result = run_backtest(good + future, Settings(_env_file=None, clock="event"))
    result.load_errors = [object()] * 1_001  # type: ignore[list-item]
    text = rendered(summary_table(result))
    assert "1,001 / 1,002" in text and "1,050" in text
    assert not BARE.findall(text), text


def test_the_demo_persona_table_separates_thousands():
    summary = Summary()
    cast = {f"c{n}": "steady" for n in range(1_200)}
    summary.bands = dict.fromkeys(cast, "healthy")
    summary.flagged = set(list(cast)[:1_100])
    text = rendered(summary.persona_table(cast, frozenset(list(cast)[:1_050])))
    assert "1,200" in text and "1,100" in text and "1,050" in text
    assert "1,200 / 0 / 0" in text
    assert not BARE.findall(text), text
