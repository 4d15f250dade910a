"""The score's step: signals in, HealthScoreChanged / CustomerAtRisk / CustomerRecovered out.

``CustomerHealth`` is the score's per-customer state (:mod:`streams.domain.health_state`,
with its stored form). ``update_signals`` merges one family's signals; ``evaluate`` scores
the customer as of a time and returns the output records (type name and Avro-ready dict)
to publish, the at-risk one built by :mod:`streams.domain.at_risk`, and schedules the next
silence check (``next_check_ms``, found by :mod:`streams.domain.schedule`). Pure: no I/O,
no clock reads.
"""

from __future__ import annotations

import math
from typing import Any

from streams.domain.at_risk import (
    AT_RISK_RULE,
    MAX_REASONS,
    at_risk_record,
    fit_status,
    likely_churn_reason,
)
from streams.domain.buckets import DAY_MS, from_ms
from streams.domain.features import ProfileState
from streams.domain.health_state import SIGNAL_DIGITS, STORED_SIGNALS, CustomerHealth
from streams.domain.rounding import round_to
from streams.domain.schedule import alert_settled, first_change, last_check, next_check_ms
from streams.domain.scoring import Score, ScoringConfig, compute_score

__all__ = [
    "AT_RISK_RULE",
    "MAX_REASONS",
    "SIGNAL_DIGITS",
    "STORED_SIGNALS",
    "CustomerHealth",
    "Output",
    "at_risk_record",
    "champion_step",
    "evaluate",
    "fit_status",
    "likely_churn_reason",
    "next_check_ms",
    "score_at",
    "segment_of",
    "tenure_days",
]

Output = tuple[str, dict[str, Any]]


def segment_of(profile: ProfileState | None) -> str:
    """The customer's segment: its profile's, ``default`` without one."""
    return profile.segment if profile is not None else "default"


def score_at(config: ScoringConfig, health: CustomerHealth, at_ms: int) -> Score | None:
    """The customer's score as of ``at_ms`` from its signals and profile, changing nothing
    (the backtest's final scores, its cutoffs, the lookup)."""
    profile = health.profile
    return compute_score(config, health.signals, now_d=at_ms / DAY_MS,
                         segment=segment_of(profile), tenure_d=tenure_days(profile, at_ms))


def tenure_days(profile: ProfileState | None, now_ms: int) -> float | None:
    if profile is None or profile.signup_ms is None:
        return None
    return (now_ms - profile.signup_ms) / DAY_MS


def _contributions(score: Score) -> list[dict[str, Any]]:
    return [{"signal": measure, "value": round_to(value, 4), "points": round_to(points, 2),
             "weight": round_to(weight, 4),
             "contribution": round_to(points * weight + adjustment, 3)}  # c.contribution
            for measure, _, value, points, weight, adjustment in score.contributions]



def evaluate(
    health: CustomerHealth,
    config: ScoringConfig,
    *,
    customer_id: str,
    at_ms: int,
    profile: ProfileState | None,
    trigger: str,
    trigger_id: str,
    score_step: float,
) -> list[Output]:
    """Score the customer as of ``at_ms`` (never before its last evaluation)."""
    if health.provisional:
        health.provisional = False
        if trigger == "timer" and health.as_of_ms is not None and at_ms > health.as_of_ms:
            due = _resolve(health, config, at_ms, score_step)
            if due > at_ms:  # this check would do nothing: it is not made
                health.due_ms = due
                return []
    if health.as_of_ms is not None:
        at_ms = max(at_ms, health.as_of_ms)
    health.as_of_ms = at_ms
    segment = segment_of(profile)
    tenure_d = tenure_days(profile, at_ms)
    score = compute_score(config, health.signals, now_d=at_ms / DAY_MS, segment=segment,
                          tenure_d=tenure_d)
    if score is None:
        health.due_ms = None
        return []
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
            "contributions": _contributions(score),
            "segment": segment,
            "profile": score.profile,
            "config_version": score.config_version,
            "trigger": trigger,
            "trend_7d": trend_7d,
            "trend_30d": trend_30d,
        }))
        health.published_score, health.published_band = score.score, score.band
    since_ms = health.alert.since_ms
    first = health.first_ms
    transition = health.alert.step(
        score.score, score.band, at_ms, config.alerts,
        may_enter=first is None or at_ms - first >= config.alerts.min_history_d * DAY_MS)
    if transition == "enter":
        outputs.append(("CustomerAtRisk", at_risk_record(
            config, customer_id, score, health, profile, at_ms, previous_band)))
    elif transition == "exit":
        episode = health.alert.episode
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
        alert_before, alert, config.alerts.enter_after)
    health.due_ms = next_check_ms(health, config, at_ms, segment, tenure_d, settled=settled,
                                  score=score, score_step=score_step,
                                  defer=trigger != "timer")
    return outputs


def _resolve(health: CustomerHealth, config: ScoringConfig, at_ms: int,
             score_step: float) -> int:
    """The first check at or after the provisional check ``at_ms`` that acts, searched as
    :func:`next_check_ms` would have searched at the last evaluation (nothing has changed
    since: an update would have evaluated the customer again)."""
    origin = health.as_of_ms
    assert origin is not None
    segment = segment_of(health.profile)
    tenure_d = tenure_days(health.profile, origin)
    score = compute_score(config, health.signals, now_d=origin / DAY_MS, segment=segment,
                          tenure_d=tenure_d)
    if score is None:
        return at_ms
    step = int(config.lapse.check_every_d * DAY_MS)
    last = last_check(health, config, origin, step, score.profile, tenure_d)
    start = (at_ms - origin) // step
    return origin + step * first_change(health, config, score, segment, tenure_d, origin,
                                        step, last, score_step, start=start)


def champion_step(health: CustomerHealth, config: ScoringConfig, customer_id: str,
                  score: Score, profile: ProfileState | None,
                  at_ms: int) -> dict[str, Any] | None:
    """Enter the top tier when a champion rule holds and the score is healthy enough;
    leave it when no rule holds or the customer is at risk. Returns the record on entry."""
    rules = config.champion
    if health.champion >= 0 and (profile is None or score.score < rules.min_score):
        return None  # cannot enter (see below), and no episode to leave
    segment = profile.segment if profile is not None else None
    get = health.signals.get
    holds = [text for signal, at_least, segments, text in config.compiled().champion_rules
             if (segments is None or segment in segments)
             and get(signal, -math.inf) >= at_least]
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
