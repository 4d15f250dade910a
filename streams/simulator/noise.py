"""Noisy delivery: each genuine record once with an arrival time (some late), plus the
duplicates, malformed items and invalid copies drawn for it."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from streams.scenario import Record
from streams.simulator.draws import log_uniform
from streams.simulator.model import (
    DUPLICATE,
    INVALID,
    LATE,
    MALFORMED,
    MALFORMED_KINDS,
    MS_PER_DAY,
    ON_TIME,
    VERY_LATE,
    Item,
    Malformed,
    SimulationConfig,
    customer_id,
    json_line,
    json_record,
)


def _garbage(rng: random.Random) -> bytes:
    """Bytes that are no record: control characters, symbols and a few non-ASCII ones.

    Always valid UTF-8 without line breaks, so that a JSON Lines reader sees one bad
    line rather than a broken file."""
    alphabet = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x00, 0x09)]
    alphabet += [chr(c) for c in range(0x0E, 0x1C)] + ["\u00e9", "\u00ff", "\u0394", "\ufffd"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 120)))
    return ("\u00ff\u00fe" + text).encode("utf-8")


def _malformed(rng: random.Random, type_name: str, record: Mapping[str, Any]) -> Malformed:
    kind = rng.choice(MALFORMED_KINDS)
    cid = str(record["customer_id"])
    if kind == "garbage_bytes":
        return Malformed(type_name, cid, _garbage(rng), kind)
    body = json_record(type_name, record)
    if kind == "truncated_json":
        line = json_line(type_name, record)
        return Malformed(type_name, cid, line[: rng.randint(1, len(line) - 1)].encode(), kind)
    if kind == "missing_field":
        if rng.random() < 0.25:
            envelope: dict[str, Any] = {"record": body}  # no "type"
        else:
            del body[rng.choice(("event_id", "customer_id", "occurred_at"))]
            envelope = {"type": type_name, "record": body}
    else:  # wrong_type
        if rng.random() < 0.5:
            body["occurred_at"] = int(record["occurred_at"].timestamp() * 1000)
        else:
            body["customer_id"] = rng.randint(1, 10**6)
        envelope = {"type": type_name, "record": body}
    payload = json.dumps(envelope, separators=(",", ":")).encode()
    return Malformed(type_name, cid, payload, kind)


def _invalid(
    rng: random.Random, type_name: str, record: Mapping[str, Any], event_id: str
) -> Record:
    """A well-formed copy of ``record`` with a new id and one absurd value."""
    out = dict(record)
    out["event_id"] = event_id
    if type_name == "ProfileChange":
        out["consent"] = dict(record["consent"])
    choices = {
        "Purchase": ("negative_amount", "negative_amount", "future_time", "empty_customer_id"),
        "SupportEvent": (
            "nps_out_of_range",
            "csat_out_of_range",
            "sentiment_out_of_range",
            "future_time",
            "empty_customer_id",
        ),
        "Engagement": ("negative_count", "future_time", "empty_customer_id"),
        "ProfileChange": ("signup_after_event", "future_time", "empty_customer_id"),
        "BillingEvent": ("negative_amount", "renewal_too_far", "future_time", "empty_customer_id"),
    }[type_name]
    if type_name == "BillingEvent" and record["amount_minor"] is None:
        choices = choices[1:]  # a cancellation has no amount to make negative
    kind = rng.choice(choices)
    if kind == "negative_amount":
        out["amount_minor"] = -abs(int(record["amount_minor"]) or 100)
    elif kind == "nps_out_of_range":
        out.update(kind="nps_response", ticket_id=None, csat=None, nps=rng.choice((11, 14, 99)))
    elif kind == "csat_out_of_range":
        out.update(kind="csat_response", csat=rng.choice((0, 6, 9)), nps=None)
    elif kind == "sentiment_out_of_range":
        out["sentiment"] = rng.choice((-3.5, 1.5, 7.0))
    elif kind == "negative_count":
        out["count"] = -rng.randint(1, 50)
    elif kind == "renewal_too_far":
        out["renewal_at"] = record["occurred_at"] + timedelta(days=rng.randint(900, 3_000))
    elif kind == "signup_after_event":
        out["signup_at"] = record["occurred_at"] + timedelta(days=rng.randint(30, 400))
    elif kind == "future_time":
        out["occurred_at"] = record["occurred_at"] + timedelta(days=5 * 365)
    else:
        out["customer_id"] = ""
    return type_name, out


# (arrival ms, customer index, order within the customer, item, delivery kind)
Delivery = tuple[int, int, int, Item, int]


def deliver(index: int, config: SimulationConfig, records: Sequence[Record]) -> list[Delivery]:
    """Every genuine record once, plus the noise drawn for it, with arrival times."""
    rng = random.Random(f"churnwatch-sim-noise:{config.seed}:{index}")
    very_late = config.very_late_share
    late = very_late + config.late_share
    out: list[Delivery] = []
    invalid = 0
    for type_name, record in records:
        arrival = int(record["occurred_at"].timestamp()) * 1000
        how = ON_TIME
        draw = rng.random()
        if draw < very_late:
            arrival += int(rng.uniform(4.0, 10.0) * MS_PER_DAY)
            how = VERY_LATE
        elif draw < late:
            arrival += int(log_uniform(rng, 60.0, 48 * 3600.0) * 1000)
            how = LATE
        out.append((arrival, index, len(out), (type_name, record), how))
        if rng.random() < config.duplicate_share:
            copy = dict(record)
            if type_name == "ProfileChange":
                copy["consent"] = dict(record["consent"])
            again = arrival + int(log_uniform(rng, 1.0, 6 * 3600.0) * 1000)
            out.append((again, index, len(out), (type_name, copy), DUPLICATE))
        if rng.random() < config.malformed_share:
            bad = _malformed(rng, type_name, record)
            out.append((arrival + rng.randint(0, 60_000), index, len(out), bad, MALFORMED))
        if rng.random() < config.invalid_share:
            invalid += 1
            item = _invalid(rng, type_name, record, f"{customer_id(index)}-x-{invalid}")
            out.append((arrival + rng.randint(0, 60_000), index, len(out), item, INVALID))
    return out
