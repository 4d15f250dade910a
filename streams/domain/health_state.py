"""``CustomerHealth``: the score's per-customer state, and the form the health table stores.

The state holds the customer's signals (one family's replaced by each of its updates), what
was last published, the alert and champion states, the score's averages for the trends and
the next silence check. :meth:`CustomerHealth.to_json` and :meth:`CustomerHealth.from_json`
own its stored form: the usual signals by their index in :data:`STORED_SIGNALS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from streams.domain.alerts import AlertState
from streams.domain.buckets import DAY_MS
from streams.domain.features import ProfileState
from streams.domain.rounding import round_to

#: Signal names stored as their index here (a short key) in the health table. Append
#: only: the index is what a stored state holds. Other names are stored as they are.
STORED_SIGNALS: Final = (
    "purchase.last_at_d", "purchase.orders_total", "purchase.gap_mean_d",
    "purchase.gap_std_d", "purchase.orders_28d", "purchase.spend_28d",
    "purchase.freq_trend", "purchase.spend_trend", "engagement.last_at_d",
    "engagement.gap_mean_d", "engagement.weeks_active_4", "engagement.trend",
    "support.open_tickets", "support.tickets_28d", "support.sentiment_28d",
    "support.negative_28d", "support.csat", "support.nps", "profile.products",
    "profile.signup_d", "profile.referrals", "purchase.first_at_d", "purchase.span_d",
    "purchase.aov", "purchase.days_90", "engagement.active_days", "purchase.currency",
)
_INDEX: Final = {name: i for i, name in enumerate(STORED_SIGNALS)}
#: Signals are kept to this many decimals (a day's fraction to a second).
SIGNAL_DIGITS: Final = 5


@dataclass(slots=True, init=False)
class CustomerHealth:
    signals: dict[str, float] = field(default_factory=dict)
    first_ms: int | None = None  # event time of the earliest update seen
    as_of_ms: int | None = None
    published_score: float | None = None
    published_band: str | None = None
    alert: AlertState = field(default_factory=AlertState)
    due_ms: int | None = None  # next silence check
    partition: int = 0  # where this customer's state lives
    ema: tuple[float, float, int] | None = None  # score averages (7 d, 30 d) and their time
    champion: int = 0  # champion episodes so far; negative while one is open
    profile: ProfileState | None = None  # as brought by the customer's profile updates
    #: the next check is a lower bound of the first that may act, not that check itself:
    #: when it comes due, the checks from there are searched first (see next_check_ms)
    provisional: bool = False

    def __init__(self, signals: dict[str, float] | None = None, first_ms: int | None = None,
                 as_of_ms: int | None = None, published_score: float | None = None,
                 published_band: str | None = None, alert: AlertState | None = None,
                 due_ms: int | None = None, partition: int = 0,
                 ema: tuple[float, float, int] | None = None, champion: int = 0,
                 profile: ProfileState | None = None, provisional: bool = False) -> None:
        # written out: compiled (mypyc), a dataclass's own __init__ runs as Python
        self.signals = {} if signals is None else signals
        self.first_ms = first_ms
        self.as_of_ms = as_of_ms
        self.published_score = published_score
        self.published_band = published_band
        self.alert = AlertState() if alert is None else alert
        self.due_ms = due_ms
        self.partition = partition
        self.ema = ema
        self.champion = champion
        self.profile = profile
        self.provisional = provisional

    def trends(self, score: float, at_ms: int) -> tuple[float | None, float | None]:
        """Score minus its 7- and 30-day exponentially weighted averages so far (the score's
        change over about 7 and 30 days); then fold the score into the averages."""
        if self.ema is None:
            self.ema = (score, score, at_ms)
            return None, None
        ema7, ema30, since = self.ema
        trend = (round_to(score - ema7, 2), round_to(score - ema30, 2))
        days = max(0, at_ms - since) / DAY_MS
        ema7 += (1 - math.exp(-days / 7)) * (score - ema7)
        ema30 += (1 - math.exp(-days / 30)) * (score - ema30)
        self.ema = (round_to(ema7, 3), round_to(ema30, 3), max(at_ms, since))
        return trend

    def update_signals(self, family: str, at_ms: int, values: dict[str, float]) -> None:
        """Replace one family's signals. An update describes the family's whole state
        (a late event included), and a family's updates for a customer arrive in the order
        they were made (one partition), so the latest update always wins."""
        prefix = family + "."
        for name in [n for n in self.signals if n.startswith(prefix)]:
            del self.signals[name]
        # rounded as the table stores them, so a replay that keeps the objects scores with
        # exactly the values a worker reads back
        self.signals.update({k: round_to(v, SIGNAL_DIGITS) for k, v in values.items()})
        self.first_ms = at_ms if self.first_ms is None else min(self.first_ms, at_ms)

    def to_json(self) -> dict[str, Any]:
        stored: list[float | int | None] = [None] * len(STORED_SIGNALS)
        others: dict[str, float] = {}
        for name, value in self.signals.items():
            index = _INDEX.get(name)
            if index is None:
                others[name] = round_to(value, SIGNAL_DIGITS)
            else:
                stored[index] = _short(round_to(value, SIGNAL_DIGITS))
        while stored and stored[-1] is None:
            stored.pop()
        data: dict[str, Any] = {"s": stored}
        if others:
            data["o"] = others
        return {**data, "f": self.first_ms,
                "a": self.as_of_ms, "p": self.published_score, "b": self.published_band,
                "x": self.alert.to_json(), "d": self.due_ms, "q": self.partition,
                "e": list(self.ema) if self.ema else None, "c": self.champion,
                "pf": self.profile.snapshot() if self.profile is not None else None,
                **({"v": 1} if self.provisional else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerHealth:
        """From :meth:`to_json`, or from the former ``s`` object (index or name -> value)."""
        stored = data["s"]
        if isinstance(stored, dict):
            signals = {STORED_SIGNALS[int(k)] if k.isdigit() else k: v
                       for k, v in stored.items()}
        else:
            signals = {STORED_SIGNALS[i]: float(v) for i, v in enumerate(stored)
                       if v is not None}
            signals.update(data.get("o", {}))
        return cls(signals, data.get("f"), data["a"],
                   data["p"], data["b"], AlertState.from_json(data["x"]), data.get("d"),
                   int(data.get("q", 0)),
                   (float(e[0]), float(e[1]), int(e[2])) if (e := data.get("e")) else None,
                   int(data.get("c", 0)),
                   ProfileState.from_json(pf, 0) if (pf := data.get("pf")) else None,
                   bool(data.get("v", 0)))


def _short(value: float) -> float | int:
    """A whole number written without its ``.0`` (read back as the same float; -0.0 kept).
    (``float | int``, not ``float``: compiled, a ``float`` result would be a float again.)"""
    if float(value).is_integer() and (value != 0 or math.copysign(1.0, value) > 0):
        return int(value)
    return value
