import json
import logging

from streams.logs import (
    KAFKA_LOGGER,
    JsonFormatter,
    KafkaClientFilter,
    command_log_level,
    customer_ref,
    logging_config,
)
from streams.settings import Settings


def test_json_lines_carry_the_step_and_extra_fields(capsys):
    record = logging.makeLogRecord({
        "name": "churnwatch", "levelno": logging.WARNING, "levelname": "WARNING",
        "msg": "dead-lettered %s", "args": ("x/0/1",), "step": "purchases",
        "reason": "malformed"})
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "dead-lettered x/0/1"
    assert line["level"] == "warning" and line["logger"] == "churnwatch"
    assert line["step"] == "purchases" and line["reason"] == "malformed"
    assert line["time"].endswith("+00:00")


def test_logging_config_switches_formatter():
    assert "()" in logging_config("info", json_lines=True)["formatters"]["default"]
    plain = logging_config("debug", json_lines=False)
    assert plain["root"]["level"] == "DEBUG"


def test_customer_ids_can_be_hashed_in_logs():
    assert customer_ref("cust-1", hashed=False) == "cust-1"
    hashed = customer_ref("cust-1", hashed=True)
    assert hashed != "cust-1" and len(hashed) == 16
    assert hashed == customer_ref("cust-1", hashed=True)
    assert customer_ref(None, hashed=True) is None


def test_secrets_never_appear_in_settings_output():
    settings = Settings(_env_file=None, schema_registry_url="http://registry:8081",
                        schema_registry_auth="user:hunter2")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def client_record(name, level, msg, *args):
    return logging.makeLogRecord({"name": name, "levelno": level,
                                  "levelname": logging.getLevelName(level), "msg": msg,
                                  "args": args})


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_coordinator_error_at_every_start_is_debug(monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    noisy = KafkaClientFilter()
    record = client_record("aiokafka.consumer.group_coordinator", logging.ERROR,
                           "Group Coordinator Request failed: [Error 15] "
                           "GroupCoordinatorNotAvailableError")
    assert not noisy.filter(record)  # dropped at info level
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)
    record = client_record("aiokafka.consumer.group_coordinator", logging.ERROR,
                           "GroupCoordinatorNotAvailableError")
    assert noisy.filter(record) and record.levelname == "DEBUG"


def test_librdkafka_connection_failures_are_debug_but_aiokafkas_are_not(monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    noisy = KafkaClientFilter()
    refused = "FAIL [rdkafka#producer-1] 127.0.0.1:1/bootstrap: Connection refused"
    assert not noisy.filter(client_record(KAFKA_LOGGER, logging.ERROR, refused))
    closed = ("FAIL [rdkafka#consumer-2] 127.0.0.1:9/1: Disconnected: connection closed by "
              "peer: receive 0 after POLLIN (after 2177ms in state UP)")
    assert not noisy.filter(client_record(KAFKA_LOGGER, logging.WARNING, closed))
    # a worker's own client losing its broker mid-run is worth a line
    worker = client_record("aiokafka.conn", logging.ERROR, "Unable connect to node: "
                           "Connection refused")
    assert noisy.filter(worker) and worker.levelname == "ERROR"


def test_repeated_client_messages_are_rate_limited_and_summarised(monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    clock = FakeClock()
    noisy = KafkaClientFilter(interval=60, clock=clock)

    def passes(n):
        return noisy.filter(client_record(KAFKA_LOGGER, logging.WARNING,
                                          "REQTMOUT: timed out %d requests", n))

    assert passes(1)
    assert [passes(n) for n in range(2, 40)] == [False] * 38  # numbers aside, the same
    clock.now += 61
    record = client_record(KAFKA_LOGGER, logging.WARNING, "REQTMOUT: timed out %d requests", 7)
    assert noisy.filter(record)
    assert record.getMessage() == "REQTMOUT: timed out 7 requests (38 more like this in " \
                                  "the last 61s)"
    other = client_record("faust.worker", logging.WARNING, "same again")
    assert all(noisy.filter(other) for _ in range(5))  # other loggers pass untouched


def test_command_log_level_is_warning_unless_debug():
    assert command_log_level("info") == "warning"
    assert command_log_level("error") == "error"
    assert command_log_level("DEBUG") == "debug"
