"""The calibration report: the fitted score against simple baselines on held-out cutoffs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from streams.calibration.fit import fit_rfm, rfm_features
from streams.calibration.metrics import (
    auc,
    calibration_error,
    calibration_table,
    lift_at,
    precision_at,
)
from streams.calibration.snapshots import Snapshot, days_since_activity
from streams.domain.scoring import Btyd, ScoringConfig, btyd_value


def scores(config: ScoringConfig, snapshots: Sequence[Snapshot]) -> list[float]:
    """Each snapshot's score under ``config`` (0 when it gives none)."""
    return [0.0 if (score := s.score(config)) is None else score.score for s in snapshots]


def ranking(risk: Sequence[float], left: Sequence[bool]) -> dict[str, float | None]:
    return {"auc": _r(auc(risk, left)), "precision_top10": _r(precision_at(risk, left)),
            "lift_top10": _r(lift_at(risk, left))}


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def held_out_figures(calibrated: ScoringConfig, default: ScoringConfig, btyd: Btyd,
                     fit_set: Sequence[Snapshot], test: Sequence[Snapshot],
                     threshold: float) -> dict[str, Any]:
    """Ranking of the fitted score and of the baselines on ``test``, the calibration table,
    and the at-risk rule's precision and recall there."""
    left = [s.left for s in test]
    fitted = scores(calibrated, test)
    rfm = fit_rfm(fit_set)
    baselines: dict[str, Callable[[Snapshot], float]] = {
        "days_since_last_activity": lambda s: days_since_activity(s.signals, s.cutoff_d),
        "lifetime_frequency": lambda s: -s.signals.get("purchase.orders_total", 0.0),
        "bgnbd_expected_purchases": lambda s: -(btyd_value(btyd, s.signals, s.cutoff_d)
                                                or 0.0),
    }
    figures: dict[str, dict[str, float | None]] = {
        "calibrated": ranking([-v for v in fitted], left)}
    for name, risk in baselines.items():
        figures[name] = ranking([risk(s) for s in test], left)
    figures["rfm_logistic_regression"] = ranking(
        list(-rfm.decision_function(rfm_features(test))), left)
    figures["default_config"] = ranking([-v for v in scores(default, test)], left)
    table = calibration_table([v / 100 for v in fitted], [s.active_after for s in test])
    flagged = [s for s, v in zip(test, fitted, strict=True) if v < threshold]
    leavers = sum(left)
    hits = sum(1 for s in flagged if s.left)
    return {
        "snapshots": len(test),
        "left_share": _r(leavers / len(test)) if test else None,
        "ranking": figures,
        "calibration": [asdict(b) for b in table],
        "calibration_error": _r(calibration_error(table)),
        "mean_predicted": _r(sum(fitted) / 100 / len(test)) if test else None,
        "at_risk_rule": {"flagged": len(flagged),
                         "precision": _r(hits / len(flagged)) if flagged else None,
                         "recall": _r(hits / leavers) if leavers else None},
    }


def figures_table(report: dict[str, Any]) -> Table:
    held = report["held_out"]
    table = Table(title=f"Held-out ranking ({held['snapshots']:,} snapshots at "
                        f"{', '.join(report['cutoffs']['held_out'])}; "
                        f"{held['left_share']:.1%} left)")
    table.add_column("score")
    table.add_column("AUC", justify="right")
    table.add_column("precision, top 10%", justify="right")
    table.add_column("lift, top 10%", justify="right")
    for name, fig in held["ranking"].items():
        table.add_row(name.replace("_", " "), _f(fig["auc"]), _f(fig["precision_top10"]),
                      _f(fig["lift_top10"]))
    return table


def calibration_rich(report: dict[str, Any]) -> Table:
    held = report["held_out"]
    table = Table(title=f"Calibration on held-out cutoffs (mean gap "
                        f"{_f(held['calibration_error'])})")
    for name in ("P(active) bin", "customers", "predicted", "observed"):
        table.add_column(name, justify="right")
    for b in held["calibration"]:
        table.add_row(f"{b['low']:.1f}-{b['high']:.1f}", f"{b['customers']:,}",
                      f"{b['predicted']:.3f}", f"{b['observed']:.3f}")
    return table


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_report(report: dict[str, Any], out_dir: Path, calibrated: Sequence[float],
                 test: Sequence[Snapshot]) -> None:
    """report.json, roc.png and reliability.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    from streams.backtest import png_backend  # noqa: PLC0415 - plotting only here

    plt = png_backend()
    left = [s.left for s in test]
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, risk in (("calibrated", [-v for v in calibrated]),
                       ("days since last activity", [days_since_activity(s.signals, s.cutoff_d)
                                                  for s in test])):
        xs, ys = _roc(risk, left)
        ax.plot(xs, ys, label=name)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("stayers flagged (false positive rate)")
    ax.set_ylabel("leavers flagged (true positive rate)")
    ax.set_title("ROC on held-out cutoffs")
    ax.legend(loc="lower right")
    fig.savefig(out_dir / "roc.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    bins = report["held_out"]["calibration"]
    ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("predicted P(active), score / 100")
    ax.set_ylabel("observed share active")
    ax.set_title("Reliability on held-out cutoffs")
    fig.savefig(out_dir / "reliability.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _roc(risk: Sequence[float], left: Sequence[bool]) -> tuple[list[float], list[float]]:
    order = sorted(zip(risk, left, strict=True), key=lambda p: p[0], reverse=True)
    pos = sum(left) or 1
    neg = (len(left) - sum(left)) or 1
    xs, ys = [0.0], [0.0]
    tp = fp = 0
    for i, (r, y) in enumerate(order):
        tp += y
        fp += not y
        if i + 1 == len(order) or order[i + 1][0] != r:
            xs.append(fp / neg)
            ys.append(tp / pos)
    return xs, ys
