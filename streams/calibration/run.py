"""``churnwatch calibrate``: read, replay, fit, check on held-out cutoffs, write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.backtest import LAZY_READ_ABOVE_BYTES, print_bad_lines, read_events
from streams.calibration import fit
from streams.calibration.config_out import to_toml
from streams.calibration.report import (
    calibration_rich,
    figures_table,
    held_out_figures,
    scores,
    write_report,
)
from streams.calibration.snapshots import SignalReplay, Snapshot, take_snapshots
from streams.domain.buckets import DAY_MS
from streams.domain.scoring import Btyd, ScoringConfig, load_config, parse_config
from streams.settings import Settings

#: No cutoff before this long after the first record: signals need some history.
WARM_UP = timedelta(days=30)


class CalibrationError(ValueError):
    """The history cannot be calibrated on (the message says why)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The cutoffs: all of them (the final fit), the held-out ones and those fitted for
    the held-out check (whose labels end before the first held-out cutoff)."""

    cutoffs: list[datetime]
    held_out: list[datetime]
    fit_for_check: list[datetime]


def plan_cutoffs(start: datetime, until: datetime, horizon: timedelta,
                 every: timedelta) -> Plan:
    """Cutoffs every ``every`` back from ``until - horizon`` (labels need the horizon after
    them) to ``start`` plus a warm-up; the latest are held out, as many as leave two
    cutoffs to fit whose labels end before them (one at least)."""
    last = until - horizon
    first = start + WARM_UP
    need = WARM_UP + 2 * horizon
    if last - horizon < first:
        have = (until - start).total_seconds() / 86400
        raise CalibrationError(
            f"the history is too short for a {horizon.days}-day horizon: calibration needs "
            f"at least {need.days} days up to --until (a {WARM_UP.days}-day warm-up, one "
            f"horizon to fit on and one to check on), and it has {have:.0f} "
            f"({start:%Y-%m-%d} .. {until:%Y-%m-%d}); pass an earlier --horizon or a "
            "longer history")
    cutoffs = []
    at = last
    while at >= first:
        cutoffs.append(at)
        at -= every
    cutoffs.reverse()
    held: list[datetime] = []
    fitted: list[datetime] = []
    for n in range(max(1, len(cutoffs) // 3), 0, -1):
        held = cutoffs[-n:]
        fitted = [c for c in cutoffs if c + horizon <= held[0]]
        if len(fitted) >= 2 or n == 1:
            break
    return Plan(cutoffs, held, fitted)


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _at(snapshots: Sequence[Snapshot], cutoffs: Sequence[datetime]) -> list[Snapshot]:
    days = {c.timestamp() * 1000 / DAY_MS for c in cutoffs}
    return [s for s in snapshots if s.cutoff_d in days]


def fit_config(base: ScoringConfig, snapshots: Sequence[Snapshot], horizon: timedelta,
               *, version: str) -> tuple[ScoringConfig, dict[str, Any]]:
    """The whole fit on ``snapshots``: BG/NBD on the latest cutoff's purchasers, the
    scorecard, the link. Returns the config and its dict (for writing)."""
    latest = max(s.cutoff_d for s in snapshots)
    inputs = fit.btyd_inputs([s for s in snapshots if s.cutoff_d == latest], base.btyd)
    btyd = Btyd(horizon_d=float(horizon.days))
    if len(inputs) >= 20:
        model = fit.fit_bgnbd(inputs)
        btyd = Btyd(r=round(model.r, 6), alpha=round(model.alpha, 6), a=round(model.a, 6),
                    b=round(model.b, 6), horizon_d=float(horizon.days))
    with_btyd = base.model_copy(update={"btyd": btyd})
    card = fit.fit_scorecard(with_btyd, snapshots)
    if not card.measures:
        raise CalibrationError("no measure separates the customers who stayed from those "
                               "who left in this history")
    data = fit.scorecard_config(with_btyd, card, btyd, version=version,
                                meaning=f"active within {horizon.days} days")
    config = ScoringConfig.model_validate(data)
    link = fit.refit_link(config, snapshots)
    data["link"] = link.model_dump(mode="json")
    return config.model_copy(update={"link": link}), data


def target_precision(snapshots: Sequence[Snapshot], precision: float | None) -> float:
    """The precision asked for, or by default halfway between the share who left and 1
    (and at least 0.6): an alert must be much surer than picking customers at random."""
    if precision is not None:
        return precision
    base = sum(s.left for s in snapshots) / len(snapshots)
    return round(max(0.6, (1.0 + base) / 2), 3)


def set_thresholds(data: dict[str, Any], snapshots: Sequence[Snapshot], config: ScoringConfig,
                   precision: float) -> float:
    """Bands and alert thresholds from P(active): at risk below x, the highest x at which
    ``precision`` of the customers below it left; healthy from h, the lowest h at which
    ``precision`` of those at or above it stayed active (at least x + 10). Returns x."""
    values = scores(config, snapshots)
    left = [s.left for s in snapshots]
    x = fit.choose_threshold(values, left, precision)
    h = -fit.choose_threshold([-v for v in values], [not g for g in left], precision)
    h = round(min(95.0, max(h, x + 10.0)), 2)
    x = round(min(x, h - 10.0), 2)
    data["bands"] = {"healthy_min": h, "watch_min": x}
    alerts = dict(data["alerts"])
    alerts["enter_below"] = x
    alerts["exit_above"] = round(min(100.0, max(x + 5.0, (x + h) / 2)), 2)
    data["alerts"] = alerts
    champion = dict(data.get("champion", {}))
    champion["min_score"] = h
    data["champion"] = champion
    return x


def calibrate_main(events: Path, until: datetime, horizon: timedelta, out: Path,
                   report_dir: Path, settings: Settings, console: Console, *,
                   every: timedelta = timedelta(days=30), precision: float | None = None,
                   currency: str = "EUR") -> dict[str, Any]:
    """What ``churnwatch calibrate`` runs. Raises :class:`CalibrationError` when the history
    cannot be calibrated on; writes nothing then."""
    base = load_config(settings.scoring_config)
    records, errors = read_events(events, currency=currency,
                                  lazy=events.stat().st_size > LAZY_READ_ABOVE_BYTES)
    print_bad_lines(events, errors, console)
    if len(records) == 0:
        raise CalibrationError(f"{events}: no usable record")
    start: datetime = records[0][1]["occurred_at"]
    plan = plan_cutoffs(start, until, horizon, every)
    replay = SignalReplay(settings, base)
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("replay", total=len(records))

        def counted() -> Any:
            for i, record in enumerate(records):
                if i % 5000 == 0:
                    bar.update(task, completed=i)
                yield record

        snapshots = take_snapshots(replay, counted(), plan.cutoffs, horizon)
    if not snapshots:
        raise CalibrationError("no customer has any signal at the cutoffs")
    if len({s.active_after for s in snapshots}) < 2:
        raise CalibrationError("every customer at every cutoff was active (or none was): "
                               "there is nothing to learn from")
    console.print(f"{len(snapshots):,} snapshots of {len({s.customer_id for s in snapshots}):,}"
                  f" customers at {len(plan.cutoffs)} cutoffs ({_day(plan.cutoffs[0])} .. "
                  f"{_day(plan.cutoffs[-1])}), labelled by activity within {horizon.days} days")
    version = f"calibrated-{until:%Y%m%d}-h{horizon.days}"
    fit_set = _at(snapshots, plan.fit_for_check)
    held = _at(snapshots, plan.held_out)
    for name, part in (("fitted for the check", fit_set), ("held out", held)):
        if len({s.active_after for s in part}) < 2:
            raise CalibrationError(
                f"the cutoffs {name} ({len(part):,} snapshots) hold only customers who "
                "stayed or only customers who left: nothing to fit or judge; pass a "
                "later --until, a shorter --horizon or a longer history")
    precision = target_precision(snapshots, precision)
    check_config, check_data = fit_config(base, fit_set, horizon, version=version)
    threshold = set_thresholds(check_data, fit_set, check_config, precision)
    check_config = ScoringConfig.model_validate(check_data)
    figures = held_out_figures(check_config, base, check_config.btyd, fit_set, held, threshold)
    config, data = fit_config(base, snapshots, horizon, version=version)
    final_threshold = set_thresholds(data, snapshots, config, precision)
    report: dict[str, Any] = {
        "events": str(events), "until": _day(until), "horizon_days": horizon.days,
        "cutoffs": {"all": [_day(c) for c in plan.cutoffs],
                    "held_out": [_day(c) for c in plan.held_out],
                    "fitted_for_the_check": [_day(c) for c in plan.fit_for_check]},
        "snapshots": len(snapshots),
        "target_precision": precision,
        "held_out": figures,
        "config": {"path": str(out), "version": version,
                   "at_risk_below": final_threshold,
                   "healthy_from": data["bands"]["healthy_min"],
                   "measures": list(data["measures"]), "btyd": data["btyd"],
                   "link": data["link"]},
    }
    header = (f"churnwatch scoring config calibrated on {events.name} up to {_day(until)}.\n"
              f"score = 100 x P(active within {horizon.days} days): a purchase or an "
              "engagement.\n"
              f"At risk below {final_threshold:g} (the highest threshold at which "
              f"{precision:.0%} of the customers below it left, on {len(snapshots):,} "
              "snapshots).\n"
              f"Held-out AUC {figures['ranking']['calibrated']['auc']} (days since last "
              f"activity {figures['ranking']['days_since_last_activity']['auc']}).")
    text = to_toml(data, header)
    parse_config(text, str(out))  # what the worker will load, validated before writing
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, "utf-8")
    write_report(report, report_dir, scores(check_config, held), held)
    console.print(figures_table(report))
    console.print(calibration_rich(report))
    rule = figures["at_risk_rule"]
    console.print(f"at risk = P(active within {horizon.days} d) below {final_threshold:g}%; "
                  f"on the held-out cutoffs that rule flagged {rule['flagged']:,} with "
                  f"precision {rule['precision']} and recall {rule['recall']}")
    console.print(f"config written to {out} (CHURN_SCORING_CONFIG={out}); report in "
                  f"{report_dir}")
    return report
