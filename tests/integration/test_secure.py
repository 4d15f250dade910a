"""A cluster that only lets clients in over SASL_SSL (SCRAM-SHA-512 inside TLS, with client
certificates): the worker and every confluent-kafka client of churnwatch connect with the
CHURN_KAFKA_SECURITY_PROTOCOL / SASL / SSL settings, and a wrong password stops the worker
command at once with one line instead of a wait and a wall of retries.

The broker is this module's own, started by scripts/kafka-local.sh with an extra SASL_SSL
listener; its CA and certificates are made here with openssl. Its PLAINTEXT listener only
serves the start script's readiness check and the creation of the SCRAM user.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from streams.codec import build_codec
from streams.kafka_io import collect, produce_records
from streams.processes import free_port, owned_env, start_broker, stop_broker, worker_env
from streams.security import client_config
from streams.settings import TOPIC_HEALTH, Settings
from streams.topics import ensure_topics
from tests.integration.test_pipeline import profile, purchase
from tests.integration.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

USER = "churnwatch"
PASSWORD = f"pw-{uuid.uuid4().hex}"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """A CA, and a broker and a client certificate it signed (both for 127.0.0.1), as PEM
    files in ``directory``: ca.pem, broker.pem/.key, client.pem/.key."""
    directory.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=churnwatch test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    (directory / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    for name in ("broker", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext",
                "-out", f"{name}.pem", cwd=directory)


def broker_properties(certs: Path) -> str:
    """TLS with required client certificates, and SCRAM-SHA-512, on the SASL_SSL listener."""
    return "\n".join([
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs / 'broker-keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs / 'ca.pem'}",
        "listener.name.sasl_ssl.ssl.client.auth=required",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "",
    ])


def add_scram_user(plaintext_bootstrap: str) -> None:
    """Create the SCRAM-SHA-512 user through the broker's PLAINTEXT listener."""
    admin = AdminClient({"bootstrap.servers": plaintext_bootstrap})
    credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    for future in admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(USER, credential, PASSWORD.encode())]).values():
        future.result(timeout=30)


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(the SASL_SSL bootstrap address, the directory of the CA and client certificate)"""
    root = tmp_path_factory.mktemp("secure-kafka")
    certs = root / "tls"
    make_certificates(certs)
    (certs / "broker-keystore.pem").write_text(
        (certs / "broker.key").read_text() + (certs / "broker.pem").read_text())
    extra = root / "secure.properties"
    extra.write_text(broker_properties(certs))
    secure = f"127.0.0.1:{free_port()}"
    broker = root / "broker"
    env = owned_env(CHURN_KAFKA_EXTRA_LISTENERS=f"SASL_SSL://{secure}",
                    CHURN_KAFKA_EXTRA_CONFIG=str(extra))
    for taken in ("CHURN_KAFKA_PORT", "CHURN_KAFKA_CONTROLLER_PORT"):  # free ports
        env.pop(taken, None)
    bootstrap = start_broker(broker, env=env)
    try:
        add_scram_user(bootstrap)
        yield secure, certs
    finally:
        stop_broker(broker, env=env)


@pytest.fixture
def secure_settings(secure_cluster: tuple[str, Path], unique_prefix: str,
                    tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the SASL_SSL listener, with unique topics and app id."""
    bootstrap, certs = secure_cluster

    def factory(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap": bootstrap, "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": USER,
            "kafka_sasl_password": PASSWORD, "kafka_ssl_ca_file": certs / "ca.pem",
            "kafka_ssl_cert_file": certs / "client.pem",
            "kafka_ssl_key_file": certs / "client.key",
            "topic_prefix": unique_prefix, "app_id": f"churnwatch-{uuid.uuid4().hex[:12]}",
            "partitions": 2, "store": "memory://", "data_dir": tmp_path,
            "web_port": free_port(), "clock": "event", "lapse_check_interval_s": 3600,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return factory


def accepted(settings: Settings) -> bool:
    """Whether the cluster answers a client with these settings (a new SCRAM user takes a
    moment to reach the broker)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap,
                         **client_config(settings), "log_level": 0})
    try:
        admin.list_topics(timeout=2)
    except KafkaException:
        return False
    return True


def test_a_worker_processes_input_over_sasl_ssl(secure_settings, tmp_path):
    settings = secure_settings()
    wait_for(lambda: accepted(settings), timeout=30, what="the SCRAM user on the broker")
    ensure_topics(settings)  # admin client
    worker = WorkerProcess(settings, tmp_path / "worker.log")  # Faust (aiokafka)
    try:
        worker.wait_ready()
        codec = build_codec(settings)
        produce_records(settings, codec, [profile("alice"), purchase("alice", 0, 1.0)])
        outputs = collect(settings, codec, [TOPIC_HEALTH], timeout=60,  # consumer
                          until=lambda got: len(got) >= 1)
    finally:
        worker.stop()
    assert [(type_name, record["customer_id"], record["band"])
            for _, type_name, record in outputs] == [("HealthScoreChanged", "alice", "healthy")]
    log = worker.log_path.read_text(errors="replace")
    assert f"Authenticated as {USER} via SCRAM-SHA-512" in log, log  # the worker's own client
    assert "Traceback" not in log, log


def test_a_wrong_password_stops_the_worker_at_once_with_one_line(secure_settings, tmp_path):
    # a long timeout: only the refusal, not the wait for an answer, can end it soon
    wrong = secure_settings(kafka_sasl_password="not-the-password", kafka_timeout_s=120)
    wait_for(lambda: accepted(secure_settings()), timeout=30, what="the SCRAM user")
    out = tmp_path / "worker.out"
    started = time.monotonic()
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"],
                                env=worker_env(wrong, COLUMNS="400"), stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - started
    text = out.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 1, text
    assert len(lines) == 1, text
    assert lines[0].startswith(f"error: Kafka at {wrong.kafka_bootstrap} refused the "
                               "connection ("), text
    assert "SASL authentication error" in lines[0] and "SCRAM-SHA-512" in lines[0], text
    assert "not-the-password" not in text
    assert took < 30, f"took {took:.1f}s"
    print(f"the worker command gave up {took:.1f}s after it started (timeout 120s)")
