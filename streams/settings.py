"""The one settings object of churnwatch.

Every setting is read from the environment with the ``CHURN_`` prefix (for example
``CHURN_KAFKA_BOOTSTRAP``) or from a ``.env`` file, and is documented in the README.
Nothing else in the code base reads the environment.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.families import ERASURE_TOPIC, REGISTRY, engagement, profile, purchases, support

#: Logical topic names; the configured prefix is put in front of each.
TOPIC_PURCHASES = purchases.FAMILY.topic  # the families' topics, named where tests need one
TOPIC_ENGAGEMENT = engagement.FAMILY.topic
TOPIC_SUPPORT = support.FAMILY.topic
TOPIC_PROFILE = profile.FAMILY.topic
TOPIC_ERASURE = ERASURE_TOPIC
TOPIC_TICKS = "churnwatch.ticks"
TOPIC_HEALTH = "customer.health"
TOPIC_AT_RISK = "customer.at-risk"
TOPIC_RECOVERED = "customer.recovered"
TOPIC_CHAMPIONS = "customer.champions"
TOPIC_DEAD_LETTER = "churnwatch.dead-letter"

#: Every input topic: one per registered family, and erasure requests.
INPUT_TOPICS = (*(f.topic for f in REGISTRY), TOPIC_ERASURE)
OUTPUT_TOPICS = (TOPIC_HEALTH, TOPIC_AT_RISK, TOPIC_RECOVERED, TOPIC_CHAMPIONS,
                 TOPIC_DEAD_LETTER)
ALL_TOPICS = (*INPUT_TOPICS, TOPIC_TICKS, *OUTPUT_TOPICS)


class Settings(BaseSettings):
    """All configuration of a churnwatch process."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", env_file=".env", extra="ignore")

    app_id: str = Field("churnwatch", description="Faust application id (consumer group).")
    worker_id: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$",
        description="Stable id of this worker in its group, unique per worker (e.g. a "
        "StatefulSet pod name): makes it a static group member, so a restarted worker takes "
        "its partitions back at once. Unset: dynamic membership.",
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated host:port."
    )
    kafka_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a command waits for the Kafka cluster to answer "
        "before it gives up with one line and exit code 1."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client of churnwatch connects: PLAINTEXT, "
        "SSL (TLS), SASL_PLAINTEXT or SASL_SSL (user name and password, over TLS)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism for SASL_PLAINTEXT and SASL_SSL."
    )
    kafka_sasl_username: str | None = Field(
        None, min_length=1, description="SASL user name (needed by the SASL protocols)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (needed by the SASL protocols)."
    )
    kafka_ssl_ca_file: FilePath | None = Field(
        None, description="PEM file of the CA certificate(s) the brokers' certificates are "
        "checked against, for SSL and SASL_SSL; unset: the system's trusted CAs."
    )
    kafka_ssl_cert_file: FilePath | None = Field(
        None, description="PEM file of this client's certificate, for brokers that require "
        "TLS client authentication (with CHURN_KAFKA_SSL_KEY_FILE)."
    )
    kafka_ssl_key_file: FilePath | None = Field(
        None, description="PEM file of the unencrypted private key of "
        "CHURN_KAFKA_SSL_CERT_FILE."
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to. "
        "Turn off only for brokers whose certificates lack their addresses."
    )
    topic_prefix: str = Field("", description="Prefix put in front of every topic name.")
    partitions: int = Field(8, ge=1, description="Partition count of every churnwatch topic.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of new topics.")
    create_topics: bool = Field(True, description="Create missing topics when a worker starts.")
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset means Avro single-object encoding."
    )
    schema_registry_auth: SecretStr | None = Field(
        None, description="Schema Registry basic auth as 'user:password'."
    )
    store: str = Field("rocksdb://", description="Faust table store: rocksdb:// or memory://.")
    data_dir: Path = Field(Path("./data"), description="Directory for RocksDB table state.")
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of /metrics, /live, /ready.")
    web_url: str | None = Field(
        None, description="URL the other workers reach this one's web server at, for routed "
        "customer lookups; default http://WEB_HOST:WEB_PORT (the host name for 0.0.0.0)."
    )
    lookup_enabled: bool = Field(
        False, description="Serve GET /customers/{id} and GET /customers?band= (needs "
        "CHURN_LOOKUP_TOKEN)."
    )
    lookup_token: SecretStr | None = Field(
        None, description="Bearer token the customer lookup requires."
    )
    scoring_config: Path | None = Field(
        None, description="Path to a scoring config TOML; unset uses the packaged default."
    )
    clock: str = Field(
        "wall", description="'wall' for live operation, 'event' to use the event-time watermark."
    )
    allowed_lateness_s: int = Field(
        3 * 86400, ge=0, description="How late (seconds) an event may arrive and still count."
    )
    max_future_s: int = Field(
        3600, ge=0, description="How far (seconds) ahead of 'now' an event time may lie."
    )
    history_weeks: int = Field(
        8, ge=4, le=52, description="Weeks of event-time buckets kept per customer and family."
    )
    score_step: float = Field(
        5.0, ge=0, description="Publish HealthScoreChanged when the score moves by more."
    )
    max_jump_s: int = Field(
        7 * 86400, gt=0, description="On the event clock, a record more than this far "
        "ahead of every input is an outlier: held, without moving the clock, until its "
        "partition's next record confirms it (or refutes it: dead letter clock_outlier)."
    )
    order_grace_s: float = Field(
        0.1, ge=0, description="A partition read to its end stops holding back the event-time "
        "order after this many seconds without a record."
    )
    batch_size: int = Field(
        500, ge=1, description="Records the ingest agent takes at most per batch."
    )
    batch_wait_s: float = Field(
        0.02, gt=0, description="Seconds the ingest agent waits to fill a batch."
    )
    produce_linger_ms: int = Field(
        10, ge=0, le=1000, description="Milliseconds the worker's producer waits to fill a "
        "request with output and changelog records before it sends it."
    )
    state_cache: int = Field(
        100_000, ge=0, description="Customers whose state objects a worker keeps in memory "
        "between batches."
    )
    lapse_check_interval_s: float = Field(
        5.0, gt=0, description="Seconds between silence (lapse) timer ticks."
    )
    lapse_pause_behind_s: float = Field(
        300.0, ge=0, description="Silence checks pause while the inputs a worker reads trail "
        "the wall clock by more than this (catching up after an outage)."
    )
    gauges_interval_s: float = Field(
        30.0, gt=0, description="Seconds between refreshes of the retention gauges."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_json: bool = Field(False, description="Write logs as JSON lines.")
    hash_customer_ids_in_logs: bool = Field(
        False, description="Log a hash of customer ids instead of the ids."
    )

    @field_validator("clock")
    @classmethod
    def _clock_mode(cls, value: str) -> str:
        if value not in ("wall", "event"):
            raise ValueError("clock must be 'wall' or 'event'")
        return value

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not value.startswith(("rocksdb://", "memory://")):
            raise ValueError("store must be rocksdb:// or memory://")
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not (self.kafka_sasl_username and self.kafka_sasl_password
                    and self.kafka_sasl_password.get_secret_value()):
                raise ValueError(f"CHURN_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                 "CHURN_KAFKA_SASL_USERNAME and CHURN_KAFKA_SASL_PASSWORD")
        elif self.kafka_sasl_username or self.kafka_sasl_password:
            raise ValueError("CHURN_KAFKA_SASL_USERNAME and CHURN_KAFKA_SASL_PASSWORD need "
                             "CHURN_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT")
        tls_files = (self.kafka_ssl_ca_file, self.kafka_ssl_cert_file, self.kafka_ssl_key_file)
        if not protocol.endswith("SSL") and any(tls_files):
            raise ValueError("CHURN_KAFKA_SSL_*_FILE need "
                             "CHURN_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL")
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("CHURN_KAFKA_SSL_CERT_FILE and CHURN_KAFKA_SSL_KEY_FILE go "
                             "together")
        return self

    @model_validator(mode="after")
    def _lookup_needs_a_token(self) -> Settings:
        if self.lookup_enabled and not (
                self.lookup_token and self.lookup_token.get_secret_value()):
            raise ValueError("CHURN_LOOKUP_ENABLED needs CHURN_LOOKUP_TOKEN")
        return self

    def advertised_url(self) -> str:
        """The URL of this worker's web server as the other workers should use it."""
        if self.web_url:
            return self.web_url.rstrip("/")
        host = socket.gethostname() if self.web_host in ("0.0.0.0", "::") else self.web_host  # noqa: S104
        return f"http://{host}:{self.web_port}"

    def topic(self, logical_name: str) -> str:
        """The physical topic name for a logical one."""
        return f"{self.topic_prefix}{logical_name}"
