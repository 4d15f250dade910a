"""Reading a scoring config: TOML text or a file, or the packaged default, validated.

The version read gets the content's hash appended, so two different files never share one;
an invalid config raises :class:`ScoringConfigError` naming the bad key.
"""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from streams.domain.scoring.config import ScoringConfig, ScoringConfigError


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def parse_config(text: str, source: str = "<string>") -> ScoringConfig:
    """Parse and validate a scoring config; the version gets the content hash appended."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScoringConfigError(f"{source}: not valid TOML: {exc}") from exc
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    if isinstance(raw.get("version"), str):
        raw["version"] = f"{raw['version']}+{digest}"
    try:
        return ScoringConfig.model_validate(raw)
    except ValidationError as exc:
        raise ScoringConfigError(f"{source}: {_format_errors(exc)}") from exc


def load_config(path: Path | None = None) -> ScoringConfig:
    """Load a scoring config file, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("streams").joinpath("config/scoring.toml").read_text("utf-8")
        return parse_config(text, "default scoring.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScoringConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, str(path))
