"""Writing JSON Lines: the one writer behind every JSON Lines file churnwatch writes.

:func:`write_lines` puts lines in a file or a text stream (UTF-8, ``\\n`` endings, in
batches, with an optional progress callback); :func:`envelope_line` is the compact
``{"type": ..., "record": {...}}`` line of the event format (docs/simulator.md) that the
simulator and the scripted scenario write. Reading lines back is
:func:`streams.codec.from_json_line`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

__all__ = ["envelope_line", "write_lines"]


def envelope_line(type_name: str, record: Any) -> str:
    """The line (without line break) of one record already in its JSON form."""
    return json.dumps({"type": type_name, "record": record}, separators=(",", ":"))


def write_lines(
    lines: Iterable[str],
    target: str | Path | TextIO,
    *,
    progress: Callable[[int], object] | None = None,
    batch: int = 5_000,
) -> int:
    """Write ``lines`` (each without its line break) to a path or a text stream; return
    the number written. ``progress`` is called with the lines written since its previous
    call, once per ``batch`` lines and at the end."""
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8", newline="\n") as out:
            return write_lines(lines, out, progress=progress, batch=batch)
    count = pending = 0
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= batch:
            target.write("\n".join(chunk) + "\n")
            count += len(chunk)
            pending += len(chunk)
            chunk.clear()
            if progress is not None:
                progress(pending)
                pending = 0
    if chunk:
        target.write("\n".join(chunk) + "\n")
        count += len(chunk)
        pending += len(chunk)
    if progress is not None and pending:
        progress(pending)
    return count
