"""Which of churnwatch's modules run compiled, and whether any is older than its source.

The build compiles the pure domain modules with mypyc when it can (see setup.py); the
package works the same as pure Python. An editable install puts the extensions next to
their sources, where they are imported instead of the ``.py`` files, so an extension
built before its source last changed runs the old code: :func:`stale_extensions` finds
those (reinstall, or delete them). ``python -m streams.native`` prints both.
"""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)
PACKAGE_ROOT = Path(__file__).resolve().parent


def compiled_modules() -> list[str]:
    """The churnwatch modules imported so far that are C extensions, by name."""
    return sorted(name for name, module in list(sys.modules.items())
                  if (name == "streams" or name.startswith("streams."))
                  and str(getattr(module, "__file__", None) or "").endswith(_SUFFIXES))


def stale_extensions(root: Path = PACKAGE_ROOT) -> list[Path]:
    """Extensions under ``root`` built before the source next to them last changed. mypyc
    puts the code of every module in one shared library next to the package (``*__mypyc``)
    and leaves a small loader per module, which a rebuild may not touch: the library's
    time is the build's."""
    stale = []
    for suffix in _SUFFIXES:
        libraries = [p.stat().st_mtime for p in root.parent.glob(f"*__mypyc{suffix}")]
        for built in root.rglob(f"*{suffix}"):
            source = built.with_name(built.name.removesuffix(suffix) + ".py")
            built_at = max([built.stat().st_mtime, *libraries])
            if source.exists() and source.stat().st_mtime > built_at:
                stale.append(built)
    return sorted(stale)


def main() -> int:
    import streams.backtest  # noqa: F401  (imports every module the replay runs)

    names = compiled_modules()
    print(f"{len(names)} module(s) compiled" + (": " + ", ".join(names) if names else ""))
    stale = stale_extensions()
    for path in stale:
        print(f"stale (older than its source, reinstall): {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
