"""Estimates from measurement through the API functions (tests/support/lambda_api.call, AWS in moto)
against a real Dovecot: the test connection and the bulk preview count and size real sources
(STATUS=SIZE, or a bounded RFC822.SIZE sample from a Dovecot that does not offer it), and a job
completed through the state machine's steps (tests/support/migrations.py's WorkflowDriver) makes
the next estimates' throughput measured."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mailroom.services import migration_probe
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store import migrations as store
from mailroom.store.table import Table
from tests.support.dovecot import DovecotServer, dovecot_server
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox, ok
from tests.support.migrations import WorkflowDriver, provision_migration_aws, start_body

__all__ = ["dovecot_server"]  # the session fixture, used by name

BASIS_DEFAULT = {"messages": "default", "size": "default", "throughput": "default", "jobs_measured": 0}


def message(n: int, padding: int) -> bytes:
    body = b"x" * padding
    return b"From: a@example.net\r\nSubject: m%d\r\nMessage-ID: <m%d-%d@example.net>\r\n\r\n%s\r\n" % (
        n,
        n,
        padding,
        body,
    )


def seed(server: DovecotServer, user: str, folder: str, count: int, *, step: int = 97) -> int:
    """``count`` messages of growing sizes; their total octets (CRLF already: RFC822.SIZE)."""
    messages = [message(n, 200 + n * step) for n in range(count)]
    server.seed(user, folder, messages)
    return sum(len(m) for m in messages)


@dataclass
class Env:
    org: NewOrganization
    table: Table

    def test_connection(self, server: DovecotServer, user: str, password: str) -> dict[str, Any]:
        body = {
            "provider": "generic_imap",
            "source_host": "127.0.0.1",
            "source_port": server.ssl_port,
            "source_security": "ssl",
            "source_email": user,
            "source_password": password,
        }
        result = call(
            "migrations",
            "POST",
            "/api/v1/migrations/test-connection",
            token=self.org.admin_token,
            json_body=body,
            headers=key(),
        )
        return answered(result)

    def preview(self, server: DovecotServer, data: str, **extra: Any) -> dict[str, Any]:
        body = {
            "data": data,
            "provider": "generic_imap",
            "source_host": "127.0.0.1",
            "source_port": server.ssl_port,
            "source_security": "ssl",
            **extra,
        }
        result: Result = call(
            "migration_batches",
            "POST",
            "/api/v1/migrations/bulk/preview",
            token=self.org.admin_token,
            json_body=body,
            headers=key(),
        )
        return answered(result)


def answered(result: Result) -> dict[str, Any]:
    """The body of a 200 that is not in a ``data`` envelope (test-connection, the preview)."""
    assert result.status == 200, (result.status, result.body[:2000])
    return result.json()  # type: ignore[no-any-return]


@pytest.fixture
def env(
    moto_env: None,
    monkeypatch: pytest.MonkeyPatch,
    table: Table,
    org: NewOrganization,
    dovecot_server: DovecotServer,
) -> Iterator[Env]:
    provision_migration_aws(monkeypatch)
    monkeypatch.setenv("MAILROOM_IMAP_CA_FILE", str(dovecot_server.ca_file))
    monkeypatch.setenv("MAILROOM_IMAP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE", "1000")
    monkeypatch.setenv("MAILROOM_MIGRATION_BATCH_SIZE", "10")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    yield Env(org, table)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def no_status_size() -> Iterator[DovecotServer]:
    """A Dovecot that does not offer STATUS=SIZE: sizes must be sampled."""
    with DovecotServer(without_capabilities=["STATUS=SIZE"]) as server:
        yield server


def test_test_connection_counts_sizes_with_status_size(env: Env, dovecot_server: DovecotServer) -> None:
    user, password = dovecot_server.new_user("est")
    octets = seed(dovecot_server, user, "INBOX", 12) + seed(dovecot_server, user, "Sent", 5)
    tested = env.test_connection(dovecot_server, user, password)
    assert tested["folders"]["INBOX"] == 12 and tested["folders"]["Sent"] == 5
    estimate = tested["estimate"]
    assert (estimate["messages"], estimate["bytes"]) == (17, octets)
    assert estimate["basis"] == {**BASIS_DEFAULT, "messages": "counted", "size": "counted"}
    assert estimate["estimated_seconds"] == math.ceil(30 + 17 / 10)  # the default throughput


def test_without_status_size_the_sizes_are_sampled_within_the_bound(
    env: Env, no_status_size: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOM_IMAP_CA_FILE", str(no_status_size.ca_file))
    get_settings.cache_clear()
    user, password = no_status_size.new_user("sample")
    octets = seed(no_status_size, user, "INBOX", 60) + seed(no_status_size, user, "Archive", 20, step=40)

    # Every message fits the default bound (300): every RFC822.SIZE read, the total exact.
    counted = env.test_connection(no_status_size, user, password)["estimate"]
    assert (counted["messages"], counted["bytes"], counted["basis"]["size"]) == (80, octets, "counted")

    # A bound of 8 sizes: 6 from INBOX and 2 from Archive, spread over each; the mean stands in.
    monkeypatch.setattr(migration_probe, "SAMPLE_MESSAGES", 8)
    sampled = env.test_connection(no_status_size, user, password)["estimate"]
    assert sampled["basis"] == {**BASIS_DEFAULT, "messages": "counted", "size": "sampled"}
    assert sampled["messages"] == 80
    assert abs(sampled["bytes"] - octets) / octets < 0.1, (sampled["bytes"], octets)


def test_a_preview_probes_rows_and_a_completed_job_makes_throughput_measured(
    env: Env, dovecot_server: DovecotServer
) -> None:
    server = dovecot_server
    accounts = []
    for index, count in enumerate((25, 7, 3)):
        user, password = server.new_user("row")
        octets = seed(server, user, "INBOX", count)
        mailbox = new_mailbox(env.org, f"estimate{index}")
        accounts.append((user, password, mailbox, count, octets))
    data = "\n".join(f"{u},{p},{m['address']}" for u, p, m, _, _ in accounts)
    data += f"\n{accounts[0][0]},wrong-password,nobody@example.com"  # not valid: never probed

    quick = env.preview(server, data, measure_sources=False)
    assert quick["time_estimate"]["basis"] == BASIS_DEFAULT
    assert all(row["source_size"] is None for row in quick["rows"])

    # Every valid row probed (3 of at most 10): counted messages and sizes (STATUS=SIZE).
    probed = env.preview(server, data)
    measured = {**BASIS_DEFAULT, "messages": "counted", "size": "counted"}
    assert probed["time_estimate"]["basis"] == measured and probed["storage"]["basis"] == measured
    sizes = [row["source_size"] for row in probed["rows"]]
    assert [(s["messages"], s["bytes"], s["size_basis"]) for s in sizes[:3]] == [
        (count, octets, "counted") for _, _, _, count, octets in accounts
    ]
    assert sizes[3] is None
    assert probed["time_estimate"]["messages"] == 35 and probed["time_estimate"]["rows_assumed"] == 0
    assert probed["storage"]["estimated_bytes"] == sum(a[4] for a in accounts)

    # A single migration of the first account: before planning, the defaults; once planned, its
    # counted messages and sizes; once completed, its record is the deployment's throughput.
    user, password, mailbox, count, octets = accounts[0]
    started = call(
        "migrations",
        "POST",
        "/api/v1/migrations",
        token=env.org.admin_token,
        json_body=start_body(
            mailbox["id"], PASSWORD, source_port=server.ssl_port, source_email=user, source_password=password
        ),
        headers=key(),
    )
    job = ok(started, 201)
    assert job["estimate"]["basis"] == BASIS_DEFAULT and job["estimate"]["messages"] == 5000
    item = store.get(env.table, str(env.org.organization["id"]), job["id"])
    assert item is not None
    runs = WorkflowDriver().run_job(item)
    assert runs[-1].end == "completed", [(r.end, r.error) for r in runs]

    record = env.table.get(keys.MIGRATION_THROUGHPUT_PK, keys.MIGRATION_THROUGHPUT_SK)
    assert record is not None
    assert (record["jobs"], record["messages"], record["bytes"]) == (1, count, octets)
    assert int(record["transfer_ms"]) > 0 and int(record["overhead_ms"]) >= 0
    rate = count / (int(record["transfer_ms"]) / 1000)

    done = ok(call("migrations", "GET", f"/api/v1/migrations/{job['id']}", token=env.org.admin_token))
    assert done["estimate"]["basis"] == {
        "messages": "counted",
        "size": "counted",
        "throughput": "measured",
        "jobs_measured": 1,
    }
    assert (done["estimate"]["messages"], done["estimate"]["bytes"]) == (count, octets)
    # One job measured: its own estimate is its own duration (rounded up to the second).
    actual = (int(record["transfer_ms"]) + int(record["overhead_ms"])) / 1000
    assert actual <= done["estimate"]["estimated_seconds"] < actual + 1.001

    # The next preview's throughput is this deployment's.
    again = env.preview(server, data)
    assert again["time_estimate"]["basis"] == {**measured, "throughput": "measured", "jobs_measured": 1}
    assumptions = again["time_estimate"]["assumptions"]
    assert assumptions["messages_per_second"] == round(rate, 3)
    assert assumptions["per_job_overhead_seconds"] == round(int(record["overhead_ms"]) / 1000, 3)


def test_the_plan_sizes_only_the_uids_it_will_import(
    no_status_size: DovecotServer, dovecot_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the plan step measures (``Target`` with UIDs, after ``import_since``): by UID, never
    the whole folder's STATUS SIZE."""
    from mailroom.imap.source import SourceSession
    from mailroom.loops import run_on_thread_loop

    sizes = {}
    for server in (no_status_size, dovecot_server):
        user, _password = server.new_user("plan")
        messages = [message(n, 100 + 50 * n) for n in range(30)]
        server.seed(user, "INBOX", messages)
        wanted = messages[10:]  # as if import_since left out the first ten

        async def measure(server: DovecotServer = server, user: str = user) -> Any:
            session = await SourceSession.open(
                server.account(user), allow_private=True, ca_file=server.ca_file
            )
            async with session:
                folders = await session.folders()
                inbox = next(f for f in folders if f.name == "INBOX")
                await session.select(inbox.raw_name)
                uids = (await session.uids())[10:]
                return await migration_probe.measure(session, [migration_probe.Target(inbox, uids)])

        async def main() -> Any:
            return await measure()

        exact = run_on_thread_loop(main())
        assert (exact.messages, exact.bytes, exact.basis) == (20, sum(len(m) for m in wanted), "counted")
        monkeypatch.setattr(migration_probe, "SAMPLE_MESSAGES", 5)
        sampled = run_on_thread_loop(main())
        monkeypatch.undo()
        assert (sampled.messages, sampled.basis, sampled.sampled_messages) == (20, "sampled", 5)
        sizes[server.port] = sampled.bytes
    assert abs(sizes[no_status_size.port] - sum(len(m) for m in wanted)) / sum(len(m) for m in wanted) < 0.05
