"""When to check a silent customer next: the checks on the grid that would change
nothing are skipped.

A customer's score moves between its updates only with time. After each evaluation
:func:`next_check_ms` finds the next check that could do anything (publish, or start an
alert), scoring a few checks ahead where the score can only hold or fall; the checks
skipped would have published nothing. Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import math

from streams.domain.alerts import AlertState
from streams.domain.buckets import DAY_MS
from streams.domain.health_state import CustomerHealth
from streams.domain.scoring import (
    Score,
    ScoringConfig,
    fall_per_day,
    score_with,
    steady_until,
)
from streams.domain.scoring.compiled import _Compiled


def alert_settled(before: tuple[str, int, int, int, int | None, int | None],
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
    then (see ``evaluate``) and finds the same check it would have found now."""
    compiled = config.compiled()
    step = int(compiled.check_every_d * DAY_MS)
    if not settled:
        return at_ms + step
    if score is None or not compiled.plans[score.profile].falling:
        now_d = at_ms / DAY_MS
        until_d = steady_until(config, health.signals, now_d=now_d, segment=segment,
                               tenure_d=tenure_d,
                               profile=score.profile if score is not None else None)
        if until_d > now_d:
            return _on_grid(at_ms, step,
                            min(until_d * DAY_MS, _horizon(health, compiled, at_ms)))
        return at_ms + step
    last = _last_check(health, compiled, at_ms, step, score.profile, tenure_d)
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
    return at_ms + step * first_change(health, config, score, segment, tenure_d, at_ms,
                                       step, last, score_step)


def _horizon(health: CustomerHealth, compiled: _Compiled, at_ms: int) -> float:
    """The latest a settled customer evaluated at ``at_ms`` is checked: ``max_quiet_d``
    ahead, or when an episode due but held off can start."""
    horizon = at_ms + compiled.max_quiet_d * DAY_MS
    alert = health.alert
    if not alert.active and alert.below >= compiled.enter_after:
        first, ended = health.first_ms, alert.ended_ms
        for moment in (  # an episode due but held off: it starts when these end
            None if first is None else first + compiled.min_history_d * DAY_MS,
            None if ended is None else ended + compiled.cooldown_days * DAY_MS,
        ):
            if moment is not None and moment > at_ms:
                horizon = min(horizon, moment)
    return horizon


def last_check(health: CustomerHealth, config: ScoringConfig, at_ms: int, step: int,
               profile: str, tenure_d: float | None) -> int:
    """The check (counted in steps from ``at_ms``) made whatever happens: the horizon, or
    the next tenure threshold if sooner."""
    return _last_check(health, config.compiled(), at_ms, step, profile, tenure_d)


def _last_check(health: CustomerHealth, compiled: _Compiled, at_ms: int, step: int,
                profile: str, tenure_d: float | None) -> int:
    horizon = _horizon(health, compiled, at_ms)
    if tenure_d is not None:
        for threshold in compiled.plans[profile].tenures:  # the next one (next_tenure_d)
            if tenure_d < threshold:
                horizon = min(horizon, at_ms + (threshold - tenure_d) * DAY_MS)
                break
    return (_on_grid(at_ms, step, horizon) - at_ms) // step


def first_change(health: CustomerHealth, config: ScoringConfig, score: Score, segment: str,
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
    compiled = config.compiled()
    entry = None if health.alert.active or score.score < compiled.enter_below \
        else compiled.enter_below
    band = health.published_band
    signals = health.signals
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
