"""Ranking at cutoffs: how well the score, as of a moment, orders the customers who then
leave above those who stay (the backtest's second judgement, next to its alerts).

At every cutoff (every 30 days from the first record) each customer with a score is scored
as of that moment, with the signals it had then; the customers with no purchase or
engagement within the horizon after the cutoff "left". A cutoff counts once the records
cover its whole horizon (records after the backtest's ``until`` are read for this).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from streams.calibration.metrics import auc, precision_at
from streams.calibration.snapshots import ActivityWindows, days_since_activity
from streams.domain.buckets import DAY_MS, to_ms
from streams.domain.health import CustomerHealth, score_value_at, segment_of
from streams.domain.scoring import ScoringConfig

CUTOFF_EVERY = timedelta(days=30)
#: A jump in time across more cutoffs than this (a gap in the history) takes only the
#: last of them.
MAX_CUTOFFS_PER_JUMP = 24


@dataclass(slots=True)
class _Cutoff:
    at: datetime
    #: customer -> (score, segment, days since its last purchase or engagement)
    scores: dict[str, tuple[float, str, float]]


class CutoffRanking:
    """Scores taken at cutoffs during a replay, and who was active after each."""

    def __init__(self, scoring: ScoringConfig, horizon: timedelta,
                 every: timedelta = CUTOFF_EVERY) -> None:
        self.scoring = scoring
        self.horizon = horizon
        self.every = every
        self.cutoffs: list[_Cutoff] = []
        self.windows = ActivityWindows([], horizon)
        self.next: datetime | None = None

    def before(self, at: datetime, health: Mapping[str, CustomerHealth]) -> None:
        """Call before replaying a record at ``at``: takes the cutoffs it passes."""
        if self.next is not None and at <= self.next:
            return  # no cutoff passed (most records)
        try:
            if self.next is None:
                self.next = at + self.every
                return
            if at > self.next + MAX_CUTOFFS_PER_JUMP * self.every:
                self.next += (at - self.next) // self.every * self.every
            while at > self.next:
                self.cutoffs.append(_Cutoff(self.next, self._scores(self.next, health)))
                self.windows.add(self.next)
                self.next += self.every
        except OverflowError:  # a time at the end of the calendar: no cutoff after it
            self.next = datetime.max.replace(tzinfo=at.tzinfo)

    def see(self, type_name: str, record: Mapping[str, Any]) -> None:
        """Call for every record of the history, replayed or not (the labels)."""
        self.windows.see(type_name, record)

    def _scores(self, at: datetime,
                health: Mapping[str, CustomerHealth]) -> dict[str, tuple[float, str, float]]:
        now_ms = to_ms(at)
        out = {}
        for customer, h in health.items():
            score = score_value_at(self.scoring, h, now_ms)
            if score is not None:
                out[customer] = (score, segment_of(h.profile),
                                 days_since_activity(h.signals, now_ms / DAY_MS))
        return out

    def report(self) -> dict[str, Any] | None:
        """AUC and precision in the riskiest tenth for "left within the horizon", per
        complete cutoff, pooled over them, and per segment; with the days since the last
        activity as the baseline. None without a complete cutoff."""
        done = [(c, self.windows.active[i]) for i, c in enumerate(self.cutoffs)
                if self.windows.complete(i) and c.scores]
        if not done:
            return None
        rows: list[tuple[float, str, float, bool]] = []
        per_cutoff = []
        for c, active in done:
            mine = [(score, segment, days, customer not in active)
                    for customer, (score, segment, days) in c.scores.items()]
            rows.extend(mine)
            per_cutoff.append({"at": c.at.strftime("%Y-%m-%d"), **_figures(mine)})
        segments = sorted({segment for _, segment, _, _ in rows})
        return {
            "horizon_days": self.horizon.total_seconds() / 86400,
            "overall": _figures(rows),
            "by_segment": {s: _figures([r for r in rows if r[1] == s]) for s in segments},
            "cutoffs": per_cutoff,
        }


def _figures(rows: list[tuple[float, str, float, bool]]) -> dict[str, Any]:
    left = [r[3] for r in rows]
    risk = [-r[0] for r in rows]
    days = [r[2] for r in rows]
    return {"customers": len(rows),
            "left_share": _round(sum(left) / len(rows)) if rows else None,
            "auc": _round(auc(risk, left)),
            "precision_top10": _round(precision_at(risk, left)),
            "baseline_days_since_auc": _round(auc(days, left))}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
