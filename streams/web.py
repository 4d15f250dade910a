"""The worker's own HTTP views: /metrics, /live and /ready (and the timer that keeps the
Kafka link state /ready reports up to date), and, when switched on (CHURN_LOOKUP_ENABLED),
the customer lookup /customers/{id} and /customers?band=.

A lookup for a customer another worker owns is forwarded to it, marked as forwarded so
that two workers with different views of a rebalance never send it back and forth; a
worker asked for a customer whose partition it does not hold (yet) answers 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import faust
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST

from streams.lookup import BANDS, MAX_LIMIT, authorized, band_members, customer_health
from streams.pipeline import HEALTH_TABLE
from streams.runtime import Runtime

#: Header of a lookup forwarded by the worker that received it.
FORWARDED = "X-Churnwatch-Forwarded"
#: Longest wait for the owner of a customer to answer a forwarded lookup.
FORWARD_TIMEOUT_S = 5.0


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(rt.metrics.exposition(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/live")
    async def live(web: Any, request: Any) -> Any:
        return web.json({"status": "live"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        problem = rt.not_ready_because()
        if problem is None:
            return web.json({"status": "ready"})
        return web.json({"status": "not ready", "reason": problem}, status=503)

    async def kafka_link() -> None:
        # a worker with nothing to send may not try the broker for a while: probe it, so
        # that an outage is told (and /ready says so) whatever the worker is doing
        if not await reachable(rt.settings.kafka_bootstrap):
            rt.broker.failed()
        rt.broker.check()  # tells when Kafka is back, even with nobody asking /ready

    app.timer(1.0, name="churnwatch.kafka_link")(kafka_link)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _rebalanced(sender: Any, **kwargs: Any) -> None:
        rt.ready = True

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        rt.ready = False

    if rt.settings.lookup_enabled:
        register_lookup(app, rt)


async def reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to any of the bootstrap servers opens within ``timeout``."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            continue
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)),
                                               timeout)
        except (OSError, TimeoutError):
            continue
        writer.close()
        return True
    return False


def register_lookup(app: faust.App, rt: Runtime) -> None:
    """The customer lookup views (docs/operations.md#customer-lookup)."""
    assert rt.settings.lookup_token is not None
    token = rt.settings.lookup_token.get_secret_value()
    me = rt.settings.advertised_url()
    changelog = f"{rt.settings.app_id}-{HEALTH_TABLE}-changelog"

    def denied(web: Any, request: Any) -> Any | None:
        if authorized(request.headers.get("Authorization"), token):
            return None
        return web.json({"error": "a valid bearer token is required"}, status=401,
                        headers={"WWW-Authenticate": "Bearer"})

    def holds(partition: int) -> bool:
        return bool(app.assignor.is_active(TP(changelog, partition)))

    def recovering(web: Any) -> Any:
        return web.json({"error": "this worker's tables are recovering; ask again"},
                        status=503, headers={"Retry-After": "1"})

    async def forward(web: Any, request: Any, owner: str) -> Any:
        headers = {"Authorization": request.headers.get("Authorization", ""),
                   FORWARDED: me}
        try:
            async with app.http_client.get(
                    f"{owner}{request.rel_url}", headers=headers,
                    timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)) as answer:
                body = await answer.read()
                return web.bytes(body, content_type=answer.content_type,
                                 status=answer.status)
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            return web.json({"error": f"the worker owning this customer ({owner}) did not "
                             f"answer: {exc!r}"}, status=503, headers={"Retry-After": "1"})

    @app.page("/customers/{customer_id}")
    async def customer(web: Any, request: Any, customer_id: str) -> Any:
        refused = denied(web, request)
        if refused is not None:
            return refused
        key = customer_id.encode()
        partition = rt.partition_of(key)
        if not holds(partition):
            try:
                owner = str(app.router.key_store(HEALTH_TABLE, key)).rstrip("/")
            except KeyError:
                owner = ""
            if owner and owner != me and not request.headers.get(FORWARDED):
                return await forward(web, request, owner)
            return web.json({"error": f"partition {partition} is moving between workers; "
                             "ask again"}, status=503, headers={"Retry-After": "1"})
        if not rt.recovered():
            return recovering(web)
        raw = rt.tables[HEALTH_TABLE].get(key) if HEALTH_TABLE in rt.tables else None
        if raw is None:
            return web.json({"error": f"no health known for customer {customer_id!r}"},
                            status=404)
        answer = customer_health(customer_id, raw, rt.scoring)
        answer["answered_by"] = me
        return web.json(answer)

    @app.page("/customers")
    async def customers(web: Any, request: Any) -> Any:
        refused = denied(web, request)
        if refused is not None:
            return refused
        band = request.query.get("band", "at_risk")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = -1
        if band not in BANDS or not 1 <= limit <= MAX_LIMIT:
            return web.json({"error": f"band must be one of {', '.join(BANDS)} and limit "
                             f"1..{MAX_LIMIT}"}, status=400)
        if not rt.recovered():
            return recovering(web)
        table = rt.tables.get(HEALTH_TABLE)
        items = [] if table is None else [
            (key, raw) for key, raw in table.items()
            if raw is not None and holds(rt.partition_of(key))]
        return web.json({"worker": me, "band": band,
                         "customers": band_members(items, band, limit)})
