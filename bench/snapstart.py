"""What SnapStart saves on a cold start, measured locally by forking an initialised process.

On Lambda, SnapStart runs a published version's init once, snapshots the microVM's memory, and
resumes every new execution environment from it: a restored environment skips the imports and pays
only the after-restore hooks and its first invoke. The closest local analogue of a restore is a
fork: a process (``bench/_child.py``, ``restore`` mode) imports a function's handler as Lambda does
and runs the before-snapshot hooks (``mailroom.entry.snapstart``: priming boto3), then forks; the
child runs the after-restore hooks and serves the function's first event. It is timed against a
fresh process that imports the handler and serves the same event (the cold start without
SnapStart), in the same run, interleaved, with the harness of ``bench.cold_start`` (the layer's
packages, a moto server on loopback, the events it builds, one real token).

The runtime's hook library (``snapshot_restore_py``, which Lambda's Python runtimes ship and the
layer does not) is put on the children's path after the layer, where Lambda has its runtime.

Not measured: the restore itself (Lambda copies the snapshot's memory back; AWS documents the
restore as part of the "Restore Duration" of the first invoke, typically a few hundred ms and
billed), which a fork gets nearly for free; docs/snapstart.md discusses it.

    python -m bench.snapstart [--runs N] [--only NAME ...] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cold_start import (
    LAYER_DIR,
    ROOT,
    SITE_CACHE,
    BenchError,
    Samples,
    Site,
    _load,
    bench_world,
    choose_site,
    discover_targets,
    run_child,
)

DEFAULT_RUNS = 3
# A few of each kind by default (every function: --all): the API functions with the most imports,
# and the workers on the mail paths.
DEFAULT_TARGETS = ("account", "messages", "send", "agent_messages", "webhooks", "inbound", "webhook_delivery")


def runtime_dir() -> Path:
    """A folder holding only the runtime's hook library, copied from this interpreter's packages."""
    import snapshot_restore_py

    target = SITE_CACHE / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(snapshot_restore_py.__file__, target / "snapshot_restore_py.py")
    return target


def measure(labels: Sequence[str] | None, runs: int, site: Site, clock: str) -> int:
    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    from tests.support.aws import template

    targets = [t for t in discover_targets(template()) if labels is None or t.label in labels]
    runtime = str(runtime_dir())
    with bench_world(targets, site) as (specs, env):
        fresh = {t.label: specs[t.label] for t in targets if specs[t.label]["event"] is not None}
        restore: dict[str, dict[str, Any]] = {
            label: {**spec, "kind": "restore", "sys_path": [*spec["sys_path"], runtime]}
            for label, spec in fresh.items()
        }
        for label, spec in fresh.items():  # uncounted: __pycache__ and the file cache (bench.cold_start)
            run_child(spec, env, site)
            run_child(restore[label], env, site)
        samples = {label: (Samples(), Samples()) for label in fresh}
        names = list(fresh)
        for round_number in range(runs):
            shift = round_number % len(names)
            for label in names[shift:] + names[:shift]:
                samples[label][0].add(run_child(fresh[label], env, site)[0])
                samples[label][1].add(run_child(restore[label], env, site)[0])
                sys.stderr.write(".")
                sys.stderr.flush()
        sys.stderr.write("\n")
    report(samples, runs, site, clock)
    return 0


def report(samples: dict[str, tuple[Samples, Samples]], runs: int, site: Site, clock: str) -> None:
    median = statistics.median
    print()
    print(
        f"SnapStart, simulated by fork: median of {runs} runs, {clock} time "
        f"(Python {sys.version.split()[0]}, moto server on loopback, {_load()})"
    )
    print(f"packages: {site.description}")
    print()
    headers = [
        "function",
        "status",
        "fresh: import + 1st invoke ms",
        "init + prime ms",
        "restored: hooks + 1st invoke ms",
        "restored / fresh",
    ]
    rows = []
    ratios = []
    for label, (fresh, restored) in samples.items():
        fresh_total = median(fresh.by_clock[clock].totals)
        restored_first = median(restored.by_clock[clock].invoke_ms)
        ratio = restored_first / fresh_total
        ratios.append(ratio)
        rows.append(
            [
                label,
                restored.status,
                f"{fresh_total:.0f}",
                f"{median(restored.by_clock[clock].import_ms):.0f}",
                f"{restored_first:.0f}",
                f"{ratio:.2f}",
            ]
        )
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print(
            "  ".join(
                c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print()
    print(
        "restored / fresh = what a restored environment pays before its first response over what a "
        f"fresh one pays (median of the functions: {median(ratios):.2f}); init + prime is paid once per "
        "published version, when Lambda takes the snapshot. The restore itself is not included."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.snapstart", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help=f"runs per function (default {DEFAULT_RUNS})"
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="function folder name(s)")
    parser.add_argument("--all", action="store_true", help="every function with an event to serve")
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="default: the child's CPU time"
    )
    parser.add_argument("--site", choices=("layer", "venv"), default="layer", help="as in bench.cold_start")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    labels = None if args.all else (args.only or list(DEFAULT_TARGETS))
    try:
        return measure(labels, args.runs, choose_site(args.site), args.clock)
    except BenchError as exc:
        print(f"snapstart: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
