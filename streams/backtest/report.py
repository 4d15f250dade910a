"""The backtest's report: report.json, customers.csv, the plots and the summary table."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table

from streams.backtest.metrics import (
    CustomerFinal,
    classify,
    false_alerts_per_1000_per_month,
    flapping_rate,
    lead_time_stats,
    quantile,
    threshold_curve,
)
from streams.backtest.replay import BacktestResult


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
