"""The worker's own HTTP views: /metrics, /live and /ready (and the timer that keeps the
Kafka link state /ready reports up to date)."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST

from streams.runtime import Runtime


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
        rt.broker.check()  # tells when Kafka is back, even with nobody asking /ready

    app.timer(1.0, name="churnwatch.kafka_link")(kafka_link)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _rebalanced(sender: Any, **kwargs: Any) -> None:
        rt.ready = True

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        rt.ready = False
