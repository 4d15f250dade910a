"""The backtest's figures: precision, recall, F1, lead time, false alerts, flapping.

Pure functions of the alert records and the truth, each defined in docs/backtest.md, and
the per-customer state at the end of a replay that the report lists.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from streams.backtest.inputs import Truth
from streams.domain.health import Output

DEFAULT_HORIZON = timedelta(days=90)
#: Average month length used to turn the replayed period into months.
DAYS_PER_MONTH = 365.25 / 12


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
