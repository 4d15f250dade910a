"""How churnwatch's Kafka clients authenticate and encrypt, from the settings.

Two kinds of client read the same settings (``CHURN_KAFKA_SECURITY_PROTOCOL``,
``CHURN_KAFKA_SASL_*``, ``CHURN_KAFKA_SSL_*``): the worker's Faust app (aiokafka, which
takes Faust credentials and an :class:`ssl.SSLContext`) and the confluent-kafka clients of
the commands, the tests and the benchmarks (librdkafka, which takes configuration
properties). Both mappings live here, side by side, so they cannot drift apart.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError

from streams.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

#: librdkafka errors that say the cluster refused this client's credentials or TLS set-up
#: (wrong password, unknown user, untrusted certificate): retrying cannot help.
REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})


def client_config(settings: Settings) -> dict[str, str]:
    """The librdkafka security properties of every confluent-kafka client."""
    protocol = settings.kafka_security_protocol
    config: dict[str, str] = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        config.update({
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username or "",
            "sasl.password": password.get_secret_value() if password else "",
        })
    if protocol.endswith("SSL"):
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.kafka_ssl_check_hostname else "none")
        if settings.kafka_ssl_ca_file:
            config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
        if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
            config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
    return config


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of the worker's Kafka connections (SSL and SASL_SSL)."""
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
        context.load_cert_chain(settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The worker's Faust ``broker_credentials`` (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    password = settings.kafka_sasl_password
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism,
        # with a context, Faust connects over SASL_SSL; without, over SASL_PLAINTEXT
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
    )
