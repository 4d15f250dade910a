"""The customers of DOMAIN.md, as a business would meet them, through a real worker process
on the real broker: what does each one produce on the output topics?

Most personas run together through one worker (distinct customer ids, module scoped) in
phases, so that each customer's records reach the scorer in the order they happened; the
outputs are then checked persona by persona, and against the in-process replay of the same
records (parity). Sudden silence needs the worker's silence timer and runs on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.codec import build_codec
from streams.domain.scoring import ScoringConfig, interpolate, load_config
from streams.kafka_io import collect, make_producer, produce_records
from streams.processes import free_port
from streams.replay import LocalPipeline
from streams.settings import (
    TOPIC_AT_RISK,
    TOPIC_CHAMPIONS,
    TOPIC_DEAD_LETTER,
    TOPIC_HEALTH,
    TOPIC_RECOVERED,
    Settings,
)
from streams.topics import ensure_topics
from tests.integration.workers import WorkerProcess

pytestmark = pytest.mark.integration

Record = tuple[str, dict[str, Any]]
Output = tuple[str, str, dict[str, Any] | None]

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
OUTPUTS = [TOPIC_HEALTH, TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS, TOPIC_DEAD_LETTER]
ALERTS = ("CustomerAtRisk", "CustomerChampion")
PURCHASE_REASONS = {"purchase_lapse", "purchase_frequency_drop"}
SUPPORT_REASONS = {"open_tickets", "negative_sentiment", "low_csat", "nps_detractor"}


# ---- dated input records ------------------------------------------------------------------
def at(day: float) -> datetime:
    return T0 + timedelta(days=day)


def profile(customer: str, *, signup_day: float = -400.0, segment: str = "b2c",
            products: int = 1, mrr: int = 5000, cost: int = 1000,
            channels: Sequence[str] = ("email",), referrals: int = 0) -> Record:
    """The customer's profile, known from the day before its first event."""
    return ("ProfileChange", {
        "event_id": f"{customer}-profile", "customer_id": customer, "occurred_at": at(-1),
        "segment": segment, "signup_at": at(signup_day), "plan": "standard",
        "mrr_minor": mrr, "cost_to_serve_minor": cost, "currency": "EUR",
        "products": products, "referrals": referrals,
        "consent": {c: c in channels for c in ("email", "sms", "phone", "push")}})


def purchases(customer: str, days: Iterable[float], amount: int = 2500) -> list[Record]:
    return [("Purchase", {
        "event_id": f"{customer}-p-{n}", "customer_id": customer, "occurred_at": at(day),
        "order_id": f"{customer}-o-{n}", "amount_minor": amount, "currency": "EUR",
        "items": 1, "channel": "web"}) for n, day in enumerate(days)]


def activity(customer: str, days: Iterable[float], kind: str = "login") -> list[Record]:
    return [("Engagement", {
        "event_id": f"{customer}-e-{n}", "customer_id": customer, "occurred_at": at(day),
        "kind": kind, "count": 1, "duration_s": None, "feature": None})
        for n, day in enumerate(days)]


def support(customer: str, n: int, day: float, kind: str, **fields: Any) -> Record:
    record = {"event_id": f"{customer}-s-{n}", "customer_id": customer,
              "occurred_at": at(day), "kind": kind, "ticket_id": None, "csat": None,
              "nps": None, "sentiment": None, "category": None}
    record.update(fields)
    return ("SupportEvent", record)


def weekly(weeks: int, offset: float = 0.0) -> list[float]:
    return [7.0 * w + offset for w in range(weeks)]


def in_event_time_order(*histories: list[Record]) -> list[Record]:
    """All customers' records merged in event-time order (profiles first on a tie)."""
    merged = [r for history in histories for r in history]
    return sorted(merged, key=lambda r: (r[1]["occurred_at"], r[0] != "ProfileChange"))


def phases(records: list[Record], lateness: timedelta) -> list[list[Record]]:
    """Cut time-ordered records into batches the worker may take in any order.

    A worker consumes its input topics concurrently, so within a batch each customer's
    records come from one topic (they share a partition and keep their order) and no
    record is older than the batch's newest by more than the allowed lateness (the
    event-time watermark would reject it). Batches are produced one after the other.
    """
    batches: list[list[Record]] = []
    batch: list[Record] = []
    topic_of: dict[str, str] = {}
    start: datetime | None = None
    for type_name, record in records:
        customer, when = record["customer_id"], record["occurred_at"]
        if batch and (start is None or when - start > lateness
                      or topic_of.get(customer, type_name) != type_name):
            batches.append(batch)
            batch, topic_of, start = [], {}, None
        start = when if start is None else start
        batch.append((type_name, record))
        topic_of[customer] = type_name
    if batch:
        batches.append(batch)
    return batches


def produce_in_phases(settings: Settings, worker: WorkerProcess, records: list[Record], *,
                      metric: str, **labels: str) -> None:
    """Produce each phase once the worker has taken in the previous one (``metric``)."""
    codec = build_codec(settings)
    producer = make_producer(settings, **{"linger.ms": 0})
    done = worker.metric(metric, **labels)
    for batch in phases(records, timedelta(seconds=settings.allowed_lateness_s)):
        produce_records(settings, codec, batch, producer=producer)
        done += len(batch)
        worker.wait_metric(metric, done, **labels)


# ---- the personas -----------------------------------------------------------------------
def steady_buyer(c: str) -> list[Record]:
    """Buys every week and uses the app twice a week, for 16 weeks."""
    return [profile(c), *purchases(c, weekly(16)),
            *activity(c, sorted(weekly(16, 1.0) + weekly(16, 4.0)))]


def slowing_buyer(c: str) -> list[Record]:
    """Weekly for 8 weeks, then 10, 14 and 21 days apart, then no more purchases; still
    opens the weekly newsletter (which is what gets it re-scored)."""
    return [profile(c, channels=("email",)),
            *purchases(c, [*weekly(8), 59.0, 73.0, 94.0]),
            *activity(c, weekly(22, 3.0), kind="email_open")]


def complaining_customer(c: str) -> list[Record]:
    """A regular customer (weekly purchases, app twice a week) whose complaints pile up
    from week 9: four tickets nobody resolves, negative sentiment, CSAT 1, NPS 2."""
    complaints = [
        support(c, 0, 57.0, "ticket_opened", ticket_id=f"{c}-t1", sentiment=-0.6,
                category="product_quality"),
        support(c, 1, 60.0, "ticket_opened", ticket_id=f"{c}-t2", sentiment=-0.8,
                category="product_quality"),
        support(c, 2, 63.0, "csat_response", csat=1),
        support(c, 3, 66.0, "ticket_opened", ticket_id=f"{c}-t3", sentiment=-0.9,
                category="billing"),
        support(c, 4, 69.0, "nps_response", nps=2, sentiment=-0.7),
        support(c, 5, 71.0, "ticket_opened", ticket_id=f"{c}-t4", sentiment=-0.8,
                category="product_quality"),
    ]
    return [profile(c), *purchases(c, weekly(16)),
            *activity(c, sorted(weekly(16, 1.0) + weekly(16, 4.0))), *complaints]


B2B_SIGNUP_DAY = -60.0  # day 90 of the account is day 30 of the history
B2B_MRR, B2B_COST = 20000, 16000  # profitability 20%: below the 30% threshold


def one_product_b2b(c: str) -> list[Record]:
    """A b2b account 60 days old, one product, monthly invoices; its team uses the product
    every working day for 10 weeks, then stops (the invoices keep coming)."""
    workdays = [7.0 * w + d for w in range(10) for d in range(5)]
    return [profile(c, segment="b2b", signup_day=B2B_SIGNUP_DAY, products=1,
                    mrr=B2B_MRR, cost=B2B_COST),
            *purchases(c, [0.0, 30.0, 60.0, 90.0, 120.0], amount=B2B_MRR),
            *activity(c, workdays)]


def champion(c: str) -> list[Record]:
    """Two orders of 90.00 a week for 12 weeks, weekly app use, an NPS 10 in week 3."""
    return [profile(c, channels=("email", "push")),
            *purchases(c, sorted(weekly(12, 1.0) + weekly(12, 4.0)), amount=9000),
            *activity(c, weekly(12, 2.0)),
            support(c, 0, 20.0, "nps_response", nps=10, sentiment=0.8)]


def lapsing_without_consent(c: str) -> list[Record]:
    """Weekly for 8 weeks, then stops buying; keeps logging in; consented to nothing."""
    return [profile(c, channels=()), *purchases(c, weekly(8)), *activity(c, weekly(15, 3.0))]


PERSONAS: dict[str, Callable[[str], list[Record]]] = {
    "steady": steady_buyer,
    "slowing": slowing_buyer,
    "complainer": complaining_customer,
    "b2b-one-product": one_product_b2b,
    "champion": champion,
    "no-consent": lapsing_without_consent,
}


def configured_churn_reason(scoring: ScoringConfig, alert: Mapping[str, Any]) -> str:
    """The churn reason the scoring config gives the alert's reasons: each reason code is a
    measure's, each measure names a churn reason, and the churn reason whose reasons cost
    the score the most points together is the likely one."""
    churn_reason_of = {m.reason: m.churn_reason for m in scoring.measures.values()}
    churn_reason_of.update({g.critical_reason: g.critical_churn_reason or ""
                            for g in scoring.groups.values() if g.critical_below is not None})
    lost: dict[str, float] = {}
    for reason in alert["reasons"]:
        key = churn_reason_of[reason["code"]]
        lost[key] = lost.get(key, 0.0) - reason["contribution"]
    return max(lost, key=lambda key: lost[key])


# ---- one worker for the deterministic personas ------------------------------------------
@dataclass
class PersonaRun:
    settings: Settings
    scoring: ScoringConfig
    records: list[Record]
    outputs: list[Output]  # what the worker published, as read back from the broker
    replayed: list[tuple[str, dict[str, Any]]]  # LocalPipeline on the same records

    def of(self, customer: str, type_name: str) -> list[dict[str, Any]]:
        return [r for _, t, r in self.outputs
                if t == type_name and r is not None and r.get("customer_id") == customer]

    def tenure_days(self, record: Mapping[str, Any], signup_day: float) -> float:
        return (record["occurred_at"] - at(signup_day)) / timedelta(days=1)


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonaRun]:
    """Every deterministic persona through one worker; no silence ticks (the timer interval
    is an hour), so the outputs depend only on the records and their order."""
    tmp = tmp_path_factory.mktemp("personas")
    settings = Settings(  # as the make_settings fixture builds them, for the whole module
        _env_file=None, kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t-{uuid.uuid4().hex[:8]}-", app_id=f"churnwatch-{uuid.uuid4().hex[:12]}",
        partitions=2, store="memory://", data_dir=tmp, web_port=free_port(),
        clock="event", lapse_check_interval_s=3600)
    ensure_topics(settings)
    records = in_event_time_order(*(make(c) for c, make in PERSONAS.items()))
    replayed = LocalPipeline(settings).run(records)
    worker = WorkerProcess(settings, tmp / "worker.log")
    try:
        worker.wait_ready()
        produce_in_phases(settings, worker, records,
                          metric="churnwatch_events_applied_total")
        outputs = collect(settings, build_codec(settings), OUTPUTS, timeout=60,
                          until=lambda got: len(got) >= len(replayed))
        yield PersonaRun(settings, load_config(settings.scoring_config), records, outputs,
                         replayed)
    finally:
        worker.stop()


def test_worker_matches_the_in_process_replay(run: PersonaRun) -> None:
    assert [r for _, t, r in run.outputs if t == "DeadLetter"] == []
    alerts = {r["event_id"]: r for _, t, r in run.outputs if t in ALERTS and r is not None}
    expected = {r["event_id"]: r for t, r in run.replayed if t in ALERTS}
    assert set(alerts) == set(expected)
    assert alerts == expected
    health = sorted((r["customer_id"], r["event_id"]) for _, t, r in run.outputs
                    if t == "HealthScoreChanged" and r is not None)
    assert health == sorted((r["customer_id"], r["event_id"]) for t, r in run.replayed
                            if t == "HealthScoreChanged")


def test_steady_buyer_is_never_at_risk(run: PersonaRun) -> None:
    health = run.of("steady", "HealthScoreChanged")
    assert health, "the steady buyer was never scored"
    assert all(h["band"] != "at_risk" for h in health)
    assert health[-1]["band"] == "healthy"
    assert run.of("steady", "CustomerAtRisk") == []


def test_slowing_buyer_is_flagged_once_for_its_purchases(run: PersonaRun) -> None:
    (alert,) = run.of("slowing", "CustomerAtRisk")
    assert alert["occurred_at"] > at(94.0)  # after its last purchase
    codes = [r["code"] for r in alert["reasons"]]
    assert PURCHASE_REASONS & set(codes[:3]), codes
    assert alert["churn_reason"] == "roi_not_seen"
    assert alert["route_to_team"] == "customer_success"
    assert alert["segment"] == "b2c"
    assert alert["contactable"] is True and alert["channels"] == ["email"]
    assert "20% off" in alert["suggested_play"]
    assert run.of("slowing", "CustomerRecovered") == []


def test_complaining_customer_is_flagged_for_support_reasons(run: PersonaRun) -> None:
    health = run.of("complainer", "HealthScoreChanged")
    alerts = run.of("complainer", "CustomerAtRisk")
    feedback = {"support_open", "support_sentiment", "support_csat", "nps"}
    assert len(alerts) == 1, (
        f"{len(alerts)} at-risk events for a customer with 4 unresolved tickets, negative "
        "sentiment, CSAT 1 and NPS 2; published scores: "
        f"{[(h['occurred_at'].date().isoformat(), h['score'], h['band']) for h in health]}; "
        "feedback in the last one: "
        f"{[c for c in health[-1]['contributions'] if c['signal'] in feedback]}")
    (alert,) = alerts
    codes = [r["code"] for r in alert["reasons"]]
    assert SUPPORT_REASONS & set(codes), codes
    churn_reason = configured_churn_reason(run.scoring, alert)
    assert alert["churn_reason"] == churn_reason
    assert alert["route_to_team"] == run.scoring.churn_reasons[churn_reason].team


def test_one_product_b2b_account_past_day_90(run: PersonaRun) -> None:
    upsell = run.scoring.measures["no_upsell_by_day_90"]
    low = interpolate(upsell.curve, 1.0)  # one product
    health = run.of("b2b-one-product", "HealthScoreChanged")
    past_90 = [h for h in health if run.tenure_days(h, B2B_SIGNUP_DAY) >= 90]
    before_90 = [h for h in health if run.tenure_days(h, B2B_SIGNUP_DAY) < 90]
    assert past_90 and before_90
    for h in before_90:
        assert h["profile"] == "onboarding"
        assert "no_upsell_by_day_90" not in {c["signal"] for c in h["contributions"]}
    for h in past_90:
        assert h["profile"] == "b2b"
        points = {c["signal"]: c["points"] for c in h["contributions"]}
        assert points["no_upsell_by_day_90"] == low < 50
    # its team stopped using the product: at risk, and the fit matrix says what it is worth
    (alert,) = run.of("b2b-one-product", "CustomerAtRisk")
    assert alert["segment"] == "b2b"
    assert alert["profitability"] == pytest.approx((B2B_MRR - B2B_COST) / B2B_MRR)
    assert alert["fit_status"] == "maintain"  # 0 <= 20% < the 30% threshold
    assert alert["unprofitable"] is True
    assert alert["reasons"][0]["code"] == "engagement_lapse"
    churn_reason = configured_churn_reason(run.scoring, alert)
    assert alert["churn_reason"] == churn_reason
    assert alert["route_to_team"] == run.scoring.churn_reasons[churn_reason].team
    assert alert["suggested_play"] == run.scoring.play("b2b", churn_reason)


def test_champion_is_rewarded_not_rescued(run: PersonaRun) -> None:
    rules = {f"{r.signal} >= {r.at_least:g}" for r in run.scoring.champion.rules}
    found = [(topic, r) for topic, t, r in run.outputs
             if t == "CustomerChampion" and r is not None and r["customer_id"] == "champion"]
    assert len(found) == 1, found
    ((topic, record),) = found
    assert topic == TOPIC_CHAMPIONS
    assert record["event_id"] == "champion:champion:1"
    assert record["qualified_by"] and set(record["qualified_by"]) <= rules
    assert "purchase.spend_28d >= 50000" in record["qualified_by"]
    assert record["score"] >= run.scoring.champion.min_score
    assert record["reward"] == run.scoring.champion.reward
    assert record["contactable"] is True and record["channels"] == ["email", "push"]
    assert run.of("champion", "CustomerAtRisk") == []
    others = {r["customer_id"] for _, t, r in run.outputs
              if t == "CustomerChampion" and r is not None}
    assert others == {"champion"}


def test_customer_without_consent_is_reported_but_not_contactable(run: PersonaRun) -> None:
    (alert,) = run.of("no-consent", "CustomerAtRisk")
    assert alert["contactable"] is False
    assert alert["channels"] == []
    assert alert["reasons"][0]["code"] == "purchase_lapse"


# ---- sudden silence: the timer, not an event, flags the customer ------------------------
def test_sudden_silence_is_caught_by_the_timer(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(clock="event", lapse_check_interval_s=0.5)
    ensure_topics(settings)
    last_purchase = 49.0
    silent = [profile("silent"), *purchases("silent", weekly(8))]  # days 0..49, then nothing
    # other customers keep buying; their events move the event-time watermark on
    others = [*purchases("busy-1", [float(d) for d in range(0, 101, 2)]),
              *purchases("busy-2", [float(d) for d in range(1, 101, 2)])]
    records = in_event_time_order(silent, others)
    watermark = max(r["occurred_at"] for _, r in records) - timedelta(
        seconds=settings.allowed_lateness_s)

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        produce_in_phases(settings, worker, records, metric="churnwatch_events_accepted_total")
        codec = build_codec(settings)
        outputs = collect(settings, codec, OUTPUTS, timeout=60, until=lambda got: any(
            t == "CustomerAtRisk" and r is not None and r["customer_id"] == "silent"
            for _, t, r in got))
        assert worker.metric("churnwatch_lapse_checks_total") > 0
    finally:
        worker.stop()

    mine = [(t, r) for _, t, r in outputs if r is not None and r.get("customer_id") == "silent"]
    assert [r for _, t, r in outputs if t == "DeadLetter"] == []
    (alert,) = [r for t, r in mine if t == "CustomerAtRisk"]
    health = [r for t, r in mine if t == "HealthScoreChanged"]
    (entered,) = [h for h in health if h["band"] == "at_risk" and h["previous_band"] != "at_risk"]
    assert entered["trigger"] == "timer"
    assert all(h["trigger"] == "timer" for h in health
               if h["occurred_at"] > at(last_purchase))
    assert alert["occurred_at"] == entered["occurred_at"]
    assert at(last_purchase) < alert["occurred_at"] <= watermark
    assert alert["reasons"][0]["code"] == "purchase_lapse"
    assert alert["churn_reason"] == "roi_not_seen"

    # the in-process replay, ticking after every record, flags the same episode (its tick
    # times differ from the worker's half-second timer, so only the identity is compared)
    replayed = LocalPipeline(settings).run(records, ticks=True)
    assert [r["event_id"] for t, r in replayed
            if t == "CustomerAtRisk" and r["customer_id"] == "silent"] == [alert["event_id"]]
