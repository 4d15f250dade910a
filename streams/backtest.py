"""Backtest: replay a history through the workers' code in process and measure the alerts.

The history is read from JSON Lines (the documented event envelope) or from a plain CSV of
purchases, sorted by event time and replayed through :class:`streams.replay.LocalPipeline`
with the silence timer ticking on event time. Against a truth file (which customers churned
and when) the alerts are scored: precision, recall, F1, lead time, false alerts, flapping.
Every figure is defined in docs/backtest.md. The metric functions are pure. The replay
folds its outputs into those figures as they are produced, so its memory grows with the
customers and the at-risk episodes, not with the evaluations.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.codec import RecordError, from_json_line
from streams.domain.buckets import to_ms
from streams.domain.events import Rejection
from streams.domain.health import Output, score_at
from streams.purchases_csv import LineError, header_problem, parse_time, read_purchases_csv
from streams.ranking import CutoffRanking
from streams.replay import LocalPipeline
from streams.settings import Settings

__all__ = [
    "BacktestResult",
    "Confusion",
    "CustomerFinal",
    "HistoryFormatError",
    "JsonlHistory",
    "NothingToReplayError",
    "KEPT_OUTPUTS",
    "LAZY_READ_ABOVE_BYTES",
    "LineError",
    "Truth",
    "backtest_main",
    "alert_starts",
    "classify",
    "false_alerts_per_1000_per_month",
    "final_states",
    "first_alert_in_window",
    "flapping_rate",
    "history_format",
    "lead_time_stats",
    "load_events",
    "load_truth",
    "min_scores",
    "print_bad_lines",
    "quantile",
    "read_events",
    "report_dict",
    "run_backtest",
    "summary_table",
    "threshold_curve",
    "write_report",
]

InputRecord = tuple[str, dict[str, Any]]

DEFAULT_HORIZON = timedelta(days=90)
#: Average month length used to turn the replayed period into months.
DAYS_PER_MONTH = 365.25 / 12

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


# --------------------------------------------------------------------------- inputs


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


# --------------------------------------------------------------------------- replay


#: Output types a backtest keeps whole: one record per at-risk episode, so few. Every other
#: output (above all one ``HealthScoreChanged`` per published evaluation) is folded into
#: the figures below as it is produced, unless ``run_backtest(keep_outputs=True)``.
KEPT_OUTPUTS = frozenset({"CustomerAtRisk", "CustomerRecovered"})
#: What counts as a customer coming back after ``until`` (the holdout figures).
ACTIVITY_TYPES = frozenset({"Purchase", "Engagement"})


@dataclass(slots=True)
class BacktestResult:
    """What a backtest produced, folded into what its report needs, and the inputs' facts.

    ``alerts`` are the ``CustomerAtRisk`` and ``CustomerRecovered`` records in event-time
    order; ``output_counts`` counts every output by type; ``finals`` is every customer's
    state as of the end (:func:`final_states`); ``lowest_scores`` the lowest published
    score per truth customer (:func:`min_scores` against ``truth`` and ``horizon``, empty
    without truth). ``outputs`` holds every output in event-time order only when the run
    was asked to keep them (``keep_outputs=True``); otherwise None.
    """

    customers: set[str]
    start: datetime | None
    until: datetime | None
    events: int
    rejections: list[Rejection]
    config_version: str
    enter_below: float
    elapsed_s: float
    alerts: list[Output]
    output_counts: dict[str, int]
    finals: dict[str, CustomerFinal]
    lowest_scores: dict[str, float]
    truth: dict[str, Truth] | None = None
    horizon: timedelta = DEFAULT_HORIZON
    load_errors: list[LineError] = field(default_factory=list)
    outputs: list[Output] | None = None
    #: with ``until`` before the end of the history: the customers with a purchase or an
    #: engagement after it, and the time of the last one (the holdout; None otherwise)
    came_back: set[str] | None = None
    after_last: datetime | None = None
    #: ranking at monthly cutoffs (:meth:`streams.ranking.CutoffRanking.report`)
    ranking: dict[str, Any] | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def of_type(self, type_name: str) -> list[dict[str, Any]]:
        """The output records of one type in event-time order. Without ``keep_outputs``
        only the kept types (:data:`KEPT_OUTPUTS`) are there: ValueError for another."""
        if self.outputs is not None:
            return [record for name, record in self.outputs if name == type_name]
        if type_name not in KEPT_OUTPUTS:
            raise ValueError(f"{type_name} outputs are not kept: run the backtest with "
                             "keep_outputs=True to have them")
        return [record for name, record in self.alerts if name == type_name]

    def alert_starts(self) -> dict[str, list[datetime]]:
        """Customer -> start times of its at-risk episodes (:func:`alert_starts`)."""
        return alert_starts(self.alerts)


#: A fold position: an output's event time and its place in the order the replay produced
#: it. Ordering by it is ordering by event time with ties in production order, which is
#: the order of the stable sort by ``occurred_at`` a whole list of outputs would get.
_Position = tuple[datetime, int]


class _OutputFold:
    """Outputs folded one by one into what the report, the per-customer file, the plots and
    the summary need; memory grows with customers and alert records, not evaluations."""

    def __init__(self, truth: Mapping[str, Truth] | None, horizon: timedelta, *,
                 keep_outputs: bool) -> None:
        self.seq = 0
        self.counts: Counter[str] = Counter()
        self.first_of_type: dict[str, _Position] = {}
        self.version: tuple[datetime, int, Any] | None = None
        # last HealthScoreChanged per customer, and the kept records, with their positions
        self.last_score: dict[str, tuple[datetime, int, Output]] = {}
        self.kept: list[tuple[datetime, int, Output]] = []
        self.lowest: dict[str, float] = {}
        # truth customer -> window of scores that count for min_scores (None: any time)
        self.windows: dict[str, tuple[datetime, datetime] | None] = {
            customer: (fact.churned_at - horizon, fact.churned_at)
            if fact.churned and fact.churned_at is not None else None
            for customer, fact in (truth or {}).items()}
        self.outputs: list[Output] | None = [] if keep_outputs else None

    def add(self, outputs: list[Output]) -> None:
        if self.outputs is not None:
            self.outputs.extend(outputs)
        for output in outputs:
            name, record = output
            self.seq += 1
            seq = self.seq
            at: datetime = record["occurred_at"]
            self.counts[name] += 1
            first = self.first_of_type.get(name)
            if first is None or at < first[0]:
                self.first_of_type[name] = (at, seq)
            if "config_version" in record and (self.version is None or at < self.version[0]):
                self.version = (at, seq, record["config_version"])
            if name == "HealthScoreChanged":
                customer = record["customer_id"]
                last = self.last_score.get(customer)
                if last is None or at >= last[0]:
                    self.last_score[customer] = (at, seq, output)
                if customer in self.windows:  # a truth customer
                    window = self.windows[customer]
                    if window is None or window[0] <= at < window[1]:
                        value = float(record["score"])
                        lowest = self.lowest.get(customer)
                        if lowest is None or value < lowest:
                            self.lowest[customer] = value
            elif name in KEPT_OUTPUTS:
                self.kept.append((at, seq, output))

    def alerts(self) -> list[Output]:
        return [output for _, _, output in sorted(self.kept, key=_position)]

    def finals(self, customers: Iterable[str]) -> dict[str, CustomerFinal]:
        """:func:`final_states` of the whole list: each customer's last score and its alert
        records are all it reads, and they keep their order here."""
        kept = sorted([*self.last_score.values(), *self.kept], key=_position)
        return final_states((output for _, _, output in kept), customers)

    def output_counts(self) -> dict[str, int]:
        """Counts by type, in the order the types first occur in event time."""
        order = sorted(self.counts, key=self.first_of_type.__getitem__)
        return {name: self.counts[name] for name in order}

    def sorted_outputs(self) -> list[Output] | None:
        if self.outputs is not None:
            self.outputs.sort(key=lambda output: output[1]["occurred_at"])
        return self.outputs


def _position(item: tuple[datetime, int, Output]) -> _Position:
    return item[0], item[1]


def run_backtest(
    records: Iterable[InputRecord], settings: Settings, *,
    truth: Mapping[str, Truth] | None = None, until: datetime | None = None,
    ticks_until: datetime | None = None, horizon: timedelta = DEFAULT_HORIZON,
    progress: Callable[[int], None] | None = None, keep_outputs: bool = False,
) -> BacktestResult:
    """Replay ``records`` (sorted by event time) through the workers' code in process.

    Records after ``until`` are not replayed. The silence checks run as in a worker: each
    customer's checks that fell due before one of its updates run, in order, just before
    that update, and at the end every check due by ``ticks_until`` runs (default:
    ``until``, else the last event time). ``progress`` is called with the records done.

    Outputs are folded as they are produced into the result's figures (the lowest scores
    against ``truth`` and ``horizon``); only the at-risk and recovered records are kept,
    in event-time order. ``keep_outputs`` also keeps every output, in event-time order, in
    ``result.outputs``: memory then grows with every evaluation.
    """
    pipeline = LocalPipeline(settings)
    fold = _OutputFold(truth, horizon, keep_outputs=keep_outputs)
    add = fold.add
    customers: set[str] = set()
    start: datetime | None = None
    last: datetime | None = None
    count = 0
    began = time.perf_counter()
    process = pipeline.process
    rejected = pipeline.rejections
    came_back: set[str] = set()
    after_last: datetime | None = None
    ranking = CutoffRanking(pipeline.scoring, horizon)
    plausible = pipeline.latest_plausible()
    for type_name, record in records:
        at: datetime = record["occurred_at"]
        ranking.see(type_name, record)
        if until is not None and at > until:
            if type_name in ACTIVITY_TYPES and isinstance(record.get("customer_id"), str):
                came_back.add(record["customer_id"])
                after_last = at if after_last is None else max(after_last, at)
            continue
        if at <= plausible:  # a record the time checks will refuse moves no cutoff
            ranking.before(at, pipeline.health)
        before = len(rejected)
        outputs = process(type_name, record)
        if outputs:
            add(outputs)
        if len(rejected) == before:  # accepted: a rejected time (years ahead) is no clock
            if last is None or at > last:
                last = at
            if start is None:
                start = at
            customer = record.get("customer_id")
            if isinstance(customer, str):
                customers.add(customer)
        count += 1
        if progress is not None and count % 1000 == 0:
            progress(count)
    end = until if until is not None else last
    final = ticks_until if ticks_until is not None else end
    if final is not None:
        add(pipeline.tick(final))
    alerts = fold.alerts()
    finals = fold.finals(customers)
    if final is not None:
        finals = _scored_at(finals, pipeline, final)
    elapsed = time.perf_counter() - began
    if progress is not None:
        progress(count)
    return BacktestResult(
        customers=customers, start=start, until=end, events=count,
        rejections=list(pipeline.rejections),
        config_version=fold.version[2] if fold.version is not None
        else pipeline.scoring.version,
        enter_below=pipeline.scoring.alerts.enter_below, elapsed_s=elapsed,
        alerts=alerts, output_counts=fold.output_counts(), finals=finals,
        lowest_scores=fold.lowest,
        truth=dict(truth) if truth is not None else None, horizon=horizon,
        outputs=fold.sorted_outputs(),
        came_back=came_back if after_last is not None else None, after_last=after_last,
        ranking=ranking.report())


def _scored_at(finals: dict[str, CustomerFinal], pipeline: LocalPipeline,
               at: datetime) -> dict[str, CustomerFinal]:
    """Every customer's score and band exactly as of ``at`` (a published score can lag
    the current one by up to the publishing step)."""
    now_ms = to_ms(at)
    out = dict(finals)
    for customer, health in pipeline.health.items():
        final = out.get(customer)
        if final is None:
            continue
        score = score_at(pipeline.scoring, health, now_ms)
        if score is not None:
            out[customer] = replace(final, score=score.score, band=score.band)
    return out


# --------------------------------------------------------------------------- metrics


def alert_starts(outputs: Iterable[Output]) -> dict[str, list[datetime]]:
    """Customer -> event times at which its at-risk episodes started, in order."""
    starts: dict[str, list[datetime]] = {}
    for name, record in outputs:
        if name == "CustomerAtRisk":
            starts.setdefault(record["customer_id"], []).append(record["occurred_at"])
    for times in starts.values():
        times.sort()
    return starts


def first_alert_in_window(starts: Sequence[datetime], churned_at: datetime,
                          horizon: timedelta) -> datetime | None:
    """The first episode start in ``[churned_at - horizon, churned_at)``, or None."""
    for moment in starts:
        if churned_at - horizon <= moment < churned_at:
            return moment
    return None


@dataclass(frozen=True, slots=True)
class Confusion:
    """Alerted and churned customers of the truth, and the figures derived from them."""

    warned: dict[str, datetime]  # churned customer -> first alert in the window
    alerted: frozenset[str]  # truth customers with any at-risk alert
    churned: frozenset[str]
    lead_days: tuple[float, ...]

    @property
    def precision(self) -> float | None:
        """The headline precision: alerted customers warned inside their window before
        they churned (:attr:`precision_before_churn`)."""
        return self.precision_before_churn

    @property
    def precision_before_churn(self) -> float | None:
        """Alerted customers warned inside their window, before the churn date."""
        return len(self.warned) / len(self.alerted) if self.alerted else None

    @property
    def precision_incl_late_alerts(self) -> float | None:
        """The lenient figure: alerted customers who churned at any time, an alert that
        came after the churn date included (it still points at a customer who left)."""
        if not self.alerted:
            return None
        return len(self.alerted & self.churned) / len(self.alerted)

    @property
    def recall(self) -> float | None:
        return len(self.warned) / len(self.churned) if self.churned else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)


def classify(starts: Mapping[str, Sequence[datetime]], truth: Mapping[str, Truth],
             horizon: timedelta = DEFAULT_HORIZON) -> Confusion:
    """Warned churners, alerted customers and lead times. Only customers in ``truth``
    count: an alert for a customer the truth does not cover is neither right nor wrong."""
    warned: dict[str, datetime] = {}
    lead: list[float] = []
    churned = frozenset(c for c, t in truth.items() if t.churned)
    for customer in sorted(churned):
        churned_at = truth[customer].churned_at
        if churned_at is None:
            continue
        hit = first_alert_in_window(starts.get(customer, ()), churned_at, horizon)
        if hit is not None:
            warned[customer] = hit
            lead.append((churned_at - hit).total_seconds() / 86400)
    alerted = frozenset(c for c, times in starts.items() if times and c in truth)
    return Confusion(warned, alerted, churned, tuple(lead))


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def lead_time_stats(lead_days: Sequence[float]) -> dict[str, float | None]:
    """Median, p10 and p90 of lead times in days (None when there are none)."""
    return {"median": quantile(lead_days, 0.5), "p10": quantile(lead_days, 0.1),
            "p90": quantile(lead_days, 0.9)}


def false_alerts_per_1000_per_month(starts: Mapping[str, Sequence[datetime]],
                                    truth: Mapping[str, Truth],
                                    period: timedelta) -> float | None:
    """At-risk alerts (episodes) for truth customers who did not churn, per 1,000 truth
    customers, per month (``DAYS_PER_MONTH`` days) of replayed time."""
    months = period.total_seconds() / 86400 / DAYS_PER_MONTH
    if not truth or months <= 0:
        return None
    false = sum(len(times) for c, times in starts.items()
                if c in truth and not truth[c].churned)
    return false / (len(truth) / 1000) / months


def flapping_rate(starts: Mapping[str, Sequence[datetime]]) -> float | None:
    """Episodes beyond the first, per customer with any alert."""
    alerted = [len(times) for times in starts.values() if times]
    if not alerted:
        return None
    return sum(n - 1 for n in alerted) / len(alerted)


@dataclass(frozen=True, slots=True)
class CustomerFinal:
    """A customer's state as of the end of the replay."""

    customer_id: str
    score: float | None
    band: str | None
    alert_state: str  # at_risk | recovered | none
    episodes: int
    first_alert_at: datetime | None
    reasons: tuple[str, ...]  # reason codes of the last at-risk alert


def final_states(outputs: Iterable[Output], customers: Iterable[str]) -> dict[str, CustomerFinal]:
    """Last published score and band, alert state and last reasons of every customer."""
    score: dict[str, tuple[float, str]] = {}
    state: dict[str, str] = {}
    episodes: Counter[str] = Counter()
    first: dict[str, datetime] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    for name, record in outputs:
        customer = record["customer_id"]
        if name == "HealthScoreChanged":
            score[customer] = (float(record["score"]), str(record["band"]))
        elif name == "CustomerAtRisk":
            state[customer] = "at_risk"
            episodes[customer] += 1
            first.setdefault(customer, record["occurred_at"])
            reasons[customer] = tuple(r["code"] for r in record["reasons"])
        elif name == "CustomerRecovered":
            state[customer] = "recovered"
    result: dict[str, CustomerFinal] = {}
    for customer in sorted(set(customers) | set(score)):
        value, band = score.get(customer, (None, None))
        result[customer] = CustomerFinal(customer, value, band, state.get(customer, "none"),
                                         episodes[customer], first.get(customer),
                                         reasons.get(customer, ()))
    return result


def min_scores(outputs: Iterable[Output], truth: Mapping[str, Truth],
               horizon: timedelta = DEFAULT_HORIZON) -> dict[str, float]:
    """Per truth customer, the lowest published score that could have warned: for a
    churner within ``[churned_at - horizon, churned_at)``, otherwise over the period."""
    lowest: dict[str, float] = {}
    for name, record in outputs:
        if name != "HealthScoreChanged":
            continue
        customer = record["customer_id"]
        fact = truth.get(customer)
        if fact is None:
            continue
        at: datetime = record["occurred_at"]
        if fact.churned and fact.churned_at is not None and not (
                fact.churned_at - horizon <= at < fact.churned_at):
            continue
        value = float(record["score"])
        lowest[customer] = min(value, lowest.get(customer, value))
    return lowest


def threshold_curve(lowest: Mapping[str, float], truth: Mapping[str, Truth],
                    thresholds: Sequence[float]) -> list[tuple[float, float | None, float | None]]:
    """(threshold, precision, recall) with an alert wherever the lowest score < threshold."""
    churned = [c for c, t in truth.items() if t.churned]
    curve: list[tuple[float, float | None, float | None]] = []
    for threshold in thresholds:
        alerted = [c for c, v in lowest.items() if v < threshold]
        hits = sum(1 for c in alerted if truth[c].churned)
        curve.append((threshold, hits / len(alerted) if alerted else None,
                      hits / len(churned) if churned else None))
    return curve


# --------------------------------------------------------------------------- outputs


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def report_dict(result: BacktestResult) -> dict[str, Any]:
    """Every figure of the backtest as JSON-ready values (see docs/backtest.md)."""
    starts = result.alert_starts()
    finals = result.finals
    at_risk = result.of_type("CustomerAtRisk")
    period = (result.until - result.start) if result.start and result.until else timedelta(0)
    report: dict[str, Any] = {
        "config_version": result.config_version,
        "period": {"start": _iso(result.start), "until": _iso(result.until),
                   "days": round(period.total_seconds() / 86400, 3)},
        "counts": {
            "events": result.events,
            "bad_lines": len(result.load_errors),
            "rejected": len(result.rejections),
            "rejected_by_reason": dict(Counter(r.reason for r in result.rejections)),
            "customers": len(finals),
            "outputs": dict(result.output_counts),
            "customers_alerted": sum(1 for t in starts.values() if t),
            "at_risk_alerts": len(at_risk),
        },
        "bands": dict(Counter(f.band or "none" for f in finals.values())),
        "alert_states": dict(Counter(f.alert_state for f in finals.values())),
        "reasons": dict(Counter(r["reasons"][0]["code"] for r in at_risk if r["reasons"])),
        "churn_reasons": dict(Counter(r["churn_reason"] for r in at_risk)),
        "flapping_rate": _round(flapping_rate(starts)),
        "throughput_events_per_s": round(result.events_per_s, 1)
        if math.isfinite(result.events_per_s) else None,
        "truth": None,
    }
    report["after_until"] = _holdout(result)
    report["ranking"] = result.ranking
    if result.truth is not None:
        truth = result.truth
        confusion = classify(starts, truth, result.horizon)
        lead = lead_time_stats(confusion.lead_days)
        report["truth"] = {
            "horizon_days": result.horizon.total_seconds() / 86400,
            "customers": len(truth),
            "churned": len(confusion.churned),
            "alerted": len(confusion.alerted),
            "warned": len(confusion.warned),
            "not_in_replay": sum(1 for c in truth if c not in result.customers),
            "precision": _round(confusion.precision),
            "precision_before_churn": _round(confusion.precision_before_churn),
            "precision_incl_late_alerts": _round(confusion.precision_incl_late_alerts),
            "recall": _round(confusion.recall),
            "f1": _round(confusion.f1),
            "lead_time_days": {k: _round(v, 2) for k, v in lead.items()},
            "false_alerts_per_1000_per_month": _round(
                false_alerts_per_1000_per_month(starts, truth, period), 2),
        }
    return report


def _holdout(result: BacktestResult) -> dict[str, Any] | None:
    """How many of the customers in each final band and alert state came back (bought or
    engaged) after ``until``: the check a history without a truth file allows."""
    if result.came_back is None or result.until is None or result.after_last is None:
        return None
    back = result.came_back

    def shares(key: Callable[[CustomerFinal], str]) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[int]] = {}
        for customer, final in sorted(result.finals.items()):
            counts = groups.setdefault(key(final), [0, 0])
            counts[0] += 1
            counts[1] += customer in back
        return {name: {"customers": n, "came_back": k, "share": _round(k / n)}
                for name, (n, k) in sorted(groups.items())}

    return {
        "days": round((result.after_last - result.until).total_seconds() / 86400, 3),
        "customers_came_back": len(back & result.finals.keys()),
        "by_band": shares(lambda f: f.band or "none"),
        "by_alert_state": shares(lambda f: f.alert_state),
    }


def png_backend() -> Any:
    import matplotlib  # noqa: PLC0415 - only the report needs it, and only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _plot_precision_recall(result: BacktestResult, path: Path) -> None:
    plt = png_backend()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if result.truth:
        curve = threshold_curve(result.lowest_scores, result.truth,
                                [float(t) for t in range(0, 101)])
        xs = [t for t, _, _ in curve]
        ax.plot(xs, [math.nan if p is None else p for _, p, _ in curve], label="precision")
        ax.plot(xs, [math.nan if r is None else r for _, _, r in curve], label="recall")
        ax.axvline(result.enter_below, color="grey", linestyle="--",
                   label=f"configured threshold ({result.enter_below:g})")
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no truth file: precision and recall unknown",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("at-risk threshold (alert when the score falls below)")
    ax.set_ylabel("fraction")
    ax.set_ylim(0, 1.05)
    ax.set_title("Precision and recall against the at-risk threshold")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_lead_times(result: BacktestResult, path: Path) -> None:
    plt = png_backend()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lead: tuple[float, ...] = ()
    if result.truth:
        lead = classify(result.alert_starts(), result.truth, result.horizon).lead_days
    if lead:
        ax.hist(lead, bins=min(30, max(5, len(lead) // 3)), color="tab:blue")
        median = quantile(lead, 0.5)
        if median is not None:
            ax.axvline(median, color="black", linestyle="--", label=f"median {median:.1f} d")
            ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no warned churners", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("lead time: days from the first at-risk alert to the churn date")
    ax.set_ylabel("churned customers")
    ax.set_title("Lead time of warnings")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


CUSTOMER_COLUMNS = ("customer_id", "score", "band", "alert_state", "episodes",
                    "first_alert_at", "reasons", "churned", "churned_at")


def write_report(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write report.json, customers.csv, precision_recall.png and lead_times.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in (
        "report.json", "customers.csv", "precision_recall.png", "lead_times.png")}
    paths["report.json"].write_text(
        json.dumps(report_dict(result), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    truth = result.truth or {}
    with paths["customers.csv"].open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_COLUMNS)
        for final in result.finals.values():
            fact = truth.get(final.customer_id)
            writer.writerow([
                final.customer_id, "" if final.score is None else f"{final.score:.2f}",
                final.band or "", final.alert_state, final.episodes,
                _iso(final.first_alert_at) or "", ";".join(final.reasons),
                "" if fact is None else str(fact.churned).lower(),
                "" if fact is None else _iso(fact.churned_at) or ""])
    _plot_precision_recall(result, paths["precision_recall.png"])
    _plot_lead_times(result, paths["lead_times.png"])
    return paths


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{suffix}" if abs(value) < 1 else f"{value:,.1f}{suffix}"
    return f"{value}{suffix}"


def summary_table(result: BacktestResult) -> Table:
    """The report's headline figures as a rich table."""
    report = report_dict(result)
    table = Table(title=f"Backtest ({report['config_version']})", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    period = report["period"]
    table.add_row("period", f"{period['start']} .. {period['until']} ({period['days']} d)")
    counts = report["counts"]
    table.add_row("events replayed", f"{counts['events']:,}")
    table.add_row("bad lines / rejected", f"{counts['bad_lines']:,} / {counts['rejected']:,}")
    table.add_row("customers", f"{counts['customers']:,}")
    table.add_row("customers alerted", f"{counts['customers_alerted']:,}")
    truth = report["truth"]
    if truth is not None:
        table.add_row("precision (warned before churning)", _fmt(truth["precision"]))
        table.add_row("precision incl. late alerts", _fmt(truth["precision_incl_late_alerts"]))
        table.add_row("recall", _fmt(truth["recall"]))
        table.add_row("F1", _fmt(truth["f1"]))
        lead = truth["lead_time_days"]
        table.add_row("lead time p10 / median / p90",
                      f"{_fmt(lead['p10'])} / {_fmt(lead['median'])} / {_fmt(lead['p90'])} d")
        table.add_row("false alerts / 1,000 customers / month",
                      _fmt(truth["false_alerts_per_1000_per_month"]))
    holdout = report["after_until"]
    if holdout is not None:
        table.add_row(f"came back in the {holdout['days']:g} d after until",
                      ", ".join(f"{band} {v['share']:.0%} of {v['customers']:,}"
                                for band, v in holdout["by_band"].items()))
    ranking = report["ranking"]
    if ranking is not None:
        overall = ranking["overall"]
        table.add_row(f"ranking AUC, left within {ranking['horizon_days']:g} d "
                      f"({len(ranking['cutoffs'])} cutoffs)",
                      f"{_fmt(overall['auc'])} (days since last activity "
                      f"{_fmt(overall['baseline_days_since_auc'])})")
        table.add_row("precision in the riskiest 10%", _fmt(overall["precision_top10"]))
    table.add_row("flapping rate", _fmt(report["flapping_rate"]))
    table.add_row("bands", ", ".join(f"{k} {v:,}" for k, v in sorted(report["bands"].items())))
    top = sorted(report["reasons"].items(), key=lambda kv: -kv[1])[:3]
    table.add_row("top reasons", ", ".join(f"{k} {v:,}" for k, v in top) or "-")
    table.add_row("throughput", f"{_fmt(report['throughput_events_per_s'])} events/s")
    return table


def print_bad_lines(path: Path, errors: Sequence[LineError], console: Console,
                    shown: int = 10) -> None:
    """The first ``shown`` lines of ``path`` that could not be read, and how many more."""
    for error in errors[:shown]:
        console.print(f"[yellow]{path}:{error.line}: {error.message}[/yellow]", highlight=False)
    if len(errors) > shown:
        console.print(f"[yellow]... and {len(errors) - shown:,} more bad lines[/yellow]")


def _print_rejections(rejections: Sequence[Rejection], console: Console) -> None:
    """How many records the workers' checks refused, per reason, with the first example."""
    first: dict[str, Rejection] = {}
    counts: Counter[str] = Counter()
    for rejection in rejections:
        first.setdefault(rejection.reason, rejection)
        counts[rejection.reason] += 1
    for reason, count in counts.most_common():
        example = first[reason]
        console.print(f"[yellow]rejected {count:,} record(s) as {reason}, e.g. "
                      f"{example.event_id}: {example.error}[/yellow]")


def _print_intended_noise(errors: Sequence[LineError], rejections: Sequence[Rejection],
                          console: Console) -> None:
    """One line for the bad lines and rejected records of a simulated history: the
    simulator put them there on purpose, to show that they are refused and counted."""
    reasons = Counter(rejection.reason for rejection in rejections)
    by_reason = ", ".join(f"{reason} {n:,}" for reason, n in reasons.most_common())
    console.print(f"[dim]the simulator's intended noise, refused as a worker would: "
                  f"{len(errors):,} malformed line(s) skipped, {len(rejections):,} invalid "
                  f"record(s) rejected{f' ({by_reason})' if by_reason else ''}[/dim]",
                  highlight=False)


def backtest_main(events: Path, truth: Path | None, until: datetime | None, out_dir: Path,
                  settings: Settings, console: Console, *,
                  currency: str = "EUR") -> BacktestResult:
    """Read, replay, score and report: what ``churnwatch backtest`` runs.

    Nothing is written to ``out_dir`` when the run fails: :class:`HistoryFormatError` for
    a file of neither format, :class:`NothingToReplayError` when no record was usable."""
    records, errors = read_events(events, currency=currency,
                                  lazy=events.stat().st_size > LAZY_READ_ABOVE_BYTES)
    simulated = truth is not None and written_by_the_simulator(truth)
    if not records or not simulated:
        print_bad_lines(events, errors, console)
    if not records:
        raise NothingToReplayError(f"{events}: no usable records (see the lines above)")
    facts = load_truth(truth) if truth is not None else None
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("replay", total=len(records))
        result = run_backtest(records, settings, truth=facts, until=until,
                              progress=lambda done: bar.update(task, completed=done))
    result.load_errors = errors
    if simulated and result.start is not None:
        _print_intended_noise(errors, result.rejections, console)
    else:
        _print_rejections(result.rejections, console)
    if result.events == 0:
        raise NothingToReplayError(f"{events}: no record lies at or before --until "
                                   f"{until.isoformat() if until else ''}")
    if result.start is None:
        raise NothingToReplayError(f"{events}: no record passed the workers' checks (see "
                                   "the rejections above)")
    write_report(result, out_dir)
    console.print(summary_table(result))
    console.print(f"report written to {out_dir}")
    return result
