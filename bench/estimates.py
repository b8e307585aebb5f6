"""Migration estimates against what the imports then took: time and storage, estimate / actual.

A real Dovecot on loopback (``tests/support/dovecot.py``) holds accounts of the migration bench's
corpus (``bench/_migration_corpus.py``: 2-20 KB conversations, 1 in 16 with a 100 KB-1 MB
attachment, in four folders). AWS is moto in this process (as the integration tests); every
request goes through the API functions (``tests/support/lambda_api.call``), every import through the
migration state machine's steps (``tests/support/migrations.py``'s driver, batches one after the
other). In order:

1. a warm-up import (``WARM_UP`` messages: this process's first import pays for imports and first
   clients, as a new deployment's first Lambda sandboxes do), then its record is deleted (what
   docs/migrations.md says to do to measure afresh); then a calibration account is imported: before
   it the deployment has no throughput (the estimate's basis is ``default``); its completion
   records the first measurement;
2. for each target size: ``POST /migrations/test-connection`` answers an estimate (counts and sizes
   from STATUS=SIZE, the measured throughput), then the account is imported: estimate / actual for
   the duration (``started_at`` to ``finished_at``) and for the storage (the mailbox's used bytes);
   that import then joins the measurement;
3. the largest target again through a Dovecot without STATUS=SIZE: the bounded RFC822.SIZE sample's
   bytes / the exact bytes.

The time model is per message (overhead + messages ÷ rate), measured on this machine while it runs
other work, so the time ratio carries that noise; storage is exact when counted. Nothing is
asserted about timing.

    python -m bench.estimates [--calibrate N] [--targets N ...] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
TABLE = "mailroom-bench-estimates"
WARM_UP = 20
DEFAULT_CALIBRATION = 150
DEFAULT_TARGETS = (60, 300)
QUICK = (40, (20, 80))


class BenchError(RuntimeError):
    pass


class _Env:
    """What ``provision_migration_aws`` sets, set for the process (it takes a monkeypatch)."""

    @staticmethod
    def setenv(name: str, value: str) -> None:
        os.environ[name] = value


@contextmanager
def emulated_aws() -> Iterator[None]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MAILROOM_TABLE_NAME": TABLE,
            "MAILROOM_IMAP_TIMEOUT_SECONDS": "30",
            "MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE": "1000",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from local.moto_patches import install
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from tests.support.aws import create_table_from_template

    get_settings.cache_clear()
    aws.reset_clients()
    install()
    with mock_aws():
        create_table_from_template(aws.dynamodb(), TABLE)
        yield
    aws.reset_clients()


def seed(server: Any, count: int, offset: int) -> tuple[str, str, int]:
    """An account of ``count`` corpus messages (from message ``offset``): user, password, octets."""
    from bench._migration_corpus import FOLDERS, messages

    corpus = messages(offset + count)[offset:]
    user, password = server.new_user("estimate")
    for folder in FOLDERS:
        chosen = [m for m in corpus if m.folder == folder]
        if chosen:
            server.seed(user, folder, [m.raw for m in chosen], flags=[m.flags for m in chosen])
    return user, password, sum(len(m.raw) for m in corpus)


class World:
    def __init__(self, server: Any) -> None:
        from mailroom.services.organizations import create_organization
        from mailroom.store.table import Table
        from tests.support.mailboxes import add_domain
        from tests.support.migrations import provision_migration_aws

        self.server = server
        self.table = Table()
        provision_migration_aws(_Env())
        os.environ["MAILROOM_IMAP_CA_FILE"] = str(server.ca_file)
        from mailroom.settings import get_settings

        get_settings.cache_clear()
        self.org = create_organization(self.table, name="Estimates bench")
        add_domain(self.org, "bench.example.com")
        self.mailboxes = 0

    def source(self, server: Any, user: str, password: str) -> dict[str, Any]:
        return {
            "provider": "generic_imap",
            "source_host": "127.0.0.1",
            "source_port": server.ssl_port,
            "source_security": "ssl",
            "source_email": user,
            "source_password": password,
        }

    def estimate(self, server: Any, user: str, password: str) -> dict[str, Any]:
        from tests.support.lambda_api import call
        from tests.support.mailboxes import key

        result = call(
            "migrations",
            "POST",
            "/api/v1/migrations/test-connection",
            token=self.org.admin_token,
            json_body=self.source(server, user, password),
            headers=key(),
        )
        if result.status != 200:
            raise BenchError(f"test-connection: {result.status} {result.body[:300]!r}")
        return result.json()["estimate"]  # type: ignore[no-any-return]

    def migrate(self, user: str, password: str) -> tuple[float, int]:
        """Import the account into a new mailbox: (seconds from start to end, bytes stored)."""
        from mailroom import clock
        from mailroom.store import mailboxes
        from mailroom.store import migrations as store
        from tests.support.lambda_api import call
        from tests.support.mailboxes import PASSWORD, key, new_mailbox
        from tests.support.migrations import WorkflowDriver, start_body

        self.mailboxes += 1
        mailbox = new_mailbox(self.org, f"target{self.mailboxes}", "bench.example.com", quota=200)
        body = start_body(mailbox["id"], PASSWORD, **self.source(self.server, user, password))
        started = call(
            "migrations",
            "POST",
            "/api/v1/migrations",
            token=self.org.admin_token,
            json_body=body,
            headers=key(),
        )
        if started.status != 201:
            raise BenchError(f"start: {started.status} {started.body[:300]!r}")
        org_id = str(self.org.organization["id"])
        job = store.get(self.table, org_id, started.json()["data"]["id"])
        if job is None:
            raise BenchError("the job was not written")
        runs = WorkflowDriver().run_job(job)
        if runs[-1].end != "completed":
            raise BenchError(f"the import ended {runs[-1].end}: {runs[-1].error}")
        done = store.get(self.table, org_id, job["id"]) or {}
        seconds = (clock.parse_iso(done["finished_at"]) - clock.parse_iso(done["started_at"])).total_seconds()
        stored = mailboxes.get(self.table, org_id, mailbox["id"]) or {}
        return seconds, int(stored.get("used_bytes", 0))


def _basis(estimate: dict[str, Any]) -> str:
    basis = estimate["basis"]
    return f"{basis['messages']}/{basis['size']}/{basis['throughput']} ({basis['jobs_measured']} jobs)"


def run(calibration: int, targets: Sequence[int]) -> None:
    from tests.support.dovecot import DovecotServer

    with DovecotServer() as server, emulated_aws():
        world = World(server)
        user, password, _octets = seed(server, WARM_UP, 0)
        cold, _stored = world.migrate(user, password)
        from mailroom.store import keys

        world.table.delete(keys.MIGRATION_THROUGHPUT_PK, keys.MIGRATION_THROUGHPUT_SK)
        print(f"warm-up: {WARM_UP} messages in {cold:.1f} s (its record deleted)")
        offset = WARM_UP
        user, password, octets = seed(server, calibration, offset)
        offset += calibration
        before = world.estimate(server, user, password)
        started = time.perf_counter()
        seconds, stored = world.migrate(user, password)
        print(
            f"calibration: {calibration} messages, {octets / 1e6:.2f} MB in {seconds:.1f} s "
            f"({time.perf_counter() - started:.1f} s wall); its estimate before any job: "
            f"{before['estimated_seconds']} s, basis {_basis(before)}"
        )
        print(
            f"{'messages':>9} {'est. s':>8} {'actual s':>9} {'time e/a':>9} {'est. MB':>8} {'stored MB':>9} "
            f"{'bytes e/a':>9}  basis"
        )
        for count in targets:
            user, password, octets = seed(server, count, offset)
            offset += count
            estimate = world.estimate(server, user, password)
            seconds, stored = world.migrate(user, password)
            print(
                f"{count:>9} {estimate['estimated_seconds']:>8} {seconds:>9.1f} "
                f"{estimate['estimated_seconds'] / seconds:>9.2f} {estimate['bytes'] / 1e6:>8.2f} "
                f"{stored / 1e6:>9.2f} {estimate['bytes'] / max(stored, 1):>9.3f}  {_basis(estimate)}"
            )
        with DovecotServer(without_capabilities=["STATUS=SIZE"]) as bare:
            os.environ["MAILROOM_IMAP_CA_FILE"] = str(bare.ca_file)
            from mailroom.settings import get_settings

            get_settings.cache_clear()
            count = max(1000, *targets)
            user, password, octets = seed(bare, count, 0)
            started = time.perf_counter()
            sampled = world.estimate(bare, user, password)
            print(
                f"without STATUS=SIZE, {count} messages: sampled {sampled['bytes'] / 1e6:.2f} MB / exact "
                f"{octets / 1e6:.2f} MB = {sampled['bytes'] / octets:.3f} (basis {sampled['basis']['size']}, "
                f"≤ 300 sizes read; test-connection {time.perf_counter() - started:.2f} s)"
            )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.estimates", description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", type=int, default=DEFAULT_CALIBRATION)
    parser.add_argument("--targets", type=int, nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--quick", action="store_true", help=f"calibrate {QUICK[0]}, targets {QUICK[1]}")
    args = parser.parse_args(argv)
    calibration, targets = (QUICK[0], QUICK[1]) if args.quick else (args.calibrate, tuple(args.targets))
    if calibration < 1 or any(t < 1 for t in targets):
        print("estimates: message counts must be at least 1", file=sys.stderr)
        return 2
    import logging

    logging.disable(logging.WARNING)
    try:
        run(calibration, targets)
    except (BenchError, RuntimeError) as exc:
        print(f"estimates: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
