"""Feature agent for the `support` step (see streams.pipeline.SUPPORT)."""

from __future__ import annotations

from typing import Any

import faust

from streams.agents.features import register_feature_agent
from streams.pipeline import SUPPORT
from streams.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> Any:
    return register_feature_agent(app, runtime, SUPPORT)
