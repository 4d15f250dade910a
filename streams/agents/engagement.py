"""Feature agent for the `engagement` step (see streams.pipeline.ENGAGEMENT)."""

from __future__ import annotations

from typing import Any

import faust

from streams.agents.features import register_feature_agent
from streams.pipeline import ENGAGEMENT
from streams.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> Any:
    return register_feature_agent(app, runtime, ENGAGEMENT)
