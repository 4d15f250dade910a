"""Writing a simulation out: its items as JSON Lines and its truth as CSV."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import TextIO

from streams.jsonl import write_lines
from streams.simulator.model import Item, Malformed, TruthRow, json_line


def iter_jsonl(items: Iterable[Item]) -> Iterator[str]:
    """The JSON Lines lines (without line break) of ``items``: the documented envelope
    ``{"type": ..., "record": {...}}`` for a record, the raw payload for a malformed item."""
    for item in items:
        if isinstance(item, Malformed):
            yield item.payload.decode("utf-8")
        else:
            yield json_line(*item)


def write_jsonl(
    items: Iterable[Item],
    target: str | Path | TextIO,
    *,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Write ``items`` as JSON Lines to a path or a text stream; return the lines written.

    ``streams.backtest.load_events`` reads the records back and reports each malformed
    line as a line error."""
    return write_lines(iter_jsonl(items), target, progress=progress)


TRUTH_HEADER = ("customer_id", "churned", "churned_at", "persona", "segment")


def write_truth(rows: Iterable[TruthRow], target: str | Path | TextIO) -> int:
    """Write the truth CSV read by ``streams.backtest.load_truth``; return the rows."""
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8", newline="") as out:
            return write_truth(rows, out)
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(TRUTH_HEADER)
    count = 0
    for row in rows:
        when = (
            row.churned_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if (row.churned_at is not None)
            else ""
        )
        writer.writerow(
            (row.customer_id, "true" if row.churned else "false", when, row.persona, row.segment)
        )
        count += 1
    return count
