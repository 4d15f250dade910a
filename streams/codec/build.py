"""Choosing the codec the settings ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.codec.base import Codec
from streams.codec.registry import RegistryCodec
from streams.codec.schemas import SchemaSet
from streams.codec.single_object import SingleObjectCodec

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from streams.settings import Settings


def build_codec(
    settings: Settings,
    client: SchemaRegistryClient | None = None,
    schemas: SchemaSet | None = None,
) -> Codec:
    """The codec the settings ask for.

    A :class:`RegistryCodec` when ``schema_registry_url`` is set, otherwise a
    :class:`SingleObjectCodec`. Without ``client`` a registry client is made from the
    settings (basic auth from ``schema_registry_auth`` as ``user:password``); a
    ``mock://`` URL gives confluent-kafka's in-memory registry, private to this process.
    """
    if not settings.schema_registry_url:
        return SingleObjectCodec(schemas)
    if client is None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": settings.schema_registry_url}
        if settings.schema_registry_auth is not None:
            conf["basic.auth.user.info"] = settings.schema_registry_auth.get_secret_value()
        client = SchemaRegistryClient.new_client(conf)
    return RegistryCodec(client, schemas)
