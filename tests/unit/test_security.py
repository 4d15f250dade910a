"""The Kafka security settings: what they accept, and what each kind of client is given."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol

from streams.logs import KAFKA_LOGGER, KafkaClientFilter
from streams.security import client_config, faust_credentials
from streams.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("not read by these tests\n")
    return files


def test_plaintext_is_the_default_and_adds_nothing():
    plain = settings()
    assert client_config(plain) == {"security.protocol": "PLAINTEXT"}
    assert faust_credentials(plain) is None


def test_sasl_ssl_gives_librdkafka_the_mechanism_credentials_and_files(pem_files):
    secure = settings(kafka_security_protocol="sasl_ssl", kafka_sasl_mechanism="scram-sha-512",
                      kafka_sasl_username="svc", kafka_sasl_password="hunter2",
                      kafka_ssl_ca_file=pem_files["ca"], kafka_ssl_cert_file=pem_files["cert"],
                      kafka_ssl_key_file=pem_files["key"], kafka_ssl_check_hostname=False)
    assert client_config(secure) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc", "sasl.password": "hunter2",
        "ssl.ca.location": str(pem_files["ca"]),
        "ssl.certificate.location": str(pem_files["cert"]),
        "ssl.key.location": str(pem_files["key"]),
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert "hunter2" not in repr(secure)


def test_the_worker_gets_sasl_credentials_over_tls_only_for_sasl_ssl():
    values = {"kafka_sasl_username": "svc", "kafka_sasl_password": "hunter2",
              "kafka_sasl_mechanism": "SCRAM-SHA-256"}
    over_tls = faust_credentials(settings(kafka_security_protocol="SASL_SSL", **values))
    assert isinstance(over_tls, SASLCredentials)
    assert (over_tls.protocol, over_tls.mechanism.value) == (AuthProtocol.SASL_SSL,
                                                             "SCRAM-SHA-256")
    assert (over_tls.username, over_tls.password) == ("svc", "hunter2")
    assert isinstance(over_tls.ssl_context, ssl.SSLContext)
    assert over_tls.ssl_context.check_hostname
    clear = faust_credentials(settings(kafka_security_protocol="SASL_PLAINTEXT", **values))
    assert isinstance(clear, SASLCredentials) and clear.protocol == AuthProtocol.SASL_PLAINTEXT
    tls = faust_credentials(settings(kafka_security_protocol="SSL",
                                     kafka_ssl_check_hostname=False))
    assert isinstance(tls, SSLCredentials) and not tls.context.check_hostname


@pytest.mark.parametrize(("values", "message"), [
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "svc"},
     "needs CHURN_KAFKA_SASL_USERNAME and CHURN_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_username": "svc", "kafka_sasl_password": "pw"},
     "need CHURN_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "svc",
      "kafka_sasl_password": "pw", "kafka_ssl_ca_file": "CA"},
     "need CHURN_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": "CERT"},
     "CHURN_KAFKA_SSL_CERT_FILE and CHURN_KAFKA_SSL_KEY_FILE go together"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/no/such/ca.pem"},
     "Path does not point to a file"),
    ({"kafka_security_protocol": "KERBEROS"}, "PLAINTEXT"),
])
def test_incomplete_or_contradictory_security_settings_are_refused(values, message, pem_files):
    files = {"CA": pem_files["ca"], "CERT": pem_files["cert"]}
    resolved = {k: files.get(v, v) if isinstance(v, str) else v for k, v in values.items()}
    with pytest.raises(ValueError, match=message):
        settings(**resolved)


def test_librdkafkas_refusal_reports_are_debug(monkeypatch):
    """The command that met the refusal says so once (AccessRefusedError), not every retry."""
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    noisy = KafkaClientFilter()
    for text in ("sasl_ssl://h:9093/bootstrap: SASL authentication error: Authentication "
                 "failed during authentication due to invalid credentials",
                 "ssl://h:9093/bootstrap: SSL handshake failed: certificate verify failed"):
        record = logging.makeLogRecord({"name": KAFKA_LOGGER, "levelno": logging.ERROR,
                                        "levelname": "ERROR", "msg": text})
        assert not noisy.filter(record)
