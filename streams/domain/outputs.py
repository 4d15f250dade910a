"""What an evaluation publishes once it has the score: the HealthScoreChanged record when
the score moved, the alert's step and its CustomerAtRisk or CustomerRecovered record, and
the champion tier's step and its CustomerChampion record.

Each output is a record type name and an Avro-ready dict. :mod:`streams.domain.health`
scores the customer, calls :func:`publish`, then schedules the next silence check. Pure:
no I/O, no clock reads.
"""

from __future__ import annotations

import math
from typing import Any

from streams.domain.at_risk import AT_RISK_RULE, at_risk_record
from streams.domain.buckets import DAY_MS, from_ms
from streams.domain.features import ProfileState
from streams.domain.health_state import CustomerHealth
from streams.domain.rounding import round_to
from streams.domain.schedule import alert_settled
from streams.domain.scoring import Score, ScoringConfig

Output = tuple[str, dict[str, Any]]


def publish(health: CustomerHealth, config: ScoringConfig, score: Score, *, customer_id: str,
            at_ms: int, profile: ProfileState | None, segment: str, trigger: str,
            trigger_id: str, score_step: float) -> tuple[list[Output], bool]:
    """Fold an evaluation's ``score`` into the customer's health (trends, published score,
    alert and champion states) and return the records to publish, and whether the state
    is settled: another evaluation with the same score would leave it as it is."""
    alert = health.alert
    alert_before = (alert.state, alert.episode, alert.below, alert.above, alert.since_ms,
                    alert.ended_ms)
    champion_before = health.champion
    outputs: list[Output] = []
    trend_7d, trend_30d = health.trends(score.score, at_ms)
    previous_score, previous_band = health.published_score, health.published_band
    moved = previous_score is None or abs(score.score - previous_score) > score_step
    if moved or score.band != previous_band:
        outputs.append(("HealthScoreChanged", {
            "event_id": f"{customer_id}:health:{trigger_id}",
            "customer_id": customer_id,
            "occurred_at": from_ms(at_ms),
            "score": score.score,
            "band": score.band,
            "previous_score": previous_score,
            "previous_band": previous_band,
            "contributions": contributions(score),
            "segment": segment,
            "profile": score.profile,
            "config_version": score.config_version,
            "trigger": trigger,
            "trend_7d": trend_7d,
            "trend_30d": trend_30d,
        }))
        health.published_score, health.published_band = score.score, score.band
    since_ms = alert.since_ms
    first = health.first_ms
    rules = config.alerts
    transition = alert.step(
        score.score, score.band, at_ms, rules,
        may_enter=first is None or at_ms - first >= rules.min_history_d * DAY_MS)
    if transition == "enter":
        outputs.append(("CustomerAtRisk", at_risk_record(
            config, customer_id, score, health, profile, at_ms, previous_band)))
    elif transition == "exit":
        episode = alert.episode
        outputs.append(("CustomerRecovered", {
            "event_id": f"{customer_id}:recovered:{episode}",
            "customer_id": customer_id,
            "occurred_at": from_ms(at_ms),
            "episode_id": f"{customer_id}:{episode}",
            "rule": AT_RISK_RULE,
            "score": score.score,
            "band": score.band,
            "at_risk_since": from_ms(since_ms if since_ms is not None else at_ms),
            "config_version": score.config_version,
        }))
    champion = champion_step(health, config, customer_id, score, profile, at_ms)
    if champion is not None:
        outputs.append(("CustomerChampion", champion))
    settled = health.champion == champion_before and alert_settled(
        alert_before, alert, rules.enter_after)
    return outputs, settled


def contributions(score: Score) -> list[dict[str, Any]]:
    """The score's contributions as a HealthScoreChanged record carries them."""
    return [{"signal": c.measure, "value": round_to(c.value, 4),
             "points": round_to(c.points, 2), "weight": round_to(c.weight, 4),
             "contribution": round_to(c.points * c.weight + c.adjustment, 3)}
            for c in score.contributions]


def champion_step(health: CustomerHealth, config: ScoringConfig, customer_id: str,
                  score: Score, profile: ProfileState | None,
                  at_ms: int) -> dict[str, Any] | None:
    """Enter the top tier when a champion rule holds and the score is healthy enough;
    leave it when no rule holds or the customer is at risk. Returns the record on entry."""
    rules = config.champion
    if health.champion >= 0 and (profile is None or score.score < rules.min_score):
        return None  # cannot enter (see below), and no episode to leave
    segment = profile.segment if profile is not None else None
    signals = health.signals
    holds = [text for signal, at_least, segments, text in config.compiled().champion_rules
             if (segments is None or segment in segments)
             and signals.get(signal, -math.inf) >= at_least]
    if health.champion < 0:  # in an episode
        if not holds or score.band == "at_risk":
            health.champion = -health.champion
        return None
    if profile is None or not holds or score.score < rules.min_score:
        return None  # without a profile, neither the segment nor the consent is known
    episode = health.champion + 1
    health.champion = -episode
    channels = profile.consent.channels()
    return {
        "event_id": f"{customer_id}:champion:{episode}",
        "customer_id": customer_id,
        "occurred_at": from_ms(at_ms),
        "episode_id": f"{customer_id}:{episode}",
        "score": score.score,
        "qualified_by": holds,
        "reward": rules.reward,
        "contactable": bool(channels),
        "channels": channels,
        "segment": profile.segment,
        "config_version": config.version,
    }
