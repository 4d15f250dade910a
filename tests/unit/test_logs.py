import json
import logging

from streams.logs import JsonFormatter, customer_ref, logging_config
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
