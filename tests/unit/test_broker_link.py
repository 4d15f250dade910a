"""The Kafka link state learned from the client's failure reports: one line per change."""

from __future__ import annotations

import logging

import pytest

from streams.app import create_app
from streams.broker_link import BrokerLink
from streams.runtime import Runtime

FAILURES = [
    ("aiokafka", "Unable connect to node with id 1: [Errno 111] Connect call failed"),
    ("aiokafka", "Unable to update metadata from [1]"),
    ("aiokafka.consumer.fetcher", "Failed fetch messages from 1: NodeNotReadyError: "
                                  "Attempt to send a request to node which is not ready"),
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: "
                                            "NodeNotReadyError: Attempt to send a request"),
]


@pytest.fixture
def link():
    wall = [100.0]
    link = BrokerLink(monotonic=lambda: wall[0])
    link.wall = wall  # type: ignore[attr-defined]
    link.install()
    yield link
    link.uninstall()


def outage(link, seconds: float, per_second: int = 75) -> None:
    """The client failing to reach the broker for ``seconds``, as it logs it."""
    for n in range(int(seconds * per_second)):
        logger, message = FAILURES[n % len(FAILURES)]
        logging.getLogger(logger).error(message)
        link.wall[0] += 1 / per_second


def lines(caplog, level=logging.WARNING):
    return [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= level]


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(link, caplog):
    caplog.set_level(logging.INFO)
    outage(link, 25.0)  # 1,875 failures
    logged = lines(caplog)
    assert [name for name, _ in logged] == ["aiokafka", "churnwatch.kafka"]
    assert "unreachable" in logged[1][1]
    assert link.unreachable_for() == pytest.approx(25.0, abs=0.1)
    link.wall[0] += 5.0  # the failures stop: the broker is back
    link.check()
    assert link.unreachable_for() is None
    (back,) = lines(caplog)[2:]
    assert back[0] == "churnwatch.kafka" and "reachable again after 25 s" in back[1]
    assert "1874 connection errors" in back[1]
    caplog.clear()
    outage(link, 0.5)  # a second outage, short: a retry, not an outage
    link.wall[0] += 5.0
    link.check()
    assert [name for name, _ in lines(caplog)] == ["aiokafka"]
    assert link.unreachable_for() is None


def test_other_client_lines_pass(link, caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group 'x'")
    logging.getLogger("aiokafka.consumer.fetcher").error("Unexpected error in fetcher")
    outage(link, 10.0)
    logging.getLogger("aiokafka.consumer.fetcher").error("Unexpected error in fetcher")
    assert [m for _, m in lines(caplog, logging.INFO)].count("Unexpected error in fetcher") == 2


def test_ready_says_when_kafka_is_unreachable(make_settings):
    settings = make_settings()
    rt = Runtime(create_app(settings), settings)
    wall = [0.0]
    rt.broker.monotonic = lambda: wall[0]
    for _ in range(40):
        rt.broker.filter(logging.makeLogRecord({"msg": "Unable to update metadata from [1]",
                                                "levelno": logging.ERROR}))
        wall[0] += 0.1
    assert rt.not_ready_because() == "Kafka unreachable for 4s"
    wall[0] += 5.0
    assert rt.not_ready_because() != "Kafka unreachable for 4s"
