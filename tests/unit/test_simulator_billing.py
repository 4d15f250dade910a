"""The simulator's subscriptions: b2b billing events, the involuntary and downgrading
personas, and what the scorer makes of them."""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from streams.codec import build_codec, to_json_record
from streams.domain.events import IN_FUTURE, InvalidEvent, check_event_time
from streams.domain.scoring import load_config
from streams.families import parse_event
from streams.families.billing import KINDS
from streams.replay import LocalPipeline
from streams.settings import Settings
from streams.simulator import (
    B2B_MIX,
    B2C_MIX,
    INVALID,
    PERSONAS,
    Simulation,
    SimulationConfig,
    json_record,
    simulate,
)

DAY = timedelta(days=1)
NEW_PERSONAS = ("involuntary", "downgrading")
#: personas that never leave: their subscription is never cancelled
STAYING = {"steady", "champion", "recovering"}

Rows = list[tuple[str, dict]]


@pytest.fixture(scope="module")
def subscribers() -> Simulation:
    """A b2b population large enough to hold a few dozen of each new persona."""
    return simulate(SimulationConfig(customers=1_200, days=240, seed=21, b2b_share=1.0))


@pytest.fixture(scope="module")
def histories(subscribers: Simulation) -> dict[str, Rows]:
    """Each subscriber's genuine records in event-time order."""
    return by_customer(subscribers)


def by_customer(sim: Simulation) -> dict[str, Rows]:
    out: dict[str, Rows] = defaultdict(list)
    for type_name, record in sim.genuine():
        out[record["customer_id"]].append((type_name, record))
    for rows in out.values():
        rows.sort(key=lambda r: r[1]["occurred_at"])
    return out


def billing(rows: Rows) -> list[dict]:
    return [r for t, r in rows if t == "BillingEvent"]


def of(sim: Simulation, persona: str) -> list:
    return [row for row in sim.truth if row.persona == persona]


def dunning(history: list[dict]) -> list[dict]:
    """The billing events since the latest renewal or recovered payment."""
    settled = [i for i, r in enumerate(history)
               if r["kind"] in ("subscription_renewed", "payment_recovered")]
    return history[settled[-1] + 1:] if settled else history


def weekly_logins(rows: Rows, since: datetime, until: datetime) -> float:
    """Team members active per week (b2b logins count the users active that day)."""
    users = sum(r["count"] for t, r in rows
                if t == "Engagement" and r["kind"] == "login" and since <= r["occurred_at"] < until)
    return users / ((until - since) / (7 * DAY))


# --------------------------------------------------------------------------- population


def test_the_new_personas_are_b2b_shares_taken_from_steady():
    b2b = dict(B2B_MIX)
    assert {p for p, _ in B2C_MIX}.isdisjoint(NEW_PERSONAS)
    assert all(p in PERSONAS and 0 < b2b[p] <= 0.05 for p in NEW_PERSONAS)
    assert b2b["steady"] + b2b["involuntary"] + b2b["downgrading"] == pytest.approx(0.52)
    # right after steady in the draw, so that no other persona changes its customers
    assert [p for p, _ in B2B_MIX][:3] == ["steady", *NEW_PERSONAS]


def test_both_personas_are_drawn_and_counted_like_the_others(subscribers: Simulation):
    counts = subscribers.counts
    for persona in NEW_PERSONAS:
        rows = of(subscribers, persona)
        assert len(rows) == counts.personas[persona] >= 15
        assert all(row.segment == "b2b" for row in rows)
        assert counts.churners_by_persona[persona] == sum(row.churned for row in rows)
    mixed = simulate(SimulationConfig(customers=1_000, days=30, seed=2))
    assert all(row.segment == "b2b" for row in mixed.truth if row.persona in NEW_PERSONAS)
    assert all(mixed.counts.personas[p] > 0 for p in NEW_PERSONAS)


def test_subscribers_emit_billing_events_and_shoppers_do_not():
    sim = simulate(SimulationConfig(customers=400, days=120, seed=5))
    segment = {row.customer_id: row.segment for row in sim.truth}
    rows = by_customer(sim)
    billed = {c for c, history in rows.items() if billing(history)}
    assert sim.counts.records["BillingEvent"] > 0
    assert all(segment[c] == "b2b" for c in billed)
    b2b = [c for c, s in segment.items() if s == "b2b"]
    assert len(billed) > 0.9 * len(b2b)  # four months: every subscriber renews or leaves


def test_subscriptions_renew_monthly_at_the_current_mrr(subscribers: Simulation,
                                                       histories: dict[str, Rows]):
    renewals = 0
    for rows in histories.values():
        mrr = None
        for type_name, record in rows:
            if type_name == "ProfileChange":
                mrr = record["mrr_minor"]
            elif type_name == "BillingEvent" and record["kind"] == "subscription_renewed":
                renewals += 1
                assert record["amount_minor"] == mrr and record["currency"] == "EUR"
                ahead = record["renewal_at"] - record["occurred_at"]
                assert 28 * DAY <= ahead <= 31 * DAY
    assert renewals > 5 * len(subscribers.truth)


def test_billing_records_validate_and_every_kind_occurs(subscribers: Simulation):
    codec = build_codec(Settings())
    kinds: Counter[str] = Counter()
    for type_name, record in subscribers.genuine():
        if type_name != "BillingEvent":
            continue
        kinds[record["kind"]] += 1
        event = parse_event(type_name, record)
        assert event.family == "billing"
        assert codec.decode(codec.encode(type_name, record)) == (type_name, record)
        assert json_record(type_name, record) == to_json_record(type_name, record)
        assert (record["amount_minor"] is None) == (record["currency"] is None)
    assert set(kinds) == set(KINDS)


def test_invalid_billing_copies_are_rejected():
    sim = simulate(SimulationConfig(customers=60, days=150, seed=9, b2b_share=1.0,
                                    invalid_share=0.05))
    now = datetime.now(UTC)
    reasons: Counter[str] = Counter()
    for item, how in zip(sim.items, sim.delivery, strict=True):
        if how != INVALID or item[0] != "BillingEvent":
            continue
        with pytest.raises(InvalidEvent) as caught:
            event = parse_event(*item)
            check_event_time(
                event.occurred_at, now=now, lower_bound=None, max_future=timedelta(hours=1)
            )
        reasons[caught.value.reason] += 1
    assert reasons["invalid_field"] > 0 and reasons[IN_FUTURE] > 0


# --------------------------------------------------------------------------- personas


def test_involuntary_churners_fail_payments_until_the_subscription_is_cancelled(
        subscribers: Simulation, histories: dict[str, Rows]):
    rows = histories
    churned = [row for row in of(subscribers, "involuntary") if row.churned]
    assert len(churned) >= 10
    usage = []
    for row in churned:
        history = billing(rows[row.customer_id])
        *before, cancelled = history
        assert cancelled["kind"] == "subscription_cancelled"
        assert row.churned_at - DAY <= cancelled["occurred_at"] <= row.churned_at
        failed = dunning(before)
        assert len(failed) >= 3 and {r["kind"] for r in failed} == {"payment_failed"}
        assert 10 * DAY <= cancelled["occurred_at"] - failed[0]["occurred_at"] <= 42 * DAY
        first = rows[row.customer_id][0][1]["occurred_at"]
        if failed[0]["occurred_at"] - first > 10 * 7 * DAY:
            usage.append(
                weekly_logins(rows[row.customer_id], failed[0]["occurred_at"], row.churned_at)
                / weekly_logins(rows[row.customer_id], first, first + 8 * 7 * DAY))
    # they did not decide to leave: the team uses the product as before until it ends
    assert usage and sum(usage) / len(usage) > 0.7


def test_only_leavers_cancel(subscribers: Simulation, histories: dict[str, Rows]):
    rows = histories
    notice = Counter()
    for row in subscribers.truth:
        history = billing(rows[row.customer_id])
        cancelled = [r for r in history if r["kind"] == "subscription_cancelled"]
        if row.churned:
            assert history[-1] == cancelled[0]
        elif cancelled:  # leaves after the period, having given notice within it
            assert row.persona not in STAYING
            assert cancelled[0]["occurred_at"] >= subscribers.config.end - 14 * DAY
            notice[row.persona] += 1
        assert len(cancelled) <= 1
    assert sum(notice.values()) < 0.1 * sum(row.churned for row in subscribers.truth)


def test_downgraders_downgrade_then_use_less_and_some_leave(subscribers: Simulation,
                                                           histories: dict[str, Rows]):
    rows = histories
    downgraders = of(subscribers, "downgrading")
    ratios = []
    for row in downgraders:
        history = rows[row.customer_id]
        downgrades = [r for r in billing(history) if r["kind"] == "subscription_downgraded"]
        if not downgrades:
            continue  # the downgrade falls after the period
        (downgrade,) = downgrades
        when = downgrade["occurred_at"]
        profiles = [r for t, r in history if t == "ProfileChange"]
        after = [p for p in profiles if p["occurred_at"] == when]
        earlier = [p for p in profiles if p["occurred_at"] < when][-1]
        assert after and after[0]["mrr_minor"] == downgrade["amount_minor"]
        assert after[0]["mrr_minor"] < earlier["mrr_minor"]
        assert after[0]["products"] <= earlier["products"]
        first = history[0][1]["occurred_at"]
        end = row.churned_at or subscribers.config.end
        if when - first >= 8 * 7 * DAY and end - when >= 10 * 7 * DAY:
            ratios.append(weekly_logins(history, when + 6 * 7 * DAY, when + 10 * 7 * DAY)
                          / weekly_logins(history, when - 8 * 7 * DAY, when))
    assert len(ratios) >= 10
    assert sum(ratios) / len(ratios) < 0.75
    assert 0 < sum(row.churned for row in downgraders) < len(downgraders) / 2


# --------------------------------------------------------------------------- scoring


def test_an_involuntary_churners_failed_payments_explain_its_score(subscribers: Simulation):
    """Replayed through the workers' steps, a payment that keeps failing costs points in
    every score published after it, and the at-risk event names failed payments,
    routes to billing and suggests the billing play."""
    churned = {row.customer_id for row in of(subscribers, "involuntary") if row.churned}
    records = sorted((r for r in subscribers.genuine() if r[1]["customer_id"] in churned),
                     key=lambda r: r[1]["occurred_at"])
    pipeline = LocalPipeline(Settings(_env_file=None, clock="event"))
    outputs = pipeline.run(records, ticks=True)
    config = load_config(None)
    history: dict[str, list[dict]] = defaultdict(list)
    for type_name, record in records:
        if type_name == "BillingEvent":
            history[record["customer_id"]].append(record)
    first_failure = {c: dunning(h[:-1])[0]["occurred_at"] for c, h in history.items()}
    scores: dict[str, list[dict]] = defaultdict(list)
    alerts: dict[str, list[dict]] = defaultdict(list)
    for type_name, record in outputs:
        customer = record["customer_id"]
        if record["occurred_at"] < first_failure[customer]:
            continue
        if type_name == "HealthScoreChanged":
            scores[customer].append(record)
        elif type_name == "CustomerAtRisk":
            alerts[customer].append(record)
    assert scores.keys() == churned
    for published in scores.values():
        for record in published:
            failing = {c["signal"]: c for c in record["contributions"]}["billing_failed_open"]
            assert failing["value"] >= 1 and failing["points"] <= 35.0
        assert published[-1]["band"] == "at_risk"  # cancelled with payments failing
    assert len(alerts) >= 0.8 * len(churned)
    involuntary = []
    for raised in alerts.values():
        alert = raised[0]
        assert "payment_failing" in {reason["code"] for reason in alert["reasons"]}
        if alert["churn_reason"] == "involuntary":  # else usage cost even more points
            involuntary.append(alert)
            assert alert["route_to_team"] == "billing"
            assert alert["suggested_play"] == config.play(
                alert["segment"], "involuntary", contactable=alert["contactable"])
    assert len(involuntary) >= 0.8 * len(alerts)
    plays = {alert["suggested_play"] for alert in involuntary if alert["contactable"]}
    assert plays == {config.plays["involuntary"]}
