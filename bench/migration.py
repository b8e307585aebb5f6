"""IMAP migration throughput: Mailroom's migration workflow against two baselines, same run, same messages.

A real Dovecot on loopback (``tests/support/dovecot.py``) holds one account per corpus size (1,000
and 8,000 messages by default; ``bench/_migration_corpus.py``: mostly 2-20 KB text+HTML
conversations, 1 in 16 with a 100 KB-1 MB attachment, in INBOX, Sent, Archive and Work/Projects),
written as Maildir files. Each account is read once, unmeasured, before anything is timed (Dovecot
builds its indexes, the files are in the page cache). All three clients reach Dovecot the same way:
IMAPS (TLS from the first byte) on ``localhost`` (``--transport plain`` for no TLS).

* **A, bare fetch**: stdlib ``imaplib`` logs in, LISTs, and per folder EXAMINEs and sends one
  ``UID FETCH 1:* (BODY.PEEK[])``, keeping every message in memory: the fastest honest fetch.
* **B, mbsync** (isync): a generated config (IMAPStore, MaildirStore in an empty temporary
  directory, ``Sync Pull``, ``Create Near``) mirrors the account, timed from the empty Maildir.
  With its defaults mbsync fsyncs every message it writes; the same run without (``FSync no``) is
  printed for context, since the emulated store below keeps everything in memory.
* **Mailroom**: the real import path. The job is started through the API function
  (``POST /api/v1/migrations``, as a client would), then the migration state machine's steps
  (statemachines/migration.asl.json) run through the worker function's handler with the events
  the machine builds, its Retry rules honoured (``tests/support/migrations.py``'s driver: retried
  at once, without the IntervalSeconds): validate, plan, next_window, the ImportWindow Map over the
  batches with the MaxConcurrency ``next_window`` returns, finalize (and continue-as-new, for a
  mailbox that needs it). Each Map iteration runs in one of MaxConcurrency worker processes
  (``bench/_migration_worker.py``), warmed up before the clock starts: on AWS each batch is a
  Lambda sandbox of its own. Settings are the template's defaults (250 UIDs per batch, 4 at once,
  fetch chunks of 50, chunks of 100 stored at once, 8 S3 threads) unless ``MAILROOM_MIGRATION_*``
  says otherwise. AWS is
  moto's server in its own process (on AWS, DynamoDB's work is not on the worker's CPU), fresh for
  each import, with the local stack's moto fixes installed (``local.moto_patches.install()``,
  via bench/_moto_process.py; among them, transactions that no longer copy the whole table and
  queries that no longer sort it: without those, imports were quadratic). The table is
  template.yaml's (without its stream: no stream consumer runs here). Timed: the first step to the
  last (the API request that starts the job is not). The job must end ``completed`` with every
  message imported, or the measurement fails.

Printed per size: messages/s and MB/s of each, Mailroom's ratio to A (target >= 0.5) and to B
(target >= 1.0); then the time per message at the largest size over the smallest (target <= 1.2
for Mailroom; the baselines' for context), and where Mailroom's time went at the largest size:
IMAP, parsing, S3, DynamoDB, its own code, summed over the worker processes' threads (they run at
once, so the sum exceeds the wall time), with AWS calls per message and the DynamoDB requests per
message (target <= 0.1: imports write a chunk of messages with a few batched requests).
Baselines run ``--rounds`` times (median), half before and half after the Mailroom import. The
machine has 2 cores shared with other work: the wall-clock figures are indicative, the CPU times
steadier. Nothing is asserted about timing.

    python -m bench.migration [--quick] [--messages N ...] [--rounds R] [--transport ssl|plain]
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import json
import multiprocessing
import os
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
LAYER_DIR = ROOT / "layers" / "mailroom"
REGION = "us-east-1"
TABLE_NAME = "mailroom-bench-migration"
HOST = "localhost"  # the test CA's certificate names localhost (mbsync checks names, not IP addresses)
DEFAULT_SIZES = (1000, 8000)
QUICK_SIZES = (100, 800)
DEFAULT_ROUNDS = 2
TARGET_VS_FETCH = 0.5
TARGET_VS_MBSYNC = 1.0
TARGET_SCALING = 1.2
TARGET_DYNAMODB_PER_MESSAGE = 0.1
MB = 1024 * 1024


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    count: int
    size: int  # bytes of the messages as seeded


@dataclass
class Measured:
    seconds: float
    cpu: float  # the client's own CPU (this process for imaplib, the child for mbsync)
    count: int

    def rate(self, n: int) -> float:
        return n / self.seconds


@dataclass
class StepRecord:
    step: str
    wall: float
    cpu: float
    seconds: dict[str, float]
    calls: dict[str, int]
    error: str | None = None


@dataclass
class MailroomRun:
    seconds: float
    cpu_workers: float
    cpu_moto: float
    steps: list[StepRecord] = field(default_factory=list)
    concurrency: int = 0
    batches: int = 0

    @property
    def measured(self) -> Measured:
        return Measured(self.seconds, self.cpu_workers, 0)


@dataclass
class SizeResult:
    account: Account
    fetch: list[Measured] = field(default_factory=list)
    mbsync: list[Measured] = field(default_factory=list)
    mbsync_nofsync: list[Measured] = field(default_factory=list)
    mailroom: MailroomRun | None = None


# ----------------------------------------------------------------------------- the source


def seed(server: Any, count: int) -> Account:
    from bench._migration_corpus import FOLDERS, messages

    corpus = messages(count)
    user, password = server.new_user("bench")
    for folder in FOLDERS:
        chosen = [m for m in corpus if m.folder == folder]
        server.seed(
            user,
            folder,
            [m.raw for m in chosen],
            flags=[m.flags for m in chosen],
            internal_dates=[m.internal_date for m in chosen],
        )
    return Account(user, password, count, sum(len(m.raw) for m in corpus))


def _port(server: Any, transport: str) -> int:
    return int(server.ssl_port if transport == "ssl" else server.port)


# ----------------------------------------------------------------------------- baseline A: imaplib


def imaplib_fetch(server: Any, account: Account, transport: str) -> Measured:
    """Everything into memory with one UID FETCH per folder."""
    cpu, started = time.process_time(), time.perf_counter()
    if transport == "ssl":
        context = ssl.create_default_context(cafile=str(server.ca_file))
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(HOST, _port(server, transport), ssl_context=context)
    else:
        client = imaplib.IMAP4(HOST, _port(server, transport))
    kept: list[bytes] = []
    try:
        client.login(account.user, account.password)
        status, listed = client.list()
        if status != "OK":
            raise BenchError(f"imaplib LIST: {status} {listed!r}")
        for line in listed:
            text = line.decode() if isinstance(line, bytes) else str(line)
            if "\\noselect" in text.lower():
                continue
            name = text.rsplit(' "/" ', 1)[1]
            status, _ = client.select(name if name.startswith('"') else f'"{name}"', readonly=True)
            if status != "OK":
                raise BenchError(f"imaplib EXAMINE {name}: {status}")
            status, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
            if status != "OK":
                raise BenchError(f"imaplib UID FETCH in {name}: {status}")
            kept += [part[1] for part in data if isinstance(part, tuple)]
        client.logout()
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    fetched = sum(len(raw) for raw in kept)
    if len(kept) != account.count or fetched != account.size:
        raise BenchError(f"imaplib fetched {len(kept)} messages, {fetched} bytes; seeded {account}")
    return Measured(elapsed, cpu, len(kept))


# ----------------------------------------------------------------------------- baseline B: mbsync


def _mbsync_config(server: Any, account: Account, transport: str, maildir: Path, *, fsync: bool) -> str:
    tls = f"SSLType IMAPS\nCertificateFile {server.ca_file}\n" if transport == "ssl" else "SSLType None\n"
    return (
        f"FSync {'yes' if fsync else 'no'}\n\n"
        f"IMAPAccount source\nHost {HOST}\nPort {_port(server, transport)}\n"
        f"User {account.user}\nPass {account.password}\n{tls}\n"
        "IMAPStore source\nAccount source\n\n"
        f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\nSubFolders Verbatim\n\n"
        "Channel migrate\nFar :source:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n"
    )


def mbsync_mirror(server: Any, account: Account, transport: str, *, fsync: bool) -> Measured:
    """``mbsync -a`` from an empty Maildir; counts the files it wrote."""
    binary = shutil.which("mbsync")
    if binary is None:
        raise BenchError("mbsync is not installed: run `make system-deps` (package isync)")
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-mbsync-") as directory:
        maildir = Path(directory) / "mail"
        maildir.mkdir()
        config = Path(directory) / "mbsyncrc"
        config.write_text(_mbsync_config(server, account, transport, maildir, fsync=fsync))
        config.chmod(0o600)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [binary, "-c", str(config), "-a", "-q"], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise BenchError(f"mbsync failed ({done.returncode}): {done.stderr[-1000:]}")
        count = sum(
            len(files) for root, _dirs, files in os.walk(maildir) if Path(root).name in ("cur", "new")
        )
    if count != account.count:
        raise BenchError(f"mbsync wrote {count} messages; seeded {account.count}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(elapsed, cpu, count)


# ----------------------------------------------------------------------------- Mailroom


@contextlib.contextmanager
def moto_server(profile: Path | None = None) -> Iterator[tuple[int, int]]:
    """moto's server in its own process (bench/_moto_process.py installs the moto extensions):
    (port, pid). ``profile``: where it writes the CPU profile of its requests when it stops."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_moto_process.py"), *(["--profile", str(profile)] if profile else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise BenchError(f"_moto_process.py did not start (printed {line!r})")
        yield int(line), process.pid
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(120 if profile else 10)  # merging a profile takes a while
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (and its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _driver_class() -> type[Any]:
    from bench import _migration_worker
    from tests.support.migrations import Run, StepError, WorkflowDriver

    class PoolDriver(WorkflowDriver):  # type: ignore[misc]
        """tests.support.migrations' driver (the machine's states, Retry and Catch), with every
        task run in a worker process and the ImportWindow Map at its MaxConcurrency."""

        def __init__(self, pool: ProcessPoolExecutor) -> None:
            super().__init__()
            self.pool = pool
            self.records: list[StepRecord] = []
            self.concurrency = 0
            self.batches = 0
            self._lock = threading.Lock()

        def invoke(self, state_name: str, event: dict[str, Any]) -> Any:
            limits = self._limits.get(state_name, {})
            attempts: Counter[str] = Counter()
            while True:  # as the test driver: retried at once, without the Retry's IntervalSeconds
                out = self.pool.submit(_migration_worker.run_step, event).result()
                record = StepRecord(
                    str(event.get("step")), out["wall"], out["cpu"], out["seconds"], out["calls"]
                )
                record.error = out.get("error")
                with self._lock:
                    self.records.append(record)
                if record.error is None:
                    return out["result"]
                attempts[record.error] += 1
                if attempts[record.error] > limits.get(record.error, limits.get("States.ALL", 0)):
                    raise StepError(record.error, str(out.get("message")))

        def import_window(self, item_state: dict[str, Any], window: dict[str, Any], run: Run) -> None:
            """The Map's batches at its MaxConcurrency, each in a worker process."""
            self.concurrency = int(window["max_concurrency"])
            self.batches += len(window["batches"])
            with ThreadPoolExecutor(self.concurrency) as iterations:
                futures: list[Future[Any]] = [
                    iterations.submit(
                        self.invoke,
                        "ImportBatch",
                        {"step": "import_batch", "state": item_state, "seq": seq},
                    )
                    for seq in window["batches"]
                ]
            run.steps += ["import_batch"] * len(futures)
            for future in futures:
                future.result()

    return PoolDriver


def _environment(moto_port: int, server: Any, transport: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MAILROOM_TABLE_NAME": TABLE_NAME,
        "MAILROOM_IMAP_CA_FILE": str(server.ca_file) if transport == "ssl" else "",
        "POWERTOOLS_SERVICE_NAME": "mailroom",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # INFO would print a few lines per batch into the report
    }


def mailroom_migrate(
    server: Any, account: Account, transport: str, moto_profile: Path | None = None
) -> MailroomRun:
    import pytest

    from bench import _migration_worker
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store import migrations as store
    from mailroom.store.table import Table
    from tests.support.aws import create_table_from_template
    from tests.support.lambda_api import call
    from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox
    from tests.support.migrations import provision_migration_aws, start_body

    with moto_server(moto_profile) as (moto_port, moto_pid):
        patch = pytest.MonkeyPatch()
        try:
            for name, value in _environment(moto_port, server, transport).items():
                patch.setenv(name, value)
            get_settings.cache_clear()
            aws.reset_clients()
            create_table_from_template(aws.dynamodb(), TABLE_NAME)
            provision_migration_aws(patch)
            org = create_organization(Table(), name="Bench Co")
            org_id = str(org.organization["id"])
            add_domain(org, "example.com")
            mailbox = new_mailbox(org, "owner")
            body = start_body(
                mailbox["id"],
                PASSWORD,
                source_host=HOST,
                source_port=_port(server, transport),
                source_security="ssl" if transport == "ssl" else "none",
                source_email=account.user,
                source_password=account.password,
            )
            started = call(
                "migrations",
                "POST",
                "/api/v1/migrations",
                token=org.admin_token,
                json_body=body,
                headers=key(),
            )
            if started.status != 201:
                raise BenchError(f"starting the migration: {started.status} {started.body[:500]!r}")
            job_id = started.json()["data"]["id"]
            job = store.get(Table(), org_id, job_id)
            assert job is not None
            workers = get_settings().migration_map_concurrency
            context = multiprocessing.get_context("spawn")  # a clean interpreter, as a sandbox has
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_migration_worker.initialize
            ) as pool:
                # Warm sandboxes: every worker has imported the handler before the clock starts.
                pids: set[int] = set()
                for _attempt in range(20):
                    pids.update(pool.map(_migration_worker.warm, [0.5] * workers))
                    if len(pids) == workers:
                        break
                else:
                    raise BenchError(f"{workers} workers wanted, {len(pids)} warmed up")
                driver = _driver_class()(pool)
                moto_cpu = _process_cpu(moto_pid)
                began = time.perf_counter()
                runs = driver.run_job(job)
                elapsed = time.perf_counter() - began
                moto_cpu = _process_cpu(moto_pid) - moto_cpu
            view = call("migrations", "GET", f"/api/v1/migrations/{job_id}", token=org.admin_token).json()
            data = view.get("data") or {}
            imported, failed = data.get("imported_messages"), data.get("failed_messages")
            if runs[-1].end != "completed" or imported != account.count or failed:
                raise BenchError(
                    f"the migration ended {runs[-1].end} ({runs[-1].error}): {imported} imported, "
                    f"{failed} failed of {account.count}; {json.dumps(data)[:1500]}"
                )
            return MailroomRun(
                seconds=elapsed,
                cpu_workers=sum(r.cpu for r in driver.records),
                cpu_moto=moto_cpu,
                steps=driver.records,
                concurrency=driver.concurrency,
                batches=driver.batches,
            )
        finally:
            patch.undo()
            get_settings.cache_clear()
            aws.reset_clients()


# ----------------------------------------------------------------------------- report


def _median_rate(samples: list[Measured], n: int) -> float:
    return statistics.median(n / s.seconds for s in samples)


def _median_seconds(samples: list[Measured]) -> float:
    return statistics.median(s.seconds for s in samples)


def _median_cpu(samples: list[Measured]) -> float:
    return statistics.median(s.cpu for s in samples)


def _met(value: float, target: float, *, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    return f"target {'>=' if at_least else '<='} {target:g}: {'met' if ok else 'NOT met'}"


def _row(label: str, n: int, size: int, seconds: float, cpu: float) -> str:
    return (
        f"  {label:<44} {n / seconds:9.1f} {size / MB / seconds:8.2f} {seconds:9.2f} "
        f"{1000 * seconds / n:8.3f} {1000 * cpu / n:10.3f}"
    )


def report_size(result: SizeResult, transport: str) -> None:
    account, run = result.account, result.mailroom
    assert run is not None
    n, size = account.count, account.size
    print(f"{n} messages, {size / MB:.1f} MB (the same bytes for all three), {transport_label(transport)}")
    print(f"  {'':<44} {'msgs/s':>9} {'MB/s':>8} {'wall s':>9} {'ms/msg':>8} {'CPU ms/msg':>10}")
    fetch_s, mbsync_s = _median_seconds(result.fetch), _median_seconds(result.mbsync)
    nofsync_s = _median_seconds(result.mbsync_nofsync)
    print(_row("A  imaplib, UID FETCH 1:* per folder", n, size, fetch_s, _median_cpu(result.fetch)))
    print(_row("B  mbsync -a (defaults: FSync yes)", n, size, mbsync_s, _median_cpu(result.mbsync)))
    print(_row("   mbsync -a, FSync no (context)", n, size, nofsync_s, _median_cpu(result.mbsync_nofsync)))
    label = f"M  Mailroom workflow ({run.batches} batches, {run.concurrency} at once)"
    print(_row(label, n, size, run.seconds, run.cpu_workers))
    moto_ms = 1000 * run.cpu_moto / n
    print(f"     (CPU: the worker processes'; the emulated AWS took another {moto_ms:.2f} ms/msg in moto)")
    vs_fetch, vs_mbsync, vs_nofsync = fetch_s / run.seconds, mbsync_s / run.seconds, nofsync_s / run.seconds
    print(f"  Mailroom / bare fetch   {vs_fetch:7.3f}   ({_met(vs_fetch, TARGET_VS_FETCH, at_least=True)})")
    print(
        f"  Mailroom / mbsync       {vs_mbsync:7.3f}   ({_met(vs_mbsync, TARGET_VS_MBSYNC, at_least=True)})"
    )
    print(f"  Mailroom / mbsync FSync no (context) {vs_nofsync:.3f}")


def transport_label(transport: str) -> str:
    return "IMAPS on localhost" if transport == "ssl" else "plaintext IMAP on localhost"


def report_scaling(small: SizeResult, large: SizeResult) -> None:
    a, b = small.account.count, large.account.count
    small_run, large_run = small.mailroom, large.mailroom
    assert small_run is not None
    assert large_run is not None

    def line(label: str, small_s: float, large_s: float, target: bool = False) -> None:
        value = (large_s / b) / (small_s / a)
        verdict = f"   ({_met(value, TARGET_SCALING, at_least=False)})" if target else ""
        print(f"  {label:<48} {value:6.3f}{verdict}")

    def batches(run: MailroomRun) -> float:
        return sum(r.wall for r in run.steps if r.step == "import_batch")

    print(f"time per message at {b} / at {a}:")
    line("Mailroom workflow, wall clock", small_run.seconds, large_run.seconds, target=True)
    line("Mailroom, import_batch invocations summed", batches(small_run), batches(large_run))
    line("Mailroom, worker CPU", small_run.cpu_workers, large_run.cpu_workers)
    line("moto server CPU (emulated AWS)", small_run.cpu_moto, large_run.cpu_moto)
    line("A imaplib", _median_seconds(small.fetch), _median_seconds(large.fetch))
    line("B mbsync", _median_seconds(small.mbsync), _median_seconds(large.mbsync))
    line("  mbsync FSync no", _median_seconds(small.mbsync_nofsync), _median_seconds(large.mbsync_nofsync))


def _group(name: str) -> str:
    if name.startswith("aws dynamodb"):
        return "DynamoDB"
    if name.startswith("aws s3"):
        return "S3"
    if name.startswith("aws "):
        return "other AWS (KMS, Step Functions)"
    if name.startswith("imap UID FETCH"):
        return "IMAP fetch"
    if name.startswith("imap"):
        return "IMAP session (login, EXAMINE, SEARCH, LIST)"
    if name.startswith("parse"):
        return "MIME parse"
    if name.startswith("step"):
        return "step code / waiting on store threads"
    return "Mailroom's own code (store path)"


def report_breakdown(result: SizeResult) -> None:
    run = result.mailroom
    assert run is not None
    n = result.account.count
    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for record in run.steps:
        seconds.update(record.seconds)
        calls.update(record.calls)
    total = sum(seconds.values())
    print(
        f"where Mailroom's time went at {n} messages (thread-seconds summed over the worker processes; "
        f"{total:.1f} s in all for {run.seconds:.1f} s of wall time):"
    )
    groups: Counter[str] = Counter()
    for name, value in seconds.items():
        groups[_group(name)] += value
    for name, value in groups.most_common():
        print(f"  {name:<48} {value:8.1f} s {100 * value / total:5.1f}%  {1000 * value / n:7.2f} ms/msg")
    print("  in detail (calls per message, mean ms per call):")
    for name, value in seconds.most_common():
        print(
            f"    {name:<66} {value:8.1f} s {100 * value / total:5.1f}%  {calls[name] / n:6.2f}/msg "
            f"{1000 * value / max(1, calls[name]):8.2f} ms"
        )
    dynamodb = sum(count for name, count in calls.items() if name.startswith("aws dynamodb"))
    batch_calls: Counter[str] = Counter()
    for record in run.steps:
        if record.step == "import_batch":
            batch_calls.update(record.calls)
    in_batches = sum(count for name, count in batch_calls.items() if name.startswith("aws dynamodb"))
    print(
        f"  DynamoDB requests per message: {dynamodb / n:.3f} for the whole job "
        f"({_met(dynamodb / n, TARGET_DYNAMODB_PER_MESSAGE, at_least=False)}), "
        f"{in_batches / n:.3f} in import_batch"
    )
    steps: dict[str, list[StepRecord]] = {}
    for record in run.steps:
        steps.setdefault(record.step, []).append(record)

    def dynamodb_requests(records: list[StepRecord]) -> int:
        return sum(n for r in records for name, n in r.calls.items() if name.startswith("aws dynamodb"))

    print(
        "  DynamoDB requests by step: "
        + ", ".join(f"{step} {dynamodb_requests(records)}" for step, records in steps.items())
        + " ("
        + ", ".join(
            f"{name.removeprefix('aws dynamodb ')} {count}"
            for name, count in sorted(calls.items())
            if name.startswith("aws dynamodb")
        )
        + ")"
    )
    print(
        "  invocations: "
        + ", ".join(
            f"{step} {len(records)}x {sum(r.wall for r in records):.1f} s" for step, records in steps.items()
        )
    )
    errors = Counter(r.error for r in run.steps if r.error)
    if errors:
        print(f"  retried: {dict(errors)}")


_EMULATOR_PARTS = (  # (where a function lives, what it is), first match wins
    ("local/moto_patches", "the local stack's moto fixes (ours)"),
    ("moto/dynamodb/parsing", "moto DynamoDB: expression parsing and validation"),
    ("moto/dynamodb", "moto DynamoDB: items, indexes, conditions"),
    ("moto/s3", "moto S3"),
    ("moto/core/serialize", "moto: response serialization"),
    ("moto/", "moto: request parsing and dispatch"),
    ("werkzeug", "HTTP server (werkzeug, flask, socket I/O)"),
    ("flask", "HTTP server (werkzeug, flask, socket I/O)"),
    ("socket", "HTTP server (werkzeug, flask, socket I/O)"),
    ("http/server", "HTTP server (werkzeug, flask, socket I/O)"),
    ("copy.py", "deep copies (moto)"),
    ("json", "JSON (moto's request and response bodies)"),
)


def report_moto_profile(path: Path, n: int) -> None:
    """Where the emulator's CPU went (each function's own time, grouped by what it is part of),
    and its costliest requests."""
    import pstats

    stats: Any = pstats.Stats(str(path))
    parts: Counter[str] = Counter()
    for (filename, _line, name), row in stats.stats.items():
        where = f"{filename}:{name}"
        part = next((label for key, label in _EMULATOR_PARTS if key in where), "other (builtins, stdlib)")
        parts[part] += row[2]  # the function's own time
    total = sum(parts.values())
    print(f"where the emulator's CPU went at {n} messages ({total:.1f} s of request threads' CPU, profiled):")
    for label, seconds in parts.most_common():
        share = 100 * seconds / total
        print(f"  {label:<52} {seconds:7.1f} s {share:5.1f}%  {1000 * seconds / n:6.2f} ms/msg")
    actions: Counter[str] = Counter()
    for (filename, _line, name), row in stats.stats.items():
        if filename.endswith(("dynamodb/responses.py", "s3/responses.py")) and not name.startswith("_"):
            actions[f"{'DynamoDB' if 'dynamodb' in filename else 'S3'} {name}"] = row[3]
    print("  by action (cumulative CPU, the ones above 2%):")
    for name, seconds in actions.most_common():
        if seconds >= 0.02 * total and name not in {"DynamoDB call_action", "S3 call_action"}:
            print(f"    {name:<50} {seconds:7.1f} s {1000 * seconds / n:6.2f} ms/msg")


# ----------------------------------------------------------------------------- main


def measure(
    sizes: Sequence[int], rounds: int, transport: str, moto_profile: Path | None = None
) -> list[SizeResult]:
    """``moto_profile``: where the emulator's CPU profile of the largest size's import goes."""
    from tests.support.dovecot import DovecotServer

    results: list[SizeResult] = []
    with DovecotServer() as server:
        accounts = [seed(server, n) for n in sizes]
        for account in accounts:
            imaplib_fetch(server, account, transport)  # warm-up: Dovecot's indexes, the page cache
        for account in accounts:
            result = SizeResult(account)
            before = (rounds + 1) // 2
            for index in range(rounds):
                if index == before:
                    _progress(f"{account.count}: Mailroom")
                    result.mailroom = mailroom_migrate(
                        server, account, transport, moto_profile if account is accounts[-1] else None
                    )
                _progress(f"{account.count}: baselines, round {index + 1}")
                result.fetch.append(imaplib_fetch(server, account, transport))
                result.mbsync.append(mbsync_mirror(server, account, transport, fsync=True))
                result.mbsync_nofsync.append(mbsync_mirror(server, account, transport, fsync=False))
            if result.mailroom is None:
                _progress(f"{account.count}: Mailroom")
                result.mailroom = mailroom_migrate(
                    server, account, transport, moto_profile if account is accounts[-1] else None
                )
            results.append(result)
    return results


def _progress(text: str) -> None:
    sys.stderr.write(f"[bench.migration] {text}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.migration", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        nargs="+",
        help=f"corpus sizes, smallest first (default {' '.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {' '.join(map(str, QUICK_SIZES))} and 1 round (under ~2 minutes)",
    )
    parser.add_argument("--rounds", type=int, help=f"baseline rounds (default {DEFAULT_ROUNDS}; --quick: 1)")
    parser.add_argument("--transport", choices=("ssl", "plain"), default="ssl", help="default ssl (IMAPS)")
    parser.add_argument(
        "--moto-profile",
        type=Path,
        metavar="PATH",
        help="profile the emulator's CPU per request during the largest import (pstats to PATH; slows "
        "the emulator, so its msgs/s is not comparable) and print where it went",
    )
    args = parser.parse_args(argv)
    sizes = sorted(args.messages or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    if rounds < 1 or sizes[0] < 20:
        parser.error("--rounds must be at least 1 and --messages at least 20")
    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    print(
        f"cores: {os.cpu_count()} (shared with other work: wall-clock figures are indicative); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        results = measure(sizes, rounds, args.transport, args.moto_profile)
    except BenchError as exc:
        print(f"migration: {exc}", file=sys.stderr)
        return 1
    for result in results:
        report_size(result, args.transport)
        print()
    if len(results) > 1:
        report_scaling(results[0], results[-1])
        print()
    report_breakdown(results[-1])
    if args.moto_profile:
        print()
        report_moto_profile(args.moto_profile, results[-1].account.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
