"""The live customer lookup: what a worker answers on ``GET /customers/{id}`` and
``GET /customers?band=...``, from the state its scorer keeps (the health table).

Pure functions over a customer's stored health: no Faust, no I/O. ``streams.web`` serves
them, checks the bearer token, and routes a request to the worker that owns the customer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from streams.domain.health import CustomerHealth, score_at, segment_of
from streams.domain.scoring import ScoringConfig
from streams.domain.stored import loads

#: Band names a list may be asked for.
BANDS = ("healthy", "watch", "at_risk")
#: Most customers one list answer holds.
MAX_LIMIT = 1000


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in
    constant time)."""
    if not header or not token:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def customer_health(customer_id: str, raw: bytes, config: ScoringConfig) -> dict[str, Any]:
    """The answer for one customer: its score and band as of its last evaluation, what
    each measure contributed and why, its alert state and episode, segment and consent."""
    health = CustomerHealth.from_json(loads(raw))
    profile = health.profile
    segment = segment_of(profile)
    contributions: list[dict[str, Any]] = []
    score = band = version = None
    if health.as_of_ms is not None:
        scored = score_at(config, health, health.as_of_ms)
        if scored is not None:
            score, band, version = scored.score, scored.band, scored.config_version
            contributions = sorted((
                {"measure": c.measure, "value": round(c.value, 4),
                 "points": round(c.points, 2), "weight": round(c.weight, 4),
                 "contribution": round(c.contribution, 3),
                 "reason": config.describe(c.measure).text}
                for c in scored.contributions), key=lambda c: -(100 * c["weight"]
                                                                - c["contribution"]))
    alert = health.alert
    channels = profile.consent.channels() if profile is not None else []
    return {
        "customer_id": customer_id,
        "score": score,
        "band": band,
        "published_score": health.published_score,
        "published_band": health.published_band,
        "evaluated_at": _iso(health.as_of_ms),
        "segment": segment,
        "contributions": contributions,
        "alert": {"state": alert.state,
                  "episode_id": f"{customer_id}:{alert.episode}" if alert.episode else None,
                  "at_risk_since": _iso(alert.since_ms) if alert.active else None},
        "consent": {"contactable": bool(channels), "channels": channels},
        "next_check_at": _iso(health.due_ms),
        "config_version": version,
    }


def band_members(items: Iterable[tuple[bytes, bytes]], band: str,
                 limit: int) -> list[dict[str, Any]]:
    """This worker's customers whose published band is ``band``, worst score first."""
    found: list[tuple[float, str, str | None, str]] = []
    for key, raw in items:
        data = loads(raw)
        if data.get("b") != band or data.get("p") is None:
            continue
        alert = data.get("x") or ["healthy"]
        found.append((float(data["p"]), key.decode(), _iso(data.get("a")), str(alert[0])))
    found.sort()
    return [{"customer_id": customer, "score": score, "band": band, "evaluated_at": at,
             "alert_state": state} for score, customer, at, state in found[:limit]]
