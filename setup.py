"""Build hook: compiles the pure domain modules with mypyc when it can.

Everything else about the package is in pyproject.toml. The modules in ``COMPILED`` are
the per-event step and the score (pure Python, fully typed, no Faust, no pydantic model,
no I/O); mypyc turns them into C extensions that are imported in their place, several
times faster, with the same results. The build falls back to the pure-Python package,
which works the same, when:

- ``CHURN_PURE_PYTHON`` is set to anything but ``""`` or ``0``;
- mypyc cannot be imported (a build without isolation, in an environment without mypy);
- no C compiler, or no headers of the Python it builds for, is found.

An editable install (``pip install -e .``, which ``make venv`` runs) builds the
extensions next to their sources, where they shadow the ``.py`` files: after changing
one of ``COMPILED``, install again (``make venv`` does when they change). Each build first
removes the extensions an earlier one left there. ``python -m streams.native``
says which modules run compiled and whether any is older than its source.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

#: The modules compiled. A module whose functions tests swap at run time stays out (e.g.
#: ``streams/domain/health.py``: a test swaps its ``compute_score`` and
#: ``next_check_ms``), since a compiled module calls what it was compiled against; so do
#: pydantic models, Faust and I/O.
COMPILED = [
    "streams/domain/alerts.py",
    "streams/domain/at_risk.py",
    "streams/domain/btyd.py",
    "streams/domain/buckets.py",
    "streams/domain/due.py",
    "streams/domain/events.py",
    "streams/domain/features.py",
    "streams/domain/health_state.py",
    "streams/domain/outputs.py",
    "streams/domain/recent_ids.py",
    "streams/domain/rounding.py",
    "streams/domain/schedule.py",
    "streams/domain/stored.py",
    "streams/domain/value.py",
    "streams/families/__init__.py",
    "streams/families/billing.py",
    "streams/families/engagement.py",
    "streams/families/profile.py",
    "streams/families/purchases.py",
    "streams/families/support.py",
    "streams/pipeline.py",
    "streams/domain/scoring/compiled.py",
    "streams/domain/scoring/lookahead.py",
    "streams/domain/scoring/score.py",
]
#: The name of the shared library that holds them all (next to the ``streams`` folder).
GROUP = "churnwatch_native"

#: mypy's view of the code while compiling: the project's own annotations, whatever the
#: build environment holds (third-party modules read as Any), so that the compiled code
#: does not depend on where it is built. ``make lint`` runs mypy strict on everything.
MYPY_OPTIONS = ["--config-file=", "--no-site-packages", "--ignore-missing-imports"]


def _pure_requested() -> bool:
    return os.environ.get("CHURN_PURE_PYTHON", "") not in ("", "0")


def _compiler_found() -> bool:
    """A C compiler, and the interpreter's headers to compile against."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(shlex.split(cc)[0]) is not None and headers.exists()


def _remove_built(root: Path) -> None:
    """Delete the extensions an earlier (editable) build left next to the sources: a
    pure-Python build leaves none behind, and a module no longer compiled none either."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    for path in [*(root / "streams").rglob(f"*{suffix}"), root / f"{GROUP}__mypyc{suffix}"]:
        if path.exists():
            path.unlink()
            print(f"churnwatch: removed {path}", file=sys.stderr)


def _extensions() -> list[object]:
    reason = ("CHURN_PURE_PYTHON is set" if _pure_requested()
              else "no C compiler or no Python headers found" if not _compiler_found()
              else None)
    if reason is None:
        try:
            from mypyc.build import mypycify
        except ImportError:
            reason = "mypyc is not installed"
    _remove_built(Path(__file__).resolve().parent)
    if reason is not None:
        print(f"churnwatch: {reason}: pure-Python build", file=sys.stderr)
        return []
    return list(mypycify([*MYPY_OPTIONS, *COMPILED], opt_level="3", debug_level="0",
                         group_name=GROUP))


setup(ext_modules=_extensions())
