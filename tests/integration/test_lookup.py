"""The live customer lookup on two real workers: either one answers for any customer
(the owner answers, the other forwards), only with the bearer token, and a rebalance
never gives a wrong answer (at worst a 503 that says to ask again)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.codec import build_codec
from streams.kafka_io import produce_records
from streams.processes import free_port
from streams.settings import Settings
from streams.topics import ensure_topics
from tests.integration.test_pipeline import profile, purchase
from tests.integration.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

TOKEN = "lookup-test-token"
CUSTOMERS = [f"cust-{n:02d}" for n in range(16)]


def ready(worker: WorkerProcess) -> bool:
    answer = worker.get("/ready")
    return answer is not None and answer[0] == 200


def ask(worker: WorkerProcess, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(worker.base_url + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def workers(make_settings: Callable[..., Settings],
            tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    base = make_settings(clock="event", lapse_check_interval_s=3600, lookup_enabled=True,
                         lookup_token=TOKEN)
    ensure_topics(base)
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        n = len(started)
        settings = base.model_copy(update={"web_port": free_port(),
                                           "data_dir": tmp_path / f"w{n}"})
        started.append(WorkerProcess(settings, tmp_path / f"w{n}.log"))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def test_either_worker_answers_for_every_customer_even_during_a_rebalance(workers):
    first, second = workers(), workers()
    first.wait_ready()
    second.wait_ready()
    settings = first.settings
    history = [profile(c) for c in CUSTOMERS] + [purchase(c, 1, 1.0) for c in CUSTOMERS]
    produce_records(settings, build_codec(settings), history)
    wait_for(lambda: sum(w.metric("churnwatch_events_applied_total")
                         for w in (first, second)) >= len(history),
             timeout=90, what="both workers scoring", on_timeout=first.log_tail)

    def all_answers(worker: WorkerProcess) -> dict[str, dict[str, Any]] | None:
        found = {}
        for customer in CUSTOMERS:
            status, body = ask(worker, f"/customers/{customer}")
            if status != 200:
                return None
            found[customer] = body
        return found

    seen = {w.base_url: wait_for(lambda w=w: all_answers(w), timeout=60,
                                 what=f"every customer from {w.base_url}")
            for w in (first, second)}
    one, other = seen[first.base_url], seen[second.base_url]
    for customer in CUSTOMERS:
        assert one[customer] == other[customer]  # the same answer, from the owner
        assert one[customer]["band"] == "healthy" and one[customer]["score"] is not None
        assert one[customer]["contributions"] and one[customer]["segment"] == "b2c"
        assert one[customer]["consent"] == {"contactable": True, "channels": ["email"]}
    owners = {answer["answered_by"] for answer in one.values()}
    assert owners == {first.base_url, second.base_url}  # each worker forwarded some

    # the band list: each worker lists only its own customers, worst first
    listed = [ask(w, "/customers?band=healthy&limit=1000") for w in (first, second)]
    assert all(status == 200 for status, _ in listed)
    names = [[c["customer_id"] for c in body["customers"]] for _, body in listed]
    assert sorted(names[0] + names[1]) == CUSTOMERS and not set(names[0]) & set(names[1])
    scores = [c["score"] for c in listed[0][1]["customers"]]
    assert scores == sorted(scores)

    # access: a token is required, and only the right one
    assert ask(first, f"/customers/{CUSTOMERS[0]}", token=None)[0] == 401
    assert ask(first, f"/customers/{CUSTOMERS[0]}", token="wrong")[0] == 401
    assert ask(second, "/customers?band=at_risk", token=None)[0] == 401
    assert ask(first, "/customers/nobody")[0] == 404

    # a third worker joins: while the partitions move, an answer is right or a 503
    third = workers()
    statuses = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and third.proc.poll() is None and not ready(third):
        for customer in CUSTOMERS[:4]:
            status, body = ask(first, f"/customers/{customer}")
            statuses.add(status)
            assert status in (200, 503), body
            if status == 200:
                assert (body["score"], body["band"]) == (one[customer]["score"], "healthy")
    third.wait_ready()
    assert 200 in statuses
    wait_for(lambda: all_answers(third) == seen[first.base_url] or None, timeout=60,
             what="the third worker answering like the others", on_timeout=third.log_tail)
