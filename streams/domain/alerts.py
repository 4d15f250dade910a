"""The per-customer alert lifecycle: healthy -> watch -> at_risk -> recovered.

An episode starts when the score stays below ``enter_below`` for ``enter_after``
consecutive evaluations (and not within ``cooldown_days`` of the last episode's end); it
ends when the score stays at or above ``exit_above`` for ``exit_after`` evaluations. The
gap between the two thresholds is the hysteresis that keeps a flapping score from
producing a stream of alerts. Episode numbers make output ids deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from streams.domain.buckets import DAY_MS
from streams.domain.scoring import Alerts

Transition = Literal["enter", "exit"]


@dataclass(slots=True, init=False)
class AlertState:
    state: str = "healthy"  # healthy | watch | at_risk | recovered
    episode: int = 0
    below: int = 0
    above: int = 0
    since_ms: int | None = None
    ended_ms: int | None = None

    def __init__(self, state: str = "healthy", episode: int = 0, below: int = 0, above: int = 0,
                 since_ms: int | None = None, ended_ms: int | None = None) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.state = state
        self.episode = episode
        self.below = below
        self.above = above
        self.since_ms = since_ms
        self.ended_ms = ended_ms

    @property
    def active(self) -> bool:
        return self.state == "at_risk"

    def step(self, score: float, band: str, at_ms: int, rules: Alerts, *,
             may_enter: bool = True) -> Transition | None:
        """Feed one evaluation; return "enter" or "exit" when an episode starts or ends.
        ``may_enter`` False (a customer seen too briefly to judge) holds off a new one."""
        if self.active:
            self.above = self.above + 1 if score >= rules.exit_above else 0
            if self.above >= rules.exit_after:
                self.state = "recovered"
                self.ended_ms = at_ms
                self.above = 0
                return "exit"
            return None
        self.below = self.below + 1 if score < rules.enter_below else 0
        cooling = self.ended_ms is not None and (
            at_ms - self.ended_ms < rules.cooldown_days * DAY_MS)
        if self.below >= rules.enter_after and not cooling and may_enter:
            self.state = "at_risk"
            self.episode += 1
            self.since_ms = at_ms
            self.below = 0
            return "enter"
        if self.state != "recovered" or band == "healthy":
            self.state = "healthy" if band == "healthy" else "watch"
        return None

    def to_json(self) -> list[Any]:
        return [self.state, self.episode, self.below, self.above, self.since_ms, self.ended_ms]

    @classmethod
    def from_json(cls, data: list[Any]) -> AlertState:
        return cls(str(data[0]), int(data[1]), int(data[2]), int(data[3]), data[4], data[5])
