"""How a score moves with time between updates, looked at ahead of time.

Only time moves a score between two updates of a customer's signals: the time-moving
measures and the tenure. These functions say until when it holds, how fast it falls and
where the next change of slope or tenure threshold lies, so that silence checks can be
skipped where they would change nothing.
"""

from __future__ import annotations

import math

from streams.domain.scoring.compiled import index_right
from streams.domain.scoring.config import ScoringConfig
from streams.domain.scoring.score import Score, btyd_value


def fall_per_day(config: ScoringConfig, score: Score, signals: dict[str, float],
                 segment: str, now_d: float) -> float | None:
    """How many points a day the score is falling now, from the slopes of the curves its
    time-moving measures are on (caps ignored): an estimate, to guess when it next matters.
    A measure not yet past its first point adds nothing (it is flat there); None when no
    measure moves but one is waiting so: a customer still inside its usual gap is likely
    to send an event before any guess comes due."""
    compiled = config.compiled()
    plan = compiled.plans[score.profile]
    elapsed = plan.elapsed_by_name
    norms = compiled.norms(segment)
    rate = 0.0
    waiting = moving = False
    for c in score.contributions:
        mplan = elapsed.get(c.measure)
        if mplan is None or c.weight <= 0:
            continue
        xs, ys = mplan.xs, mplan.ys
        if mplan.kind == "btyd":
            later = btyd_value(config.btyd, signals, now_d + 1.0)
            if later is not None:
                rate += c.weight * (mplan.curve(c.value) - mplan.curve(later))
                moving = True
            continue
        if c.value < xs[0]:
            waiting = True
            continue
        if c.value >= xs[-1]:
            continue
        moving = True
        i = index_right(xs, c.value)
        rate += (c.weight * (ys[i - 1] - ys[i]) / (xs[i] - xs[i - 1])
                 / mplan.gap(signals, norms))
    if waiting and not moving:
        return None
    link = plan.link
    if link is not None:
        # the weights carry score / points: back to points a day, then through the link
        if score.points <= 0:
            return None
        p = score.score / 100.0
        rate *= score.points / score.score * link.slope * p * (1.0 - p) if p > 0 else 0.0
    return rate


def next_kink_d(config: ScoringConfig, score: Score, signals: dict[str, float],
                segment: str, now_d: float) -> float | None:
    """The first day after ``now_d`` at which a time-moving measure of the score reaches a
    point of its curve (where its slope changes), if any: up to then the score falls in a
    straight line (caps and a link aside)."""
    compiled = config.compiled()
    elapsed = compiled.plans[score.profile].elapsed_by_name
    norms = compiled.norms(segment)
    first: float | None = None
    for c in score.contributions:
        mplan = elapsed.get(c.measure)
        if mplan is None or mplan.kind == "btyd":
            continue
        value = c.value
        xs = mplan.xs
        i = index_right(xs, value)
        if i == len(xs):
            continue
        at = now_d + (xs[i] - value) * mplan.gap(signals, norms)
        if at > now_d and (first is None or at < first):
            first = at
    return first


def next_tenure_d(config: ScoringConfig, profile: str, tenure_d: float | None) -> float | None:
    """The next tenure threshold (a profile's or a measure's) above ``tenure_d``, if any."""
    if tenure_d is None:
        return None
    for threshold in config.plan(profile).tenures:
        if tenure_d < threshold:
            return threshold
    return None


def steady_until(
    config: ScoringConfig,
    signals: dict[str, float],
    *,
    now_d: float,
    segment: str,
    tenure_d: float | None,
    profile: str | None = None,
) -> float:
    """The day up to which, with no new signals, the score stays what it is at ``now_d``:
    ``now_d`` when it may change at once, ``inf`` when it never will.

    Only time moves a score between updates, through the elapsed measures and the tenure.
    The score holds while every elapsed measure of the customer's profile sits on a flat
    stretch of its curve (before its first point, past its last, or between two points of
    equal value) and no tenure threshold (a profile's ``when_tenure_below_d``, a measure's
    ``min_tenure_d``) is crossed."""
    compiled = config.compiled()
    name = profile if profile is not None else compiled.profile_for(segment, tenure_d)
    plan = compiled.plans[name]
    until = math.inf
    norms = None
    for mplan in plan.elapsed:
        base = signals.get(mplan.signal)
        if base is None:
            continue
        if mplan.kind == "btyd":
            return now_d  # expected purchases shrink continuously with time
        if norms is None:
            norms = compiled.norms(segment)
        per = mplan.gap(signals, norms)
        value = max(0.0, now_d - base) / per
        xs, ys = mplan.xs, mplan.ys
        if value >= xs[-1]:
            continue
        if value < xs[0]:
            end = xs[0]
        else:
            i = index_right(xs, value)
            if ys[i - 1] != ys[i]:
                return now_d
            end = xs[i]
        until = min(until, base + end * per)
    if tenure_d is not None:
        for threshold in plan.tenures:
            if tenure_d < threshold:
                until = min(until, now_d + threshold - tenure_d)
                break
    return max(until, now_d)
