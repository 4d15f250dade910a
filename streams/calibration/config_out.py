"""Write a scoring config (a plain dict) as TOML the loader reads back unchanged."""

from __future__ import annotations

import json
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()
                                if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table(value: Any) -> bool:
    """A dict written as its own [section]: one that holds a dict of dicts or more than
    scalars (a dict of scalars only, such as a group's weights, is written inline)."""
    return isinstance(value, dict) and any(
        isinstance(v, dict | list) for v in value.values())


def to_toml(data: dict[str, Any], header: str = "") -> str:
    """``data`` as TOML; ``header`` lines become comments at the top."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _emit(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    simple = {k: v for k, v in table.items()
              if v is not None and not (_is_table(v) or _is_section_of_tables(v)
                                        or (not path and isinstance(v, dict)))}
    nested = {k: v for k, v in table.items() if k not in simple and v is not None}
    if path and (simple or not nested):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in simple.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in nested.items():
        _emit(lines, [*path, k], v)


def _is_section_of_tables(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(v, dict) for v in value.values())
