"""Fit an additive points model (a scorecard) to labelled snapshots.

Each candidate measure is a piecewise-linear curve over knots at quantiles of its values;
its shape is fitted by a logistic regression on ramp features (one per knot interval), with
the ramps' signs bounded where the domain says which way a measure goes (more days since
the last purchase never makes a return more likely), so every curve the config gets is
monotone where it should be. A measure that is missing has its own indicator while fitting
and redistributes its weight when scoring, as every measure does.

The fitted log-odds are turned into the scoring config's terms: each measure's curve
becomes points 0..100 and its weight its range of log-odds, so the weighted points are a
linear function of the log-odds; a logistic link (``[link]``) refitted on the scores the
scorer itself gives maps them to ``100 x P(active within the horizon)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from streams.calibration.snapshots import Snapshot
from streams.domain.btyd import BgNbd
from streams.domain.scoring import (
    Btyd,
    Link,
    Measure,
    ScoringConfig,
    measure_value,
)

#: Quantiles of a measure's values that become its knots (fewer when values repeat).
KNOT_QUANTILES = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)
#: For a measure that grows with time, the last knot is this quantile and the curve goes
#: on linearly past it (its last ramp is open): the tail's slope is fitted on the values
#: beyond it, and later cutoffs see longer silences than the fit did.
TIME_KNOT_QUANTILES = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.9)
#: ... up to this many times the largest value seen (then flat, as every curve ends). More
#: would stretch the curve's range of log-odds, which is its weight, over values no
#: customer had: the measure would weigh much and move little where customers are.
EXTEND_BY = 1.0
TIME_KINDS = frozenset({"age", "elapsed"})
#: A measure present in fewer snapshots than this share is not fitted.
MIN_PRESENT_SHARE = 0.01
#: A measure missing in more than this share of the snapshots where its group has any
#: measure is not fitted: the scorer would redistribute its weight there, which the fit
#: cannot see (the measures of a family are mostly present together).
MAX_MISSING_IN_GROUP = 0.1
#: L2 penalty on the curve parameters, per snapshot.
L2 = 1e-4


@dataclass(frozen=True, slots=True)
class Candidate:
    """A measure the model may use: its scoring config entry (without a curve), its group
    and the direction the domain fixes (+1: more is healthier, -1: less, 0: free)."""

    name: str
    group: str
    monotone: int
    spec: dict[str, Any]


def _c(name: str, group: str, monotone: int, signal: str, reason: str, text: str,
       churn_reason: str, **extra: Any) -> Candidate:
    return Candidate(name, group, monotone, {"signal": signal, "reason": reason, "text": text,
                                             "churn_reason": churn_reason, **extra})


#: Every measure calibration may use (docs/scoring.md, "Calibrated configs").
CANDIDATES: tuple[Candidate, ...] = (
    _c("purchase_days_since", "purchase", -1, "purchase.last_at_d", "purchase_lapse",
       "Days since the last purchase", "roi_not_seen", kind="age"),
    _c("purchase_recency", "purchase", -1, "purchase.last_at_d", "purchase_overdue",
       "No purchase for longer than the customer's usual rhythm", "roi_not_seen",
       kind="elapsed", per="purchase.gap_mean_d", spread="purchase.gap_std_d",
       per_default="expected_purchase_gap_d", per_min_d=14.0),
    _c("purchase_expected", "purchase", 1, "purchase.orders_total", "few_purchases_expected",
       "Few purchases expected in the coming months (BG/NBD)", "roi_not_seen", kind="btyd"),
    _c("purchase_orders", "purchase", 1, "purchase.orders_total", "few_orders",
       "Few orders so far", "roi_not_seen"),
    _c("purchase_days_90", "purchase", 1, "purchase.days_90", "few_recent_purchase_days",
       "Few purchase days in the 90 days up to the last purchase", "roi_not_seen"),
    _c("purchase_orders_28d", "purchase", 1, "purchase.orders_28d", "few_recent_orders",
       "Few orders in the 4 weeks up to the last purchase", "roi_not_seen"),
    _c("purchase_span", "purchase", 0, "purchase.span_d", "short_tenure",
       "Short time between the first and the last purchase", "failed_onboarding"),
    _c("purchase_order_value", "purchase", 0, "purchase.aov", "low_order_value",
       "Average order value", "roi_not_seen"),
    _c("purchase_frequency", "purchase", 1, "purchase.freq_trend", "purchase_frequency_drop",
       "Buying less often than before", "roi_not_seen"),
    _c("engagement_days_since", "engagement", -1, "engagement.last_at_d", "engagement_lapse",
       "Days since the last product, web or email activity", "low_usage", kind="age"),
    _c("engagement_recency", "engagement", -1, "engagement.last_at_d", "engagement_overdue",
       "No activity for longer than usual", "low_usage", kind="elapsed",
       per="engagement.gap_mean_d", per_default="expected_engagement_gap_d"),
    _c("engagement_active_days", "engagement", 1, "engagement.active_days", "few_active_days",
       "Few active days in the recent weeks", "low_usage"),
    _c("engagement_weekly", "engagement", 1, "engagement.weeks_active_4", "not_weekly_engaged",
       "Not engaged every week", "low_usage"),
    _c("engagement_trend", "engagement", 1, "engagement.trend", "engagement_drop",
       "Engagement below the customer's own baseline", "low_usage"),
    _c("support_open", "feedback", -1, "support.open_tickets", "open_tickets",
       "Support tickets are open and unresolved", "missing_features"),
    _c("support_tickets", "feedback", -1, "support.tickets_28d", "many_tickets",
       "Many support tickets in 4 weeks", "missing_features"),
    _c("support_sentiment", "feedback", 1, "support.sentiment_28d", "negative_sentiment",
       "Recent support contacts were negative", "missing_features"),
    _c("support_csat", "feedback", 1, "support.csat", "low_csat",
       "Low satisfaction (CSAT) on the latest survey", "missing_features"),
    _c("nps", "feedback", 1, "support.nps", "nps_detractor",
       "NPS answer moved towards detractor", "roi_not_seen"),
    _c("products_held", "relationship", 1, "profile.products", "single_product",
       "Holds only one product", "wrong_use_case"),
)


def measure_of(candidate: Candidate, curve: list[tuple[float, float]] | None = None) -> Measure:
    return Measure.model_validate({**candidate.spec,
                                   "curve": curve or [(0.0, 0.0), (1.0, 100.0)]})


def measure_values(config: ScoringConfig, candidate: Candidate,
                   snapshots: Sequence[Snapshot]) -> list[float | None]:
    measure = measure_of(candidate)
    return [measure_value(measure, s.signals, s.cutoff_d, config.segment(s.segment),
                          s.tenure_d, config.btyd) for s in snapshots]


# ----------------------------------------------------------------------- BG/NBD


def btyd_inputs(snapshots: Sequence[Snapshot], btyd: Btyd) -> np.ndarray:
    """(x, t_x, T) of every snapshot with a purchase (:meth:`Btyd.summary`)."""
    rows = [row for s in snapshots if (row := btyd.summary(s.signals, s.cutoff_d)) is not None]
    return np.array(rows, dtype=float).reshape(-1, 3)


def fit_bgnbd(data: np.ndarray) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for customers' (x, t_x, T)."""
    from scipy.special import gammaln  # noqa: PLC0415

    rows, counts = np.unique(np.round(data, 3), axis=0, return_counts=True)
    x, t_x, big_t = rows[:, 0], rows[:, 1], rows[:, 2]
    repeat = x > 0

    def nll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + big_t)
        a4 = np.where(repeat, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12))
                      - (r + x) * np.log(alpha + t_x), -np.inf)
        return float(-np.sum(counts * (a1 + a2 + np.logaddexp(a3, a4))))

    best = minimize(nll, np.log([0.5, 10.0, 1.5, 3.0]), method="Nelder-Mead",
                    options={"maxiter": 4000, "xatol": 1e-5, "fatol": 1e-6})
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BgNbd(r, alpha, a, b)


# ----------------------------------------------------------------------- scorecard


@dataclass(slots=True)
class FittedMeasure:
    candidate: Candidate
    knots: list[float]
    #: log-odds at each knot, relative to the first
    values: list[float] = field(default_factory=list)

    @property
    def spread(self) -> float:
        return max(self.values) - min(self.values) if self.values else 0.0


@dataclass(slots=True)
class Scorecard:
    intercept: float
    measures: list[FittedMeasure]


def _knots(values: np.ndarray, quantiles: Sequence[float]) -> list[float]:
    raw = np.quantile(values, quantiles)
    knots: list[float] = []
    for v in raw:
        v = float(f"{float(v):.4g}")
        if not knots or v > knots[-1]:
            knots.append(v)
    return knots


def _ramps(values: Sequence[float | None], knots: list[float], *,
           open_end: bool = False) -> np.ndarray:
    x = np.array([math.nan if v is None else v for v in values], dtype=float)
    lo, hi = np.array(knots[:-1]), np.array(knots[1:])
    top = np.ones(len(lo))
    if open_end:
        top[-1] = np.inf
    with np.errstate(invalid="ignore"):
        out = np.clip((x[:, None] - lo) / (hi - lo), 0.0, top)
    return np.asarray(np.nan_to_num(out, nan=0.0), dtype=float)


def fit_scorecard(config: ScoringConfig, snapshots: Sequence[Snapshot],
                  candidates: Sequence[Candidate] = CANDIDATES) -> Scorecard:
    """Fit the curves of every usable candidate to ``snapshots`` (label: active after)."""
    y = np.array([s.active_after for s in snapshots], dtype=float)
    n = len(snapshots)
    columns: list[np.ndarray] = []
    bounds: list[tuple[float | None, float | None]] = []
    fitted: list[tuple[FittedMeasure, int, int]] = []  # measure, first column, count
    all_values = {c.name: measure_values(config, c, snapshots) for c in candidates}
    in_group: dict[str, list[bool]] = {}
    for c in candidates:
        flags = in_group.setdefault(c.group, [False] * n)
        for i, v in enumerate(all_values[c.name]):
            if v is not None:
                flags[i] = True
    for candidate in candidates:
        values = all_values[candidate.name]
        present = np.array([v for v in values if v is not None], dtype=float)
        if len(present) < max(20, MIN_PRESENT_SHARE * n):
            continue
        group_rows = sum(in_group[candidate.group])
        if len(present) < (1 - MAX_MISSING_IN_GROUP) * group_rows:
            continue
        timed = candidate.spec.get("kind") in TIME_KINDS and candidate.monotone != 0
        knots = _knots(present, TIME_KNOT_QUANTILES if timed else KNOT_QUANTILES)
        if len(knots) < 2:
            continue
        start = sum(c.shape[1] for c in columns)
        ramps = _ramps(values, knots, open_end=timed)
        missing = np.array([[1.0 if v is None else 0.0] for v in values])
        columns.extend([ramps, missing])
        sign = candidate.monotone
        bound = (0.0, None) if sign > 0 else (None, 0.0) if sign < 0 else (None, None)
        bounds.extend([bound] * ramps.shape[1] + [(None, None)])
        fitted.append((FittedMeasure(candidate, knots), start, ramps.shape[1]))
    design = np.hstack([np.ones((n, 1)), *columns]) if columns else np.ones((n, 1))
    theta = _logistic(design, y, [(None, None), *bounds])
    for measure, start, count in fitted:
        steps = theta[1 + start:1 + start + count]
        measure.values = [0.0, *np.cumsum(steps).tolist()]
        if (measure.candidate.monotone and measure.candidate.spec.get("kind") in TIME_KINDS
                and len(measure.knots) >= 2 and measure.knots[-1] > 0):
            k0, k1 = measure.knots[-2], measure.knots[-1]
            largest = max(v for v in all_values[measure.candidate.name] if v is not None)
            far = float(f"{max(k1, largest) * EXTEND_BY:.4g}")
            slope = (measure.values[-1] - measure.values[-2]) / (k1 - k0)
            measure.knots.append(far)
            measure.values.append(measure.values[-1] + slope * (far - k1))
    return Scorecard(float(theta[0]), [m for m, _, _ in fitted if m.spread > 1e-6])


def _logistic(x: np.ndarray, y: np.ndarray,
              bounds: list[tuple[float | None, float | None]]) -> np.ndarray:
    """L2-penalised logistic regression with bounded coefficients (mean log loss)."""
    n = len(y)
    penalty = np.full(x.shape[1], L2)
    penalty[0] = 0.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        value = float(np.mean(np.logaddexp(0.0, z) - y * z)
                      + 0.5 * np.sum(penalty * theta * theta))
        p = 1.0 / (1.0 + np.exp(-z))
        grad = x.T @ (p - y) / n + penalty * theta
        return value, grad

    base = min(max(float(y.mean()), 1e-6), 1 - 1e-6)
    start = np.zeros(x.shape[1])
    start[0] = math.log(base / (1 - base))
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 2000})
    return np.asarray(result.x, dtype=float)


def fit_link(points: Sequence[float], active: Sequence[bool]) -> tuple[float, float]:
    """Intercept and slope of P(active) = sigmoid(intercept + slope * points / 100)."""
    x = np.column_stack([np.ones(len(points)), np.asarray(points, dtype=float) / 100.0])
    theta = _logistic(x, np.asarray(active, dtype=float), [(None, None), (1e-6, None)])
    return float(theta[0]), float(theta[1])


def choose_threshold(scores: Sequence[float], left: Sequence[bool],
                     precision: float) -> float:
    """The highest score x such that, of the customers scoring below x, at least
    ``precision`` left (the most leavers caught at that precision); if no x reaches it, the
    score of the riskiest tenth."""
    order = sorted(zip(scores, left, strict=True))
    best = None
    hits = 0
    for i, (score, gone) in enumerate(order):
        hits += gone
        next_score = order[i + 1][0] if i + 1 < len(order) else math.inf
        if next_score > score and i + 1 >= 10 and hits / (i + 1) >= precision:
            best = score
    if best is None:
        return order[max(0, len(order) // 10 - 1)][0] if order else 0.0
    return best


# ----------------------------------------------------------------------- config


def scorecard_config(base: ScoringConfig, card: Scorecard, btyd: Btyd, *,
                     version: str, meaning: str) -> dict[str, Any]:
    """A scoring config (as a dict, ready for TOML) with the scorecard's measures, one
    group per family, one profile, and a link to refit (intercept and slope set from the
    log-odds; :func:`refit_link` replaces them)."""
    data = base.model_dump(mode="json", exclude_none=True)
    data["version"] = version
    measures: dict[str, Any] = {}
    groups: dict[str, dict[str, float]] = {}
    intercept = card.intercept
    total = sum(m.spread for m in card.measures) or 1.0
    for m in card.measures:
        low = min(m.values)
        intercept += low
        curve = [[k, round(100.0 * (v - low) / m.spread, 2)]
                 for k, v in zip(m.knots, m.values, strict=True)]
        measures[m.candidate.name] = {**m.candidate.spec, "curve": curve}
        groups.setdefault(m.candidate.group, {})[m.candidate.name] = m.spread
    data["measures"] = measures
    data["groups"] = {
        name: {"measures": {k: round(v / sum(ms.values()), 5) for k, v in ms.items()}}
        for name, ms in groups.items()}
    data["profiles"] = {"calibrated": {"groups": {
        name: round(sum(ms.values()) / total, 5) for name, ms in groups.items()}}}
    data["default_profile"] = "calibrated"
    data["btyd"] = btyd.model_dump(mode="json")
    data["link"] = {"intercept": round(intercept, 6), "slope": round(total, 6),
                    "meaning": meaning}
    return data


def served_points(config: ScoringConfig, snapshots: Sequence[Snapshot]) -> list[float | None]:
    """The weighted points the scorer gives each snapshot before the link (None: no
    score)."""
    return [None if (score := s.score(config)) is None else score.points for s in snapshots]


def refit_link(config: ScoringConfig, snapshots: Sequence[Snapshot]) -> Link:
    """The link refitted on the points the scorer itself gives (weights redistributed for
    missing measures, as when it scores)."""
    points = served_points(config, snapshots)
    pairs = [(p, s.active_after) for p, s in zip(points, snapshots, strict=True)
             if p is not None]
    intercept, slope = fit_link([p for p, _ in pairs], [a for _, a in pairs])
    meaning = config.link.meaning if config.link is not None else ""
    return Link(intercept=round(intercept, 6), slope=round(slope, 6), meaning=meaning)


# ----------------------------------------------------------------------- baseline


def rfm_features(snapshots: Sequence[Snapshot]) -> np.ndarray:
    """Recency (days since the last purchase), log frequency and log average order value:
    the inputs of the logistic-regression baseline (customers with no purchase get a
    recency of ten years)."""
    rows = []
    for s in snapshots:
        last = s.signals.get("purchase.last_at_d")
        rows.append((s.cutoff_d - last if last is not None else 3650.0,
                     math.log1p(s.signals.get("purchase.orders_total", 0.0)),
                     math.log1p(max(0.0, s.signals.get("purchase.aov", 0.0)))))
    return np.array(rows, dtype=float).reshape(-1, 3)


def fit_rfm(snapshots: Sequence[Snapshot]) -> Any:
    """A logistic regression on :func:`rfm_features` (scikit-learn), fitted offline."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    labels = [s.active_after for s in snapshots]
    if len(set(labels)) < 2:
        raise ValueError("every snapshot has the same label: nothing to fit")
    return model.fit(rfm_features(snapshots), labels)
