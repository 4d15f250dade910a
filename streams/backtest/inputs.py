"""Reading a history and a truth file for the backtest.

A history is JSON Lines (the documented event envelope) or a plain CSV of purchases, told
apart by its content; it is read whole, sorted by event time, or indexed and parsed again
as it is replayed (:class:`JsonlHistory`) when it is large. The truth file says which
customers churned and when.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from streams.codec import RecordError, from_json_line
from streams.purchases_csv import LineError, header_problem, parse_time, read_purchases_csv

InputRecord = tuple[str, dict[str, Any]]

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


#: ``churnwatch backtest`` reads a JSON Lines history larger than this lazily
#: (:class:`JsonlHistory`): a record held in memory takes about 700 bytes, one indexed
#: about 120, and parsing each line again costs the replay about a quarter of its speed.
LAZY_READ_ABOVE_BYTES = 1 << 30
_BOM = b"\xef\xbb\xbf"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _jsonl_lines(path: Path) -> Generator[tuple[int, int, str], None, None]:
    """(1-based line number, byte offset, text) of each non-blank line; bytes that are not
    UTF-8 are replaced and a leading byte-order mark dropped."""
    with path.open("rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            text = _decode_line(raw, start)
            if text.strip():
                yield number, start, text


def _decode_line(raw: bytes, offset: int) -> str:
    if offset == 0 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    return raw.decode("utf-8", "replace")


#: Lines looked at for a JSON object when the first line of a history is neither.
_SNIFF_LINES = 100


class HistoryFormatError(ValueError):
    """A file is neither a JSON Lines history nor a CSV of purchases."""


class NothingToReplayError(ValueError):
    """No record of a history could be used; the message says why."""


def history_format(path: Path) -> str:
    """``"jsonl"`` or ``"csv"``, told by the content whatever the file is called.

    A first non-blank line starting with ``{`` is JSON Lines; one that is a usable CSV
    header is a CSV; otherwise a JSON object among the next lines makes it JSON Lines with
    a bad first line. Anything else raises :class:`HistoryFormatError`, which says why.
    """
    with contextlib.closing(_jsonl_lines(path)) as lines:
        first = next(lines, None)
        if first is None:
            raise HistoryFormatError(f"{path} is empty")
        text = first[2]
        if text.lstrip().startswith("{"):
            return "jsonl"
        problem = header_problem(text.rstrip("\r\n"))
        if problem is None:
            return "csv"
        if any(line.lstrip().startswith("{")
               for _, _, line in itertools.islice(lines, _SNIFF_LINES)):
            return "jsonl"
    raise HistoryFormatError(
        f"{path} is neither JSON Lines nor a CSV of purchases: its first line is not a JSON "
        f"object (JSON Lines, docs/events.md); {problem}")


class JsonlHistory(Sequence[InputRecord]):
    """A JSON Lines history in event-time order that holds only each good line's time and
    place in the file and parses the line again when it is read, so a replay does not hold
    the whole history in memory. The file must not change while it is in use."""

    def __init__(self, path: Path, index: list[tuple[int, int]]) -> None:
        self.path = path
        self._index = index  # (occurred_at in microseconds, byte offset), sorted

    @classmethod
    def read(cls, path: Path, errors: list[LineError]) -> JsonlHistory:
        """Index ``path``: every line is parsed once; the bad ones go to ``errors``."""
        index: list[tuple[int, int]] = []
        for number, offset, text in _jsonl_lines(path):
            try:
                _, record = from_json_line(text)
            except RecordError as exc:
                errors.append(LineError(number, str(exc)))
                continue
            index.append(((record["occurred_at"] - _EPOCH) // timedelta(microseconds=1),
                          offset))
        index.sort()  # ties keep the file's order: the offsets grow with it
        return cls(path, index)

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, item: int) -> InputRecord: ...

    @overload
    def __getitem__(self, item: slice) -> list[InputRecord]: ...

    def __getitem__(self, item: int | slice) -> InputRecord | list[InputRecord]:
        if isinstance(item, slice):
            return list(self._records(self._index[item]))
        return next(self._records([self._index[item]]))

    def __iter__(self) -> Iterator[InputRecord]:
        return self._records(self._index)

    def _records(self, entries: Iterable[tuple[int, int]]) -> Iterator[InputRecord]:
        with self.path.open("rb") as handle:
            for _, offset in entries:
                handle.seek(offset)
                yield from_json_line(_decode_line(handle.readline(), offset))


def load_events(path: Path, *, currency: str = "EUR",
                errors: list[LineError] | None = None) -> Iterator[InputRecord]:
    """The input records of a JSON Lines file (documented envelope) or a purchases CSV, in
    file order (a CSV's orders at their first row). The format is told by the content
    (:func:`history_format`, which raises :class:`HistoryFormatError` for neither). Lines
    that cannot be used are appended to ``errors`` (never raised)."""
    sink = errors if errors is not None else []
    if history_format(path) == "jsonl":
        for number, _, text in _jsonl_lines(path):
            try:
                yield from_json_line(text)
            except RecordError as exc:
                sink.append(LineError(number, str(exc)))
        return
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        yield from read_purchases_csv(handle, currency, sink)


def read_events(path: Path, *, currency: str = "EUR", lazy: bool = False,
                ) -> tuple[Sequence[InputRecord], list[LineError]]:
    """All records of ``path`` sorted by ``occurred_at`` (stable), and the bad lines. With
    ``lazy``, a JSON Lines history is a :class:`JsonlHistory` (records parsed as they are
    read, a small index in memory); otherwise, and for a CSV, a list.
    :class:`HistoryFormatError` if the file is neither format."""
    errors: list[LineError] = []
    if lazy and history_format(path) == "jsonl":
        return JsonlHistory.read(path, errors), errors
    records = list(load_events(path, currency=currency, errors=errors))
    records.sort(key=lambda r: r[1]["occurred_at"])
    return records, errors


@dataclass(frozen=True, slots=True)
class Truth:
    """Whether a customer churned, and when."""

    churned: bool
    churned_at: datetime | None = None


def load_truth(path: Path) -> dict[str, Truth]:
    """Customer id -> truth from a CSV with ``customer_id, churned, churned_at``.
    ValueError naming the line for a bad row (a truth file must be exact)."""
    truth: dict[str, Truth] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            customer = (row.get("customer_id") or "").strip()
            flag = (row.get("churned") or "").strip().lower()
            when = (row.get("churned_at") or "").strip()
            if not customer or flag not in _TRUE | _FALSE:
                raise ValueError(f"{path}:{reader.line_num}: expected customer_id and "
                                 f"churned true/false, got {row!r}")
            churned = flag in _TRUE
            if churned and not when:
                raise ValueError(f"{path}:{reader.line_num}: churned without churned_at")
            truth[customer] = Truth(churned, parse_time(when) if churned else None)
    return truth


def written_by_the_simulator(path: Path) -> bool:
    """Whether a truth file is the one ``churnwatch simulate`` wrote (its header): its
    history then carries the simulator's intended noise (docs/simulator.md)."""
    from streams.simulator import TRUTH_HEADER

    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    return tuple(name.strip() for name in header) == TRUTH_HEADER
