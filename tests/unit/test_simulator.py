"""The population simulator: reproducible, realistic, with known churn and honest noise."""

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.backtest import load_events, load_truth, read_events
from streams.codec import build_codec, default_schemas, to_json_record
from streams.domain.events import IN_FUTURE, InvalidEvent, check_event_time
from streams.families import parse_event
from streams.settings import Settings
from streams.simulator import (
    B2B_MIX,
    B2C_MIX,
    DUPLICATE,
    FIELDS,
    INVALID,
    LATE,
    MALFORMED,
    ON_TIME,
    PERSONAS,
    VERY_LATE,
    Malformed,
    Simulation,
    SimulationConfig,
    json_record,
    simulate,
    write_jsonl,
    write_truth,
)

DAY = timedelta(days=1)
LEAVING = {"one_time", "newcomer", "declining", "sudden", "complaining", "involuntary",
           "downgrading"}
STAYING = {"steady", "champion", "seasonal", "recovering"}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    """A small population over eight months with the default noise shares."""
    return simulate(SimulationConfig(customers=300, days=240, seed=7))


@pytest.fixture(scope="module")
def noisy() -> Simulation:
    """Enough noise of every kind to measure its shares."""
    return simulate(
        SimulationConfig(
            customers=150,
            days=200,
            seed=11,
            duplicate_share=0.05,
            late_share=0.1,
            very_late_share=0.01,
            malformed_share=0.02,
            invalid_share=0.02,
        )
    )


def jsonl_bytes(simulation: Simulation) -> bytes:
    out = io.StringIO()
    write_jsonl(simulation.items, out)
    return out.getvalue().encode()


def truth_text(simulation: Simulation) -> str:
    out = io.StringIO()
    write_truth(simulation.truth, out)
    return out.getvalue()


def by_customer(simulation: Simulation) -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for type_name, record in simulation.genuine():
        out[record["customer_id"]].append((type_name, record))
    for records in out.values():
        records.sort(key=lambda r: r[1]["occurred_at"])
    return out


# --------------------------------------------------------------------------- determinism


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    config = SimulationConfig(customers=40, days=90, seed=3)
    first, second = simulate(config), simulate(config)
    assert jsonl_bytes(first) == jsonl_bytes(second)
    assert truth_text(first) == truth_text(second)
    other = simulate(SimulationConfig(customers=40, days=90, seed=4))
    assert jsonl_bytes(other) != jsonl_bytes(first)


def test_a_customer_does_not_depend_on_the_others_nor_on_the_noise():
    small = by_customer(simulate(SimulationConfig(customers=10, days=90)))
    large = simulate(SimulationConfig(customers=30, days=90, duplicate_share=0.3))
    large_by = by_customer(large)
    assert small == {c: large_by[c] for c in small}
    assert large.truth[:10] == simulate(SimulationConfig(customers=10, days=90)).truth


def test_files_are_byte_identical(tmp_path: Path):
    config = SimulationConfig(customers=25, days=60, seed=5)
    for name in ("a", "b"):
        result = simulate(config)
        write_jsonl(result.items, tmp_path / f"{name}.jsonl")
        write_truth(result.truth, tmp_path / f"{name}.csv")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


# --------------------------------------------------------------------------- population


def test_every_persona_and_both_segments_are_present(sim: Simulation):
    personas = Counter(row.persona for row in sim.truth)
    assert set(personas) == set(PERSONAS)
    segments = Counter(row.segment for row in sim.truth)
    assert 0.2 < segments["b2b"] / len(sim.truth) < 0.4
    for row in sim.truth:
        if row.persona in ("seasonal", "one_time"):
            assert row.segment == "b2c"
    assert sum(sim.counts.personas.values()) == sim.counts.customers == 300


def test_persona_mixes_add_up():
    for mix in (B2C_MIX, B2B_MIX):
        assert sum(share for _, share in mix) == pytest.approx(1.0)
        assert {persona for persona, _ in mix} <= set(PERSONAS)


def test_each_customer_starts_with_a_profile_and_stays_in_the_period(sim: Simulation):
    config = sim.config
    for records in by_customer(sim).values():
        assert records[0][0] == "ProfileChange"
        assert all(config.begin <= r["occurred_at"] < config.end for _, r in records)
        profile = records[0][1]
        assert profile["signup_at"] <= profile["occurred_at"]
        if profile["segment"] == "b2b":
            assert profile["mrr_minor"] > 0 and profile["currency"] == "EUR"


def test_truth_matches_the_records(sim: Simulation):
    records = by_customer(sim)
    end = sim.config.end
    assert sim.counts.churners == sum(row.churned for row in sim.truth) > 0
    for row in sim.truth:
        history = records[row.customer_id]
        last = history[-1][1]["occurred_at"]
        if row.churned:
            assert row.persona in LEAVING
            assert row.churned_at == last < end  # no genuine event after churned_at
        else:
            assert row.churned_at is None
    # customers who stay are active up to the end (a holiday may make a few quiet)
    staying = [r for r in sim.truth if r.persona in ("steady", "champion")]
    recent = [records[r.customer_id][-1][1]["occurred_at"] >= end - 14 * DAY for r in staying]
    assert all(records[r.customer_id][-1][1]["occurred_at"] >= end - 45 * DAY for r in staying)
    assert sum(recent) / len(recent) > 0.9


def test_churn_is_spread_over_the_period_and_some_leavers_stay_past_it(sim: Simulation):
    churned = [row.churned_at for row in sim.truth if row.churned_at is not None]
    weeks = {(when - sim.config.begin).days // 7 for when in churned}
    assert len(weeks) > 15
    leavers = [row for row in sim.truth if row.persona in ("declining", "sudden", "complaining")]
    assert any(not row.churned for row in leavers)


def test_decline_thins_engagement_before_churn_but_sudden_churn_does_not(sim: Simulation):
    records = by_customer(sim)

    def weekly(rows: list[tuple[str, dict]], since: datetime, until: datetime) -> float:
        n = sum(1 for t, r in rows if t == "Engagement" and since <= r["occurred_at"] < until)
        return n / ((until - since) / (7 * DAY))

    ratios: dict[str, list[float]] = defaultdict(list)
    for row in sim.truth:
        if not row.churned or row.churned_at is None:
            continue
        rows = records[row.customer_id]
        first = rows[0][1]["occurred_at"]
        if row.churned_at - first < 120 * DAY:
            continue
        before = weekly(rows, first, first + 8 * 7 * DAY)
        if before > 0:
            ending = weekly(rows, row.churned_at - 4 * 7 * DAY, row.churned_at + DAY)
            ratios[row.persona].append(ending / before)
    assert ratios["declining"] and ratios["sudden"]
    mean = {p: sum(v) / len(v) for p, v in ratios.items()}
    assert mean["declining"] < 0.6
    assert mean["sudden"] > 0.7


def test_feedback_sours_for_complainers():
    result = simulate(SimulationConfig(customers=600, days=240, seed=2))
    persona = {row.customer_id: row.persona for row in result.truth}
    nps: dict[str, list[int]] = defaultdict(list)
    tickets: Counter[str] = Counter()
    for type_name, record in result.genuine():
        if type_name != "SupportEvent":
            continue
        who = persona[record["customer_id"]]
        if record["kind"] == "nps_response":
            nps[who].append(record["nps"])
        elif record["kind"] == "ticket_opened":
            tickets[who] += 1

    def score(answers: list[int]) -> float:
        return 100 * (sum(a >= 9 for a in answers) - sum(a <= 6 for a in answers)) / len(answers)

    counts = result.counts.personas
    assert score(nps["champion"]) > score(nps["steady"]) > score(nps["complaining"])
    assert tickets["complaining"] / counts["complaining"] > 2 * tickets["steady"] / counts["steady"]


# --------------------------------------------------------------------------- records


def test_every_genuine_record_is_valid_and_encodes(sim: Simulation):
    codec = build_codec(Settings())
    for type_name, record in sim.genuine():
        parse_event(type_name, record)
        assert codec.decode(codec.encode(type_name, record)) == (type_name, record)


def test_the_json_form_is_what_the_codec_writes(noisy: Simulation):
    for item in noisy.items:
        if not isinstance(item, Malformed):
            assert json_record(*item) == to_json_record(*item)


def test_field_order_follows_the_schemas():
    for type_name, names in FIELDS.items():
        schema = default_schemas().get(type_name).parsed
        assert tuple(f["name"] for f in schema["fields"]) == names


def test_datetimes_are_timezone_aware_whole_seconds(sim: Simulation):
    for _, record in sim.records():
        assert record["occurred_at"].utcoffset() == timedelta(0)
        assert record["occurred_at"].microsecond == 0


# --------------------------------------------------------------------------- noise


def test_noise_shares_are_roughly_as_configured(noisy: Simulation, sim: Simulation):
    counts = noisy.counts
    genuine = counts.genuine
    assert counts.duplicates / genuine == pytest.approx(0.05, rel=0.15)
    assert counts.late / genuine == pytest.approx(0.1, rel=0.1)
    assert counts.very_late / genuine == pytest.approx(0.01, rel=0.3)
    assert counts.malformed / genuine == pytest.approx(0.02, rel=0.25)
    assert counts.invalid / genuine == pytest.approx(0.02, rel=0.25)
    assert counts.delivered == genuine + counts.duplicates + counts.malformed + counts.invalid
    defaults = sim.counts
    assert defaults.duplicates / defaults.genuine == pytest.approx(0.01, rel=0.3)
    assert defaults.late / defaults.genuine == pytest.approx(0.03, rel=0.2)
    assert 0 < defaults.malformed and 0 < defaults.invalid


def test_duplicates_are_exact_copies_delivered_later(noisy: Simulation):
    first: dict[str, tuple[int, dict]] = {}
    duplicates = 0
    for item, how, arrived in zip(noisy.items, noisy.delivery, noisy.arrived_at, strict=True):
        if isinstance(item, Malformed) or how == INVALID:
            continue
        _, record = item
        if how == DUPLICATE:
            duplicates += 1
            earlier, original = first[record["event_id"]]
            assert record == original and record is not original
            assert arrived >= earlier
        else:
            assert record["event_id"] not in first  # each genuine record once
            first[record["event_id"]] = (arrived, record)
    assert duplicates == noisy.counts.duplicates > 0
    assert len(first) == noisy.counts.genuine


def test_late_records_really_arrive_late(noisy: Simulation):
    latest = datetime.min.replace(tzinfo=UTC)
    overtaken = Counter()
    previous = None
    for item, how, arrived in zip(noisy.items, noisy.delivery, noisy.arrived_at, strict=True):
        assert previous is None or arrived >= previous  # items are in arrival order
        previous = arrived
        if isinstance(item, Malformed):
            continue
        occurred = item[1]["occurred_at"]
        delay_s = arrived / 1000 - occurred.timestamp()
        if how == ON_TIME:
            assert delay_s == 0
        elif how == LATE:
            assert 60 <= delay_s <= 48 * 3600
        elif how == VERY_LATE:
            assert 4 * 86400 <= delay_s <= 10 * 86400
        if how in (LATE, VERY_LATE):
            overtaken[how] += occurred < latest  # a later event arrived before it
        if how in (ON_TIME, LATE, VERY_LATE):
            latest = max(latest, occurred)
    assert overtaken[LATE] > 0.6 * noisy.counts.late
    assert overtaken[VERY_LATE] == noisy.counts.very_late


def test_invalid_values_are_rejected_by_the_pipeline_checks(noisy: Simulation):
    now = datetime.now(UTC)
    reasons = Counter()
    for item, how in zip(noisy.items, noisy.delivery, strict=True):
        if how != INVALID:
            continue
        type_name, record = item
        with pytest.raises(InvalidEvent) as caught:
            event = parse_event(type_name, record)
            check_event_time(
                event.occurred_at, now=now, lower_bound=None, max_future=timedelta(hours=1)
            )
        reasons[caught.value.reason] += 1
        assert not record["event_id"] or "-x-" in record["event_id"]
    assert reasons["invalid_field"] > 0 and reasons[IN_FUTURE] > 0


def test_malformed_lines_are_reported_and_valid_lines_round_trip(noisy: Simulation, tmp_path: Path):
    path = tmp_path / "events.jsonl"
    lines = write_jsonl(noisy.items, path)
    assert lines == len(noisy.items)
    errors: list = []
    loaded = list(load_events(path, errors=errors))
    expected = list(noisy.records())
    assert loaded == expected
    bad_lines = [i + 1 for i, how in enumerate(noisy.delivery) if how == MALFORMED]
    assert [e.line for e in errors] == bad_lines
    kinds = Counter(item.kind for item in noisy.items if isinstance(item, Malformed))
    assert set(kinds) == {"garbage_bytes", "truncated_json", "missing_field", "wrong_type"}
    records, errors = read_events(path)
    assert len(records) == len(expected) and len(errors) == noisy.counts.malformed


def test_truth_file_is_what_the_backtest_reads(sim: Simulation, tmp_path: Path):
    path = tmp_path / "truth.csv"
    write_truth(sim.truth, path)
    assert path.read_text().splitlines()[0] == "customer_id,churned,churned_at,persona,segment"
    truth = load_truth(path)
    assert len(truth) == len(sim.truth)
    for row in sim.truth:
        assert truth[row.customer_id].churned == row.churned
        assert truth[row.customer_id].churned_at == row.churned_at


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    customers=st.integers(0, 6),
    days=st.integers(1, 120),
    noise=st.floats(0.0, 0.5),
)
def test_noise_never_drops_or_alters_a_genuine_record(seed, customers, days, noise):
    plain = simulate(
        SimulationConfig(
            customers=customers,
            days=days,
            seed=seed,
            duplicate_share=0,
            late_share=0,
            very_late_share=0,
            malformed_share=0,
            invalid_share=0,
        )
    )
    dirty = simulate(
        SimulationConfig(
            customers=customers,
            days=days,
            seed=seed,
            duplicate_share=noise,
            late_share=noise,
            very_late_share=noise / 10,
            malformed_share=noise,
            invalid_share=noise,
        )
    )
    assert plain.items == list(plain.genuine())
    assert sorted(json.dumps(json_record(*r)) for r in dirty.genuine()) == sorted(
        json.dumps(json_record(*r)) for r in plain.items if not isinstance(r, Malformed)
    )
    assert dirty.truth == plain.truth


# --------------------------------------------------------------------------- config


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        SimulationConfig(start=datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="late_share"):
        SimulationConfig(late_share=1.5)
    with pytest.raises(ValueError, match="positive"):
        SimulationConfig(days=0)
    with pytest.raises(ValueError, match="future"):
        simulate(SimulationConfig(customers=1, start=datetime.now(UTC) - 10 * DAY, days=30))


def test_days_override_months():
    assert SimulationConfig(months=12).horizon_days == pytest.approx(365.28)
    assert SimulationConfig(months=12, days=30).horizon_days == 30
