"""The score's step: signals in, HealthScoreChanged / CustomerAtRisk / CustomerRecovered out.

``CustomerHealth`` is the score's per-customer state (:mod:`streams.domain.health_state`,
with its stored form). ``update_signals`` merges one family's signals; ``evaluate`` scores
the customer as of a time and returns the output records (type name and Avro-ready dict)
to publish, the at-risk one built by :mod:`streams.domain.at_risk`, and schedules the next
silence check (``next_check_ms``). Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import math
from typing import Any

from streams.domain.alerts import AlertState
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
from streams.domain.scoring import (
    Score,
    ScoringConfig,
    compute_score,
    fall_per_day,
    next_tenure_d,
    score_with,
    steady_until,
)

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
    return [{"signal": measure, "value": round(value, 4), "points": round(points, 2),
             "weight": round(weight, 4),
             "contribution": round(points * weight + adjustment, 3)}  # c.contribution
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
    settled = health.champion == champion_before and _alert_settled(
        alert_before, alert, config.alerts.enter_after)
    health.due_ms = next_check_ms(health, config, at_ms, segment, tenure_d, settled=settled,
                                  score=score, score_step=score_step,
                                  defer=trigger != "timer")
    return outputs


def _alert_settled(before: tuple[str, int, int, int, int | None, int | None],
                   after: AlertState, enter_after: int) -> bool:
    """Whether another evaluation with the same score leaves the alert state as it is: it
    did not change now, except for a count of low scores already past ``enter_after``
    (an episode held off by the cooldown or a short history, which end at known times)."""
    state, episode, below, above, since, ended = before
    if (state != after.state or episode != after.episode or above != after.above
            or since != after.since_ms or ended != after.ended_ms):
        return False
    return below == after.below or below >= enter_after


def next_check_ms(health: CustomerHealth, config: ScoringConfig, at_ms: int, segment: str,
                  tenure_d: float | None, *, settled: bool, score: Score | None = None,
                  score_step: float = 0.0, defer: bool = False) -> int:
    """When to check a silent customer next. Checks fall on a grid, every
    ``check_every_d`` from this evaluation; the ones skipped are those that would change
    nothing, so the checks kept fall when they always did and publish what they always did.

    Unless this evaluation changed the alert or champion state (then the next check is the
    next one of the grid), the next check is the first at or after whichever comes first:
    ``max_quiet_d`` ahead; the end of a cooldown or of the history an episode waits for;
    the next tenure threshold; and the first check that would do anything. While no curve
    rises, the score can only hold or fall until the next update, so that check is found
    by scoring a few checks ahead (a guess from how fast it falls, then a bisection) rather
    than all of them. Where a curve can rise, the checks skipped are those while the score
    holds (``steady_until``).

    With ``defer`` (after an event: another one often comes before that check), the search
    waits: the next check is the first that could act at all (the next one, or the first
    after the score holds), marked ``provisional``; if it comes due first, the search runs
    then (:func:`_resolve`) and finds the same check it would have found now."""
    lapse = config.lapse
    step = int(lapse.check_every_d * DAY_MS)
    if not settled:
        return at_ms + step
    if score is None or not config.plan(score.profile).falling:
        now_d = at_ms / DAY_MS
        until_d = steady_until(config, health.signals, now_d=now_d, segment=segment,
                               tenure_d=tenure_d,
                               profile=score.profile if score is not None else None)
        if until_d > now_d:
            return _on_grid(at_ms, step, min(until_d * DAY_MS, _horizon(health, config, at_ms)))
        return at_ms + step
    last = _last_check(health, config, at_ms, step, score.profile, tenure_d)
    if defer and last > 1 and health.published_score is not None:
        start = 1
        until_d = steady_until(config, health.signals, now_d=at_ms / DAY_MS, segment=segment,
                               tenure_d=tenure_d, profile=score.profile)
        if until_d > at_ms / DAY_MS:  # the checks up to then hold the score: none acts
            start = (_on_grid(at_ms, step, min(until_d * DAY_MS, at_ms + last * step))
                     - at_ms) // step
        if start < last:
            health.provisional = True
            return at_ms + step * start
    return at_ms + step * _first_change(health, config, score, segment, tenure_d, at_ms,
                                        step, last, score_step)


def _horizon(health: CustomerHealth, config: ScoringConfig, at_ms: int) -> float:
    """The latest a settled customer evaluated at ``at_ms`` is checked: ``max_quiet_d``
    ahead, or when an episode due but held off can start."""
    lapse = config.lapse
    horizon = at_ms + lapse.max_quiet_d * DAY_MS
    rules = config.alerts
    alert = health.alert
    if not alert.active and alert.below >= rules.enter_after:
        for moment in (  # an episode due but held off: it starts when these end
            None if health.first_ms is None else health.first_ms + rules.min_history_d * DAY_MS,
            None if alert.ended_ms is None else alert.ended_ms + rules.cooldown_days * DAY_MS,
        ):
            if moment is not None and moment > at_ms:
                horizon = min(horizon, moment)
    return horizon


def _last_check(health: CustomerHealth, config: ScoringConfig, at_ms: int, step: int,
                profile: str, tenure_d: float | None) -> int:
    """The check (counted in steps from ``at_ms``) made whatever happens: the horizon, or
    the next tenure threshold if sooner."""
    horizon = _horizon(health, config, at_ms)
    threshold = next_tenure_d(config, profile, tenure_d)
    if threshold is not None and tenure_d is not None:
        horizon = min(horizon, at_ms + (threshold - tenure_d) * DAY_MS)
    return (_on_grid(at_ms, step, horizon) - at_ms) // step


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
    last = _last_check(health, config, origin, step, score.profile, tenure_d)
    start = (at_ms - origin) // step
    return origin + step * _first_change(health, config, score, segment, tenure_d, origin,
                                         step, last, score_step, start=start)


def _first_change(health: CustomerHealth, config: ScoringConfig, score: Score, segment: str,
                  tenure_d: float | None, at_ms: int, step: int, last: int,
                  score_step: float, start: int = 1) -> int:
    """The first check k (1..``last``, ``last`` if none before) of a score that cannot rise
    at which an evaluation would do anything: publish (the score moved more than
    ``score_step`` from the published one, or its band changed) or cross the alert's entry
    threshold. As the score only holds or falls, "would act" is false up to some check and
    true from there on: the check is bracketed by scoring checks ahead, each guessed where
    a straight line through the scores known reaches the nearest threshold (exact while the
    score falls in a straight line: two scorings), halving the bracket when guesses stall."""
    published = health.published_score
    if last <= start or published is None:
        return min(start, last) if published is not None else start
    entry = None if health.alert.active or score.score < config.alerts.enter_below \
        else config.alerts.enter_below
    band = health.published_band
    signals = health.signals
    compiled = config.compiled()
    # the score acts once below the nearest of these under it (used to guess, not decide)
    below = [t for t in (compiled.healthy_min, compiled.watch_min, published - score_step,
                         entry) if t is not None and t <= score.score]
    target = max(below) if below else None
    lo, s_lo = start - 1, score.score  # nothing happens at lo (now, or checks before start)
    hi, s_hi = last, None  # something happens at hi (the last check runs whatever happens)
    k = last
    rate = fall_per_day(config, score, signals, segment, at_ms / DAY_MS)
    if rate is not None and rate > 0 and target is not None:
        k = math.floor((score.score - target) / (rate * step / DAY_MS)) + 1
    prev: tuple[int, float] | None = None  # the check before lo that did nothing
    for rounds in range(64):
        if hi - lo <= 1:
            break
        if rounds >= 4 or not lo < k < hi:
            k = (lo + hi) // 2 if rounds >= 4 or s_hi is not None or k <= lo else hi - 1
        later = score_with(compiled, signals, (at_ms + k * step) / DAY_MS, segment,
                           None if tenure_d is None else tenure_d + k * step / DAY_MS)
        if (later is None or abs(later - published) > score_step
                or compiled.band(later) != band or (entry is not None and later < entry)):
            hi, s_hi = k, later
        else:
            prev, (lo, s_lo) = (lo, s_lo), (k, later)
        k = _crossing(lo, s_lo, hi, s_hi, prev, target)
        if k >= hi:
            k = hi - 1  # the check just before: is the guess exact?
    return hi


def _crossing(lo: int, s_lo: float, hi: int, s_hi: float | None,
              prev: tuple[int, float] | None, target: float | None) -> int:
    """The first check at which the straight line through two known scores goes below
    ``target``: between the bracket's ends when the score at ``hi`` is known, else
    extrapolated from the two latest checks that did nothing; ``-1`` without a line."""
    if target is None:
        return -1
    if s_hi is not None and s_lo > s_hi:
        return math.ceil(lo + (s_lo - target) / (s_lo - s_hi) * (hi - lo))
    if s_hi is None and prev is not None and prev[1] > s_lo:
        return math.ceil(lo + (s_lo - target) * (lo - prev[0]) / (prev[1] - s_lo))
    return -1


def _on_grid(at_ms: int, step: int, due: float) -> int:
    """The first check of the every-``step`` grid from ``at_ms`` at or after ``due``."""
    return at_ms + step * max(1, math.ceil((due - at_ms) / step))


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
