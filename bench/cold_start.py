"""Cold start of every function against a baseline measured in the same run.

Each measurement is a fresh interpreter (``bench/_child.py``) that imports one function's handler
module the way Lambda does (the function's folder, then the layer, on ``sys.path``) and serves one
real event: an HTTP API v2 request with a real token in its ``Authorization`` header, which the
function looks up itself (there is no authorizer: ``mailroom.auth``), so the first invoke includes
the token's lookup. Functions with other event sources (queues,
streams, schedules, SES) serve the sample event of their source from ``events/`` with nothing to do
(an empty batch, a schedule with nothing due); the migration worker, which Step Functions calls with
a job's state, is measured at import only. The ``fastapi`` column says whether the function has
imported FastAPI once it has served its event: functions that serve no HTTP must not (the import
contracts in ``make lint`` hold it; this shows what it costs). AWS is a moto server on loopback,
reached through ``AWS_ENDPOINT_URL``, so the first invoke pays for what a real one does (boto3
import, client, DynamoDB round trips) without leaving the machine.

The packages are the layer's: ``layers/mailroom/requirements.txt`` installed for this interpreter
into a cached folder (``.aws-sam/bench/``), and the children run without the virtualenv on
``sys.path`` (``-S``). The virtualenv is not a stand-in: it also holds aws-sam-cli's dependencies,
and botocore imports some of them when present (awscrt, pyOpenSSL → cryptography), adding ~70 ms
to every boto3 import that Lambda never pays. ``--site venv`` measures in the virtualenv instead
(also the fallback when the registry cannot be reached; the header says which was used).

The baseline, same harness: ``import fastapi, mangum, boto3`` and one DynamoDB client, i.e. what any
FastAPI-on-Lambda function with DynamoDB pays before doing anything of its own. Runs are interleaved
(every round runs every target, in a rotating order), so load from other processes on the machine
lands on all targets alike. Printed: medians and ratios. Nothing is asserted about timing.

The ratios use CPU time of the child by default (``--clock cpu``): importing is CPU-bound, and on a
shared machine the wall clock also counts time the child waited for a CPU, which swung single
functions' ratios by 0.4 between identical runs here. The other clock's init ratios are printed
too. ``--clock wall`` ranks by the wall clock (on Lambda, init is wall time on a fraction of a vCPU).

    python -m bench.cold_start [--runs N] [--only NAME ...] [--importtime] [--site layer|venv] [--against REF]

``--against REF`` measures every function a second time as the git revision ``REF`` has it (its
functions and layer code, exported into ``.aws-sam/bench/``; the same packages), interleaved in the
same rounds against the same baseline: before/after ratios of a change from one run, which load on
a shared machine cannot skew one way.

For a function whose init (import) ratio exceeds the target, the run ends with a ``-X importtime``
breakdown of that function: time by package, and which first-party module imports which package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "mailroom"
CHILD = Path(__file__).resolve().parent / "_child.py"
REQUIREMENTS = LAYER_DIR / "requirements.txt"
SITE_CACHE = ROOT / ".aws-sam" / "bench"
TABLE_NAME = "mailroom-bench"
REGION = "us-east-1"
INIT_RATIO_TARGET = 1.3
DEFAULT_RUNS = 5
CHILD_TIMEOUT_S = 180
FIRST_PARTY = frozenset({"mailroom", "app"})


# A worker's event: the sample of its source with nothing to do, so the first invoke pays for the
# imports and clients of the path without doing work that differs from run to run.
WORKER_EVENTS = {
    "SQS": "sqs_receive.json",
    "DynamoDB": "dynamodb_stream_insert.json",
    "ScheduleV2": "eventbridge_scheduled.json",
    "Schedule": "eventbridge_scheduled.json",
    "EventBridgeRule": "ses_delivery_delivered.json",
    "S3": "s3_object_created.json",
}


class BenchError(RuntimeError):
    """A measurement that did not happen as intended (the child failed or did not serve the event)."""


# --- what to measure, read from template.yaml ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    logical_id: str
    label: str  # the function's folder name: "account"
    code_dir: Path
    module: str
    handler: str
    kind: str  # "api" or "worker"
    method: str = ""
    path: str = ""

    source: str = ""  # a worker's event source type (SQS, ScheduleV2, ...), "" when invoked directly
    layer_dir: Path = LAYER_DIR  # where its ``mailroom`` package comes from (another revision's: --against)
    twin_of: str = ""  # --against: the label of the function this is the other revision of

    @property
    def route(self) -> str:
        if self.kind == "api":
            return f"{self.method} {self.path}"
        if self.label in PROBE_EVENTS:
            return "(unknown step: loads the step path, refuses)"
        if self.source or self.label in DIRECT_EVENTS:
            return f"({self.source or 'direct'} event)"
        return "(import only)"


def _logical_id(reference: Any) -> str | None:
    """The resource a ``!GetAtt X.Arn`` / ``!Ref X`` (short or long form) points at."""
    if isinstance(reference, dict) and len(reference) == 1:
        ((tag, value),) = reference.items()
        if tag in ("Ref", "Fn::Ref"):
            return str(value)
        if tag in ("GetAtt", "Fn::GetAtt"):
            return str(value[0] if isinstance(value, list) else str(value).split(".")[0])
    return None


def _pick_route(events: dict[str, Any]) -> tuple[str, str] | None:
    """One request per function: prefer a read on a path without parameters, because it serves the
    same request on every run (no writes pile up between runs) and needs no ids."""
    routes = []
    for event in events.values():
        if event.get("Type") != "HttpApi":
            continue
        props = event.get("Properties") or {}
        method = str(props.get("Method", "ANY")).upper()
        path = str(props.get("Path", "/"))
        routes.append((("{" in path, method not in ("GET", "ANY")), method, path))
    if not routes:
        return None
    _, method, path = min(routes, key=lambda r: r[0])
    return ("GET" if method == "ANY" else method), re.sub(r"\{[^}]+\}", "bench", path)


def _target(logical_id: str, props: dict[str, Any], kind: str) -> Target:
    code_dir = (ROOT / str(props["CodeUri"])).resolve()
    module, _, handler = str(props.get("Handler", "app.handler")).rpartition(".")
    return Target(logical_id, code_dir.name, code_dir, module, handler, kind)


def discover_targets(template: dict[str, Any]) -> list[Target]:
    """Every function with an HttpApi event, then every other function, in template order."""
    resources: dict[str, Any] = template.get("Resources") or {}
    targets: list[Target] = []
    workers: list[Target] = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        route = _pick_route(props.get("Events") or {})
        if route is None:
            sources = [str(e.get("Type")) for e in (props.get("Events") or {}).values()]
            source = next((s for s in sources if s in WORKER_EVENTS), "")
            workers.append(replace(_target(name, props, "worker"), source=source))
            continue
        method, path = route
        targets.append(replace(_target(name, props, "api"), method=method, path=path))
    return targets + workers


def function_environment(template: dict[str, Any]) -> dict[str, str]:
    """The Globals environment every function gets, with parameters at their defaults and the table
    at the bench's name: the functions run with the configuration they deploy with."""
    parameters = template.get("Parameters") or {}
    resources = template.get("Resources") or {}
    variables = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    resolved: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, str | int | float | bool):
            resolved[name] = str(value)
            continue
        referenced = _logical_id(value)
        if referenced in parameters:
            resolved[name] = str(parameters[referenced].get("Default", ""))
        elif referenced in resources and resources[referenced].get("Type") == "AWS::DynamoDB::Table":
            resolved[name] = TABLE_NAME
        # Anything else (other resources, pseudo parameters) has no local value: left unset.
    return resolved


# --- the packages the children import --------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where the children's third-party packages come from."""

    description: str
    packages_dir: Path | None  # None: the virtualenv's site-packages, through the ``site`` module

    @property
    def python_flags(self) -> list[str]:
        # -I: no PYTHONPATH, no current folder, no user site. -S: no ``site``, so no virtualenv either;
        # the child then sees the standard library plus the folders it puts on sys.path, like Lambda.
        return ["-I", "-S"] if self.packages_dir else ["-I"]


def layer_site() -> Site:
    """The layer's requirements installed for this interpreter, cached by the requirements' content."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = SITE_CACHE / f"site-{tag}-{digest}"
    if not (target / ".complete").exists():
        sys.stderr.write(f"installing the layer's requirements for this interpreter into {target} ...\n")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += ["--only-binary=:all:", "--target", str(partial), "-r", str(REQUIREMENTS)]
        process = subprocess.run(command, capture_output=True, text=True, check=False)
        if process.returncode != 0:
            tail = "\n".join(process.stderr.strip().splitlines()[-5:])
            raise BenchError(f"could not install the layer's requirements:\n{tail}")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        (target / ".complete").touch()
    return Site(f"the layer's requirements ({target.relative_to(ROOT)})", target)


def choose_site(kind: str) -> Site:
    venv = Site(f"virtualenv ({sys.prefix})", None)
    if kind == "venv":
        return venv
    try:
        return layer_site()
    except BenchError as exc:
        sys.stderr.write(f"{exc}\nfalling back to the virtualenv\n")
        return Site(f"{venv.description}; FALLBACK: the layer's requirements could not be installed", None)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Phases:
    import_ms: list[float] = field(default_factory=list)
    invoke_ms: list[float] = field(default_factory=list)

    @property
    def totals(self) -> list[float]:
        return [a + b for a, b in zip(self.import_ms, self.invoke_ms, strict=True)]


@dataclass
class Samples:
    by_clock: dict[str, Phases] = field(default_factory=lambda: {"cpu": Phases(), "wall": Phases()})
    status: str = ""
    fastapi: bool = False

    def add(self, result: dict[str, Any]) -> None:
        for clock, phases in self.by_clock.items():
            phases.import_ms.append(float(result[clock]["import_ms"]))
            phases.invoke_ms.append(float(result[clock]["invoke_ms"]))
        self.status = str(result["status"])
        self.fastapi = bool(result.get("fastapi"))


def run_child(
    spec: dict[str, Any], env: dict[str, str], site: Site, *, importtime: bool = False
) -> tuple[dict[str, Any], str]:
    # The same interpreter, flags and environment for every target and the baseline.
    command = [sys.executable, *site.python_flags, *(["-X", "importtime"] if importtime else []), str(CHILD)]
    try:
        process = subprocess.run(
            command,
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{spec.get('name', 'baseline')}: no answer within {CHILD_TIMEOUT_S} s") from exc
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = "\n".join(process.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{spec.get('name', 'baseline')}: child exited {process.returncode}\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    if not result.get("ok"):
        raise BenchError(
            f"{spec.get('name')}: the first invoke did not serve the event: {result.get('detail')}"
        )
    return result, process.stderr


@contextmanager
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """This process's environment for the run (the parent creates the organization and token through
    the same settings the children read), restored afterwards."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _child_env(bench_env: dict[str, str]) -> dict[str, str]:
    # Only what a Lambda function would see plus what the interpreter needs: no AWS_PROFILE, no
    # PYTHON* variables, no credentials of the person running the bench.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    return {**keep, **bench_env}


def _specs(
    targets: Sequence[Target], event_of: dict[str, dict[str, Any]], site: Site
) -> dict[str, dict[str, Any]]:
    packages = [str(site.packages_dir)] if site.packages_dir else []
    specs: dict[str, dict[str, Any]] = {
        "baseline": {"kind": "baseline", "name": "baseline", "region": REGION, "sys_path": packages}
    }
    for target in targets:
        specs[target.label] = {
            "kind": "function",
            "target_kind": target.kind,
            "name": target.label,
            # Lambda's order: the function's code (/var/task), then the layer (/opt/python: its
            # packages and the mailroom package).
            "sys_path": [str(target.code_dir), *packages, str(target.layer_dir)],
            "module": target.module,
            "handler": target.handler,
            "event": event_of[target.label],
        }
    return specs


# API functions that are clients of the API rather than readers of the table: the MCP server sends
# every request's token on to the HTTP API, which the bench does not run. Served without a token, it
# builds its whole app and answers 401 itself (the token is not this function's to look up).
UNAUTHENTICATED_PROBES = frozenset({"mcp"})


def build_events(targets: Sequence[Target], token: str) -> dict[str, Any]:
    """Real-shaped events from ``events/`` (the samples the tests use), filled in for this run. Every
    request carries the token; a public route ignores it."""
    from tests.support.lambda_api import http_event

    events: dict[str, Any] = {}
    for target in targets:
        if target.kind == "worker":
            events[target.label] = _worker_event(target)
        elif target.label in UNAUTHENTICATED_PROBES:
            events[target.label] = {**http_event(target.method, target.path), "expect_status": 401}
        else:
            events[target.label] = http_event(target.method, target.path, token=token)
    return events


# Functions invoked by another service's action rather than an event source mapping.
DIRECT_EVENTS = {"inbound": "ses_email_receiving.json"}
# The migration worker serves Step Functions tasks with a job's state; a step name it does not know
# makes it load its whole step path (services, IMAP client) and refuse, without a job to work on.
PROBE_EVENTS: dict[str, dict[str, Any]] = {"migration_worker": {"step": "bench-probe", "state": {}}}


# Queues whose messages are not about a mailbox: a message of the queue's own shape, for work that
# does not exist (the bulk verification worker refuses any other shape, which fails the batch).
SQS_BODIES: dict[str, dict[str, Any]] = {
    "verify_bulk": {"org_id": "org_bench", "job_id": "vbj_bench", "chunk": 0, "emails": []},
    "smtp_relay_test": {"org_id": "org_bench", "job_id": "rtj_bench"},
}


def _worker_event(target: Target) -> dict[str, Any] | None:
    """The sample event of the worker's source, made to need no work: an SQS job for a mailbox that
    does not exist, a stream insert for an organization without webhooks, a schedule with nothing
    due, an SES receipt event without records."""
    from tests.support.lambda_api import load_event

    if target.label in PROBE_EVENTS:
        return {**PROBE_EVENTS[target.label], "expect_error": True}
    name = WORKER_EVENTS.get(target.source) or DIRECT_EVENTS.get(target.label)
    if name is None:
        return None
    event = load_event(name)
    if target.source == "SQS":
        body = SQS_BODIES.get(target.label, {"org_id": "org_bench", "mailbox_id": "mbx_bench"})
        for record in event["Records"]:
            record["body"] = json.dumps(body)
    elif target.label in DIRECT_EVENTS:
        event["Records"] = []
    return event


@contextmanager
def bench_world(
    targets: Sequence[Target], site: Site
) -> Iterator[tuple[dict[str, dict[str, Any]], dict[str, str]]]:
    """A moto server with the template's table, an organization and its admin token; yields every
    target's child spec (the baseline's too) and the children's environment."""
    from tests.support.aws import create_table_from_template, template

    doc = template()
    with moto_endpoint() as endpoint:
        bench_env = {
            **function_environment(doc),
            "MAILROOM_TABLE_NAME": TABLE_NAME,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        with environment(bench_env):
            # Imported only now: settings and clients are read once per process and cached.
            from mailroom.auth import classify
            from mailroom.services.organizations import create_organization
            from mailroom.settings import get_settings
            from mailroom.store import aws
            from mailroom.store.table import Table

            get_settings.cache_clear()
            aws.reset_clients()
            create_table_from_template(aws.dynamodb(), TABLE_NAME)
            created = create_organization(Table(), name="Bench Co")
            claims = classify(f"Bearer {created.admin_token}", Table())
            if "org_id" not in claims:
                raise BenchError(f"the bench's own token is refused: {claims}")
            events = build_events([t for t in targets if not t.twin_of], created.admin_token)
            events.update({t.label: events[t.twin_of] for t in targets if t.twin_of})
            yield _specs(targets, events, site), _child_env(bench_env)


def measure(targets: Sequence[Target], runs: int, site: Site, clock: str, *, importtime_for: set[str]) -> int:
    with bench_world(targets, site) as (specs, env):
        names = list(specs)
        # One uncounted run each: writes __pycache__ for the code under test and warms the OS
        # file cache, so every counted run starts from the same state (Lambda ships .pyc too).
        for name in names:
            run_child(specs[name], env, site)
        samples = {name: Samples() for name in names}
        for round_number in range(runs):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].add(run_child(specs[name], env, site)[0])
                sys.stderr.write(".")
                sys.stderr.flush()
        sys.stderr.write("\n")

        flagged = report(targets, samples, runs, site, clock)
        breakdowns = [
            t.label for t in targets if not t.twin_of and (t.label in flagged or t.label in importtime_for)
        ]
        for label in breakdowns:
            _, stderr = run_child(specs[label], env, site, importtime=True)
            print_importtime(label, stderr)
    return 0


# --- output --------------------------------------------------------------------------------------


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} CPUs"


def report(
    targets: Sequence[Target], samples: dict[str, Samples], runs: int, site: Site, clock: str
) -> set[str]:
    """The table (by ``clock``); returns the labels whose init ratio exceeds the target."""
    median = statistics.median
    other = "wall" if clock == "cpu" else "cpu"
    base = samples["baseline"].by_clock[clock]
    base_import, base_total = median(base.import_ms), median(base.totals)
    print()
    print(
        f"Cold start: a fresh interpreter per run, median of {runs} runs, {clock} time "
        f"(Python {sys.version.split()[0]}, moto server on loopback, {_load()})"
    )
    print(f"packages: {site.description}")
    print(
        f"baseline = import fastapi, mangum, boto3 ({base_import:.0f} ms) + one DynamoDB client "
        f"({median(base.invoke_ms):.0f} ms) = {base_total:.0f} ms"
    )
    print()
    headers = [
        "function",
        "route",
        "status",
        "fastapi",
        "import ms",
        "1st invoke ms",
        "total ms",
        "init ratio",
        "total ratio",
    ]

    def measured(phases: Phases) -> list[str]:
        init_ratio = median(phases.import_ms) / base_import
        flag = " !" if init_ratio > INIT_RATIO_TARGET else ""
        return [
            f"{median(phases.import_ms):.0f}",
            f"{median(phases.invoke_ms):.0f}",
            f"{median(phases.totals):.0f}",
            f"{init_ratio:.2f}{flag}",
            f"{median(phases.totals) / base_total:.2f}",
        ]

    rows = [["baseline", "import fastapi, mangum, boto3; 1 client", "client", "yes", *measured(base)]]
    flagged: set[str] = set()
    other_ratios = []
    other_base = median(samples["baseline"].by_clock[other].import_ms)
    for target in targets:
        phases = samples[target.label].by_clock[clock]
        if median(phases.import_ms) / base_import > INIT_RATIO_TARGET:
            flagged.add(target.label)
        sample = samples[target.label]
        rows.append(
            [target.label, target.route, sample.status, "yes" if sample.fastapi else "no", *measured(phases)]
        )
        other_import = median(samples[target.label].by_clock[other].import_ms)
        other_ratios.append(f"{target.label} {other_import / other_base:.2f}")
    numeric = {4, 5, 6, 7, 8}
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    print()
    print(
        f"init ratio = median import / baseline median import (target <= {INIT_RATIO_TARGET}); "
        "total ratio = median (import + first invoke) / baseline median total."
    )
    print(f"init ratios by {other} time (baseline import {other_base:.0f} ms): {', '.join(other_ratios)}")
    twins = [t for t in targets if t.twin_of]
    if twins:
        ratio = {t.label: median(samples[t.label].by_clock[clock].import_ms) / base_import for t in targets}
        print(f"init ratio, {twins[0].label.split('@', 1)[1]} -> this tree (same run, same baseline):")
        print("  " + ", ".join(f"{t.twin_of} {ratio[t.label]:.2f} -> {ratio[t.twin_of]:.2f}" for t in twins))
    flagged = {label for label in flagged if "@" not in label}
    if flagged:
        print(f"over the init target: {', '.join(sorted(flagged))} (import breakdown below)")
    return flagged


def export_revision(ref: str) -> Path:
    """The functions and layer code of git revision ``ref``, exported once into the bench's cache."""
    import io
    import tarfile

    def git(*args: str) -> bytes:
        process = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)
        if process.returncode != 0:
            raise BenchError(f"git {' '.join(args)}: {process.stderr.decode().strip()}")
        return process.stdout

    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    target = SITE_CACHE / f"rev-{commit[:12]}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        archive = git("archive", "--format=tar", commit, "functions", "layers/mailroom/mailroom")
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        (target / ".complete").touch()
    return target


def with_revision(targets: Sequence[Target], ref: str) -> list[Target]:
    """Each target, followed by the same function as revision ``ref`` has it (when it has it)."""
    tree = export_revision(ref)
    paired: list[Target] = []
    for target in targets:
        paired.append(target)
        code_dir = tree / target.code_dir.relative_to(ROOT)
        if (code_dir / f"{target.module.replace('.', '/')}.py").exists():
            twin_layer = tree / LAYER_DIR.relative_to(ROOT)
            paired.append(
                replace(
                    target,
                    label=f"{target.label}@{ref}",
                    code_dir=code_dir,
                    layer_dir=twin_layer,
                    twin_of=target.label,
                )
            )
    return paired


@dataclass
class ImportLine:
    self_us: int
    cumulative_us: int
    depth: int
    name: str
    phase: str
    parent: ImportLine | None = None

    @property
    def top(self) -> str:
        return self.name.split(".")[0]


_IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def parse_importtime(stderr: str) -> list[ImportLine]:
    """``-X importtime`` lines, each linked to the module whose import triggered it. Lines come in
    completion order (children before their parent), so walking them backwards visits each parent
    before its children and a stack of open ancestors gives the parent."""
    lines: list[ImportLine] = []
    phase = "init"
    for raw in stderr.splitlines():
        if raw.startswith("bench-phase: "):
            phase = raw.split(": ", 1)[1].strip()
            continue
        match = _IMPORTTIME_RE.match(raw)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            lines.append(ImportLine(int(self_us), int(cumulative_us), len(indent) // 2, name, phase))
    ancestors: list[ImportLine] = []
    for line in reversed(lines):
        del ancestors[line.depth :]
        line.parent = ancestors[-1] if ancestors and ancestors[-1].phase == line.phase else None
        ancestors.append(line)
    return lines


def print_importtime(label: str, stderr: str) -> None:
    lines = parse_importtime(stderr)
    print()
    print(f"== {label}: where import time goes (one run under -X importtime, which adds its own overhead)")
    for phase, title in (("init", "init (module import)"), ("invoke", "first invoke (lazy imports)")):
        phase_lines = [line for line in lines if line.phase == phase]
        total = sum(line.self_us for line in phase_lines)
        if not total:
            continue
        by_package: dict[str, int] = defaultdict(int)
        for line in phase_lines:
            by_package[line.top] += line.self_us
        top = sorted(by_package.items(), key=lambda item: -item[1])[:10]
        print(f"  {title}: {total / 1000:.0f} ms; by package (self time):")
        print("    " + ", ".join(f"{name} {us / 1000:.0f} ms ({100 * us / total:.0f}%)" for name, us in top))
        # The edges that a first-party change can cut: first-party module -> other package.
        edges = [
            line
            for line in phase_lines
            if line.top not in FIRST_PARTY
            and line.top not in sys.stdlib_module_names
            and (line.parent is None or line.parent.top in FIRST_PARTY)
        ]
        edges.sort(key=lambda line: -line.cumulative_us)
        if edges:
            # importtime nests by import stack: the "importer" is the module being executed when the
            # import happened, which includes calls it made into other code (route decorators, ...).
            print("    third-party packages, by the first-party module executing when they were imported:")
        for line in edges[:8]:
            importer = line.parent.name if line.parent else "(called at run time)"
            print(f"      {importer:<42} -> {line.name:<40} {line.cumulative_us / 1000:7.0f} ms")


# --- entry point ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help=f"runs per target (default {DEFAULT_RUNS})"
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="function folder name(s)")
    parser.add_argument("--importtime", action="store_true", help="import breakdown for every target")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="the time the table and its ratios use (default: the child's CPU time)",
    )
    parser.add_argument(
        "--site",
        choices=("layer", "venv"),
        default="layer",
        help="packages from the layer's requirements (default) or from the virtualenv",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="also measure every function as git revision REF has it, in the same rounds (before/after)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    from tests.support.aws import template

    targets = discover_targets(template())
    if args.only:
        unknown = set(args.only) - {t.label for t in targets}
        if unknown:
            parser.error(f"unknown function(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t.label in args.only]
    try:
        site = choose_site(args.site)
        if args.against:
            targets = with_revision(targets, args.against)
        importtime_for = {t.label for t in targets} if args.importtime else set()
        return measure(targets, args.runs, site, args.clock, importtime_for=importtime_for)
    except BenchError as exc:
        print(f"cold_start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
