"""The agents of a churnwatch worker, one per module, listed explicitly.

Each module has ``register(app, runtime)``, which declares its tables and agents on the
app. Event families are not agents: they are steps of the ingest agent (see
docs/adding-an-agent.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from streams.runtime import Runtime

AGENT_MODULES = (
    "streams.agents.ingest",
    "streams.agents.lapse",
    "streams.agents.gauges",
)


def register_all(app: faust.App, runtime: Runtime) -> None:
    """Declare every agent of ``AGENT_MODULES`` on the app."""
    for name in AGENT_MODULES:
        import_module(name).register(app, runtime)
