"""``python -m bench [NAME ...]``: run every benchmark in this package (or the ones named), in name order.

The exit status is non-zero only when a benchmark could not run (a failed measurement), never
because of what it measured.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def benchmarks() -> dict[str, Callable[[Sequence[str]], int]]:
    """Modules of this package with a ``main``; helpers (``_child``, ...) start with an underscore."""
    found: dict[str, Callable[[Sequence[str]], int]] = {}
    for info in sorted(pkgutil.iter_modules([str(PACKAGE_DIR)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        entry = getattr(module, "main", None)
        if callable(entry):
            found[info.name] = entry
    return found


def main(argv: Sequence[str]) -> int:
    available = benchmarks()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr
        )
        return 2
    failed = []
    for name in argv or list(available):
        print(f"### bench.{name}", flush=True)
        if available[name]([]) != 0:
            failed.append(name)
    if failed:
        print(f"benchmarks that could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
