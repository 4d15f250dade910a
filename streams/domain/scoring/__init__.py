"""The customer health score: a declarative, versioned config and its evaluation.

measures (signal -> points 0..100 along a piecewise-linear curve)
  -> groups (weighted measures) -> profile (weighted groups) -> score 0..100 -> band.

Missing signals redistribute their weight: first among the measures present in the same
group, then among the groups that have any measure present. Every score keeps the
per-measure contributions and the config version that produced it.

The config's model and its validation are in :mod:`.config`, reading it in
:mod:`.loading`, what scoring reads of it on every evaluation in :mod:`.compiled`, the
score in :mod:`.score` and how a score moves with time between updates in
:mod:`.lookahead`.
"""

from streams.domain.scoring.compiled import CRITICAL_SUFFIX, interpolate
from streams.domain.scoring.config import (
    BANDS,
    ActivityRules,
    Alerts,
    Bands,
    Btyd,
    Champion,
    ChampionRule,
    ChurnReason,
    Fit,
    Group,
    Lapse,
    Link,
    Measure,
    Profile,
    Reason,
    ScoringConfig,
    ScoringConfigError,
    Segment,
)
from streams.domain.scoring.loading import load_config, parse_config
from streams.domain.scoring.lookahead import (
    fall_per_day,
    next_kink_d,
    next_tenure_d,
    steady_until,
)
from streams.domain.scoring.score import (
    Contribution,
    Score,
    btyd_value,
    compute_score,
    expected_gap,
    measure_value,
    score_with,
)

__all__ = [
    "BANDS",
    "CRITICAL_SUFFIX",
    "ActivityRules",
    "Alerts",
    "Bands",
    "Btyd",
    "Champion",
    "ChampionRule",
    "ChurnReason",
    "Contribution",
    "Fit",
    "Group",
    "Lapse",
    "Link",
    "Measure",
    "Profile",
    "Reason",
    "Score",
    "ScoringConfig",
    "ScoringConfigError",
    "Segment",
    "btyd_value",
    "compute_score",
    "expected_gap",
    "fall_per_day",
    "interpolate",
    "load_config",
    "measure_value",
    "next_kink_d",
    "next_tenure_d",
    "parse_config",
    "score_with",
    "steady_until",
]
