"""The ``CustomerAtRisk`` record: why a customer is at risk and who should act.

The measures that cost the score the most points, each in words; the likely churn reason
and the team it is routed to; the customer's fit, consent and suggested play; the value at
stake.
"""

from __future__ import annotations

from typing import Any, Final

from streams.domain.buckets import DAY_MS, from_ms
from streams.domain.features import ProfileState
from streams.domain.health_state import CustomerHealth
from streams.domain.scoring import Contribution, Measure, Score, ScoringConfig
from streams.domain.value import CURRENCY_SIGNAL, currency_of, value_at_stake

AT_RISK_RULE: Final = "health_at_risk"
MAX_REASONS: Final = 5


def _reason_text(config: ScoringConfig, c: Contribution, capped_by: str | None) -> str:
    if c.measure not in config.measures:  # a critical group cap
        group = config.groups[c.signal]
        return (f"{config.compiled().reasons[c.measure].text} ({c.signal} points {c.value:.0f} "
                f"< {group.critical_below:g}: score held at {group.critical_cap:g})")
    measure = config.measures[c.measure]
    detail = _detail(config, measure, c.value)
    if capped_by is not None and c.points < config.compiled().curves[c.measure](c.value):
        detail += f", capped by {capped_by}"
    return f"{measure.text} ({detail})"


def _detail(config: ScoringConfig, measure: Measure, value: float) -> str:
    """The measure's value in words."""
    if measure.kind == "elapsed":
        return f"{value:.1f}x the usual gap"
    if measure.kind == "age":
        return f"{value:.0f} days"
    if measure.kind == "btyd":
        return f"{value:.2f} purchases expected in {config.btyd.horizon_d:g} days"
    return f"{measure.signal} = {value:g}"


def likely_churn_reason(config: ScoringConfig, reasons: list[Contribution]) -> str:
    """The churn reason whose measures cost the score the most points together."""
    described = config.compiled().reasons
    lost: dict[str, float] = {}
    for c in reasons:
        key = described[c.measure].churn_reason
        lost[key] = lost.get(key, 0.0) + c.shortfall
    return max(lost, key=lambda key: lost[key])


def fit_status(config: ScoringConfig, profile: ProfileState | None) -> tuple[str, float | None]:
    """Customer-fit status (maintain / grow / depart / unknown) and profitability."""
    profitability = profile.profitability() if profile is not None else None
    if profile is None or profitability is None:
        return "unknown", profitability
    if profitability < config.fit.depart_below:
        return "depart", profitability
    if profitability < config.fit.profitability_threshold:
        return "maintain", profitability
    if profile.products < config.fit.grow_below_products:
        return "grow", profitability
    return "maintain", profitability



def at_risk_record(
    config: ScoringConfig, customer_id: str, score: Score, health: CustomerHealth,
    profile: ProfileState | None, at_ms: int, previous_band: str | None,
) -> dict[str, Any]:
    ranked = sorted(score.contributions, key=lambda c: c.shortfall, reverse=True)
    reasons = [c for c in ranked if c.shortfall >= 0.5][:MAX_REASONS] or ranked[:1]
    churn_reason = likely_churn_reason(config, reasons)
    if score.profile == "onboarding" and churn_reason == "low_usage":
        churn_reason = "failed_onboarding"
    segment = profile.segment if profile is not None else "unknown"
    compiled = config.compiled()
    capping = compiled.capping
    fit, profitability = fit_status(config, profile)
    channels = profile.consent.channels() if profile is not None else []
    episode = health.alert.episode
    return {
        "event_id": f"{customer_id}:{AT_RISK_RULE}:{episode}",
        "customer_id": customer_id,
        "occurred_at": from_ms(at_ms),
        "episode_id": f"{customer_id}:{episode}",
        "rule": AT_RISK_RULE,
        "score": score.score,
        "band": score.band,
        "previous_band": previous_band,
        "reasons": [{"code": compiled.reasons[c.measure].code,
                     "text": _reason_text(config, c, capping.get(c.measure)),
                     "contribution": round(-c.shortfall, 3)} for c in reasons],
        "churn_reason": churn_reason,
        "route_to_team": config.churn_reasons[churn_reason].team,
        "fit_status": fit,
        "profitability": round(profitability, 4) if profitability is not None else None,
        "unprofitable": profitability is not None
        and profitability < config.fit.profitability_threshold,
        "contactable": bool(channels),
        "channels": channels,
        "suggested_play": config.play(segment, churn_reason, contactable=bool(channels)),
        "segment": segment,
        "config_version": config.version,
        "value_at_stake_minor": value_at_stake(config.btyd, health.signals, at_ms / DAY_MS),
        "currency": currency_of(health.signals.get(CURRENCY_SIGNAL)),
    }
