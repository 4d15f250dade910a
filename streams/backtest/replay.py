"""The backtest's replay loop: a history through the workers' code, in process.

:func:`run_backtest` replays the records through :class:`streams.replay.LocalPipeline`
with the silence timer ticking on event time, and folds the outputs into what the report
needs as they are produced (:class:`_OutputFold`), so its memory grows with the
customers and the at-risk episodes, not with the evaluations.
"""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from streams.backtest.inputs import InputRecord, Truth
from streams.backtest.metrics import DEFAULT_HORIZON, CustomerFinal, alert_starts, final_states
from streams.domain.buckets import to_ms
from streams.domain.events import Rejection
from streams.domain.health import Output, score_value_at
from streams.purchases_csv import LineError
from streams.ranking import CutoffRanking
from streams.replay import LocalPipeline
from streams.settings import Settings

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
        # last HealthScoreChanged per customer (only what final_states reads of it: its
        # score and band; a whole record kept that long is work for the garbage collector)
        # and the kept records, with their positions
        self.last_score: dict[str, tuple[datetime, int, float, str]] = {}
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
                    self.last_score[customer] = (at, seq, record["score"], record["band"])
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
        scores = [(at, seq, ("HealthScoreChanged",
                             {"customer_id": customer, "score": score, "band": band}))
                  for customer, (at, seq, score, band) in self.last_score.items()]
        kept = sorted([*scores, *self.kept], key=_position)
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
    with collector_paused():
        return _replay(records, settings, truth=truth, until=until, ticks_until=ticks_until,
                       horizon=horizon, progress=progress, keep_outputs=keep_outputs)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a replay, and one collection after it.

    A replay allocates millions of short-lived objects and keeps every customer's state;
    the collector's passes over that growing heap took about a tenth of a replay's time.
    The replay's objects are freed by their reference counts: none of them needs the
    collector before the replay ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect()


def _replay(
    records: Iterable[InputRecord], settings: Settings, *, truth: Mapping[str, Truth] | None,
    until: datetime | None, ticks_until: datetime | None, horizon: timedelta,
    progress: Callable[[int], None] | None, keep_outputs: bool,
) -> BacktestResult:
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
        for outputs in pipeline.ticks(final):
            add(outputs)
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
    band = pipeline.scoring.compiled().band
    out = dict(finals)
    for customer, health in pipeline.health.items():
        final = out.get(customer)
        if final is None:
            continue
        score = score_value_at(pipeline.scoring, health, now_ms)
        if score is not None:
            out[customer] = replace(final, score=score, band=band(score))
    return out
