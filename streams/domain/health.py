"""The score's step: signals in, HealthScoreChanged / CustomerAtRisk / CustomerRecovered out.

``CustomerHealth`` is the score's per-customer state (:mod:`streams.domain.health_state`,
with its stored form). ``update_signals`` merges one family's signals; ``evaluate`` scores
the customer as of a time, folds the score into its state and returns the output records
(type name and Avro-ready dict) to publish (:mod:`streams.domain.outputs`, the at-risk one
built by :mod:`streams.domain.at_risk`), and schedules the next silence check
(``next_check_ms``, found by :mod:`streams.domain.schedule`). Pure: no I/O, no clock
reads.
"""

from __future__ import annotations

from streams.domain.at_risk import (
    AT_RISK_RULE,
    MAX_REASONS,
    at_risk_record,
    fit_status,
    likely_churn_reason,
)
from streams.domain.buckets import DAY_MS
from streams.domain.features import ProfileState
from streams.domain.health_state import SIGNAL_DIGITS, STORED_SIGNALS, CustomerHealth
from streams.domain.outputs import Output, champion_step, publish
from streams.domain.schedule import first_change, last_check, next_check_ms
from streams.domain.scoring import Score, ScoringConfig, compute_score, score_with

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
    "score_value_at",
    "segment_of",
    "tenure_days",
]


def segment_of(profile: ProfileState | None) -> str:
    """The customer's segment: its profile's, ``default`` without one."""
    return profile.segment if profile is not None else "default"


def score_at(config: ScoringConfig, health: CustomerHealth, at_ms: int) -> Score | None:
    """The customer's score as of ``at_ms`` from its signals and profile, changing nothing
    (the backtest's final scores, its cutoffs, the lookup)."""
    profile = health.profile
    return compute_score(config, health.signals, now_d=at_ms / DAY_MS,
                         segment=segment_of(profile), tenure_d=tenure_days(profile, at_ms))


def score_value_at(config: ScoringConfig, health: CustomerHealth, at_ms: int) -> float | None:
    """:func:`score_at`'s score alone (``config.compiled().band`` gives its band), made
    faster: no contributions (the backtest's cutoffs and final scores)."""
    profile = health.profile
    return score_with(config.compiled(), health.signals, at_ms / DAY_MS, segment_of(profile),
                      tenure_days(profile, at_ms))


def tenure_days(profile: ProfileState | None, now_ms: int) -> float | None:
    if profile is None or profile.signup_ms is None:
        return None
    return (now_ms - profile.signup_ms) / DAY_MS


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
    outputs, settled = publish(health, config, score, customer_id=customer_id, at_ms=at_ms,
                               profile=profile, segment=segment, trigger=trigger,
                               trigger_id=trigger_id, score_step=score_step)
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
