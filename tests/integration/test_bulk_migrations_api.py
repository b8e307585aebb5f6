"""Bulk migrations through the API function (tests/support/lambda_api.call), AWS in moto, a real
Dovecot on loopback for the jobs that run: the worker's steps are driven the way the state machine
runs them (tests/support/migrations.py's WorkflowDriver), so a job that ends ends through the same
code as in AWS, and that is what starts its batch's next job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailroom.services import bulk_migrations as bulk_service
from mailroom.services import bulk_scheduler
from mailroom.services import migration_jobs as jobs_service
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import audit, keys, kms, workflows
from mailroom.store import migration_batches as batch_store
from mailroom.store import migrations as jobs_store
from mailroom.store.table import Table
from mailroom.store.txn import Update
from tests.support.dovecot import DovecotServer, dovecot_server
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox, ok
from tests.support.migrations import WorkflowDriver, provision_migration_aws, start_body

__all__ = ["dovecot_server"]  # the session fixture, used by name

BULK = "/api/v1/migrations/bulk"
FUNCTION = "migration_batches"


def message(n: int, who: str) -> bytes:
    return b"From: a@example.net\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@example.net>\r\n\r\nbody\r\n" % (
        who.encode(),
        n,
        who.encode(),
        n,
    )


@dataclass
class Account:
    user: str
    password: str
    messages: int


@dataclass
class Bulk:
    org: NewOrganization
    table: Table
    server: DovecotServer
    mailboxes: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def add_accounts(self, count: int, *, messages: int = 3) -> None:
        """``count`` Dovecot accounts with a few messages each, and as many destination mailboxes."""
        for _ in range(count):
            user, password = self.server.new_user("bulk")
            index = len(self.accounts)
            self.server.seed(user, "INBOX", [message(n, f"u{index}") for n in range(messages)])
            self.accounts.append(Account(user, password, messages))
            self.mailboxes.append(new_mailbox(self.org, f"dest{index}", quota=50))

    def rows(self, *, wrong_password: set[int] | None = None) -> str:
        lines = []
        for index, (account, mailbox) in enumerate(zip(self.accounts, self.mailboxes, strict=True)):
            password = "not-the-password" if index in (wrong_password or set()) else account.password
            lines.append(f"{account.user},{password},{mailbox['address']}")
        return "\n".join(lines)

    def body(self, data: str, **overrides: Any) -> dict[str, Any]:
        return {
            "data": data,
            "provider": "generic_imap",
            "source_host": "127.0.0.1",
            "source_port": self.server.ssl_port,
            "source_security": "ssl",
            **overrides,
        }

    def post(self, path: str, body: Any = None, *, token: str | None = None, **headers: str) -> Result:
        return call(
            FUNCTION,
            "POST",
            path,
            token=token or self.org.admin_token,
            json_body=body,
            headers=headers or key(),
        )

    def start(self, data: str, **overrides: Any) -> Result:
        return self.post(BULK, self.body(data, **overrides))

    def started(self, data: str, **overrides: Any) -> dict[str, Any]:
        return ok(self.start(data, **overrides), 201)  # type: ignore[no-any-return]

    def view(self, batch_id: str) -> dict[str, Any]:
        return ok(call(FUNCTION, "GET", f"{BULK}/{batch_id}", token=self.org.admin_token))  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        item = jobs_store.get(self.table, self.org_id, job_id)
        assert item is not None
        return item

    def running(self, batch_id: str) -> list[str]:
        return [j["id"] for j in self.view(batch_id)["jobs"] if j["status"] != "pending" or not j["queued"]]

    def run(self, job_id: str, driver: WorkflowDriver | None = None) -> str:
        """Run the job's executions to their end (its end ticks the batch); how it ended."""
        return (driver or WorkflowDriver()).run_job(self.job(job_id))[-1].end

    def run_all(self, batch_id: str) -> None:
        """Run started jobs until the batch has nothing running (each end starts the next)."""
        for _ in range(50):
            active = [
                j["id"]
                for j in self.view(batch_id)["jobs"]
                if j["status"] in ("pending", "validating", "planning", "processing") and not j["queued"]
            ]
            if not active:
                return
            self.run(active[0])
        raise AssertionError("the batch did not settle")


def set_limits(table: Table, org_id: str, **limits: int) -> None:
    update = Update(keys.org_pk(org_id), keys.ORG_SK)
    update.set(**{f"limits.{name}": value for name, value in limits.items()})
    update.apply(table)


def slots(table: Table, org_id: str) -> int:
    return int((jobs_store.slots(table, org_id) or {}).get("active", 0))


@pytest.fixture
def bulk(
    moto_env: None,
    monkeypatch: pytest.MonkeyPatch,
    table: Table,
    org: NewOrganization,
    dovecot_server: DovecotServer,
) -> Iterator[Bulk]:
    provision_migration_aws(monkeypatch)
    monkeypatch.setenv("MAILROOM_IMAP_CA_FILE", str(dovecot_server.ca_file))
    monkeypatch.setenv("MAILROOM_IMAP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE", "1000")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    yield Bulk(org, table, dovecot_server)
    get_settings.cache_clear()


# ----------------------------------------------------------------------------- preview


def test_preview_categorizes_every_row_and_never_echoes_a_password(bulk: Bulk) -> None:
    bulk.add_accounts(3)
    busy_mailbox = bulk.mailboxes[2]
    # A single migration into the third mailbox makes it busy.
    single = call(
        "migrations",
        "POST",
        "/api/v1/migrations",
        token=bulk.org.admin_token,
        json_body=start_body(busy_mailbox["id"], PASSWORD, source_port=bulk.server.ssl_port),
        headers=key(),
    )
    assert single.status == 201, single.body
    a, b, c = bulk.accounts
    m0, m1, m2 = (m["address"] for m in bulk.mailboxes)
    data = "\n".join(
        [
            "source_email,source_password,destination_email",  # a header: skipped
            f"{a.user},{a.password},{m0}",
            f"{a.user},{a.password},{m0.upper()}",  # the same pair again
            f"not-an-address,Secret-Pass-1,{m1}",
            f"{b.user},,{m1}",
            f"{b.user},Secret-Pass-2,nobody@example.com",
            f"{b.user},Secret-Pass-3,not an address",
            f"{b.user},Secret-Pass-4",
            f"{c.user},{c.password},{m2}",
            f'{b.user},"pa,ss with comma",{m1}',
        ]
    )
    result = bulk.post(f"{BULK}/preview", bulk.body(data))
    assert result.status == 200, result.body
    preview = result.json()
    categories = [(row["row"], row["category"]) for row in preview["rows"]]
    assert categories == [
        (2, "valid"),
        (3, "duplicate_row"),
        (4, "invalid_source_email"),
        (5, "missing_password"),
        (6, "invalid_destination"),
        (7, "invalid_destination"),
        (8, "wrong_column_count"),
        (9, "destination_busy"),
        (10, "valid"),
    ]
    assert preview["counts"]["valid"] == 2 and preview["counts"]["total"] == 9
    assert preview["can_start"] is True
    assert preview["rows"][0]["destination_mailbox_id"] == bulk.mailboxes[0]["id"]
    assert preview["rows"][0]["source_email"] == f"{a.user[0]}***{a.user.split('@')[0][-1]}@example.org"
    assert preview["limits"] == {
        "max_rows_per_batch": 300,
        "concurrent_per_account": 5,
        "global_capacity": 20,
    }
    assert preview["time_estimate"]["concurrency"] == 5 and preview["time_estimate"]["estimated_seconds"] > 0
    assert preview["storage"]["fits"] is True and preview["storage"]["available_bytes"] > 0
    for secret in (a.password, b.password, c.password, "Secret-Pass", "pa,ss"):
        assert secret.encode() not in result.body
    assert not batch_store.list_page(
        bulk.table, bulk.org_id, per_page=10, cursor=None
    ).items  # nothing created


def test_preview_refuses_more_rows_than_the_organization_allows(bulk: Bulk) -> None:
    bulk.add_accounts(1)
    set_limits(bulk.table, bulk.org_id, migration_batch_rows=3)
    data = "\n".join(f"user{n}@example.org,pw{n},{bulk.mailboxes[0]['address']}" for n in range(4))
    for path in (f"{BULK}/preview", BULK):
        refused = bulk.post(path, bulk.body(data))
        assert (refused.status, refused.error_code) == (422, "row_limit_exceeded")
        assert "migration_batch_rows" in refused.json()["error"]["message"]
    allowed = bulk.post(f"{BULK}/preview", bulk.body("\n".join(data.splitlines()[:3])))
    assert allowed.status == 200 and allowed.json()["limits"]["max_rows_per_batch"] == 3


def test_request_level_problems_and_scopes(bulk: Bulk) -> None:
    bulk.add_accounts(1)
    data = bulk.rows()
    no_host = bulk.post(f"{BULK}/preview", {"data": data, "provider": "generic_imap"})
    assert no_host.status == 422 and no_host.json()["error"]["fields"][0]["field"] == "source_host"
    empty = bulk.post(f"{BULK}/preview", bulk.body("\n\n"))
    assert (empty.status, empty.json()["error"]["fields"][0]["field"]) == (422, "data")
    nothing_valid = bulk.start("someone@example.org,pw,nobody@example.com")
    assert (nothing_valid.status, nothing_valid.error_code) == (422, "no_valid_rows")
    assert bulk.post(BULK, bulk.body(data, folder_strategy="some")).status == 422

    created = call(
        "tokens",
        "POST",
        "/api/v1/tokens",
        token=bulk.org.admin_token,
        json_body={"name": "reader", "scopes": ["migrations:read"]},
        headers=key(),
    )
    reader = ok(created, 201)["token"]
    assert bulk.post(f"{BULK}/preview", bulk.body(data), token=reader).error_code == "insufficient_scope"
    assert call(FUNCTION, "GET", BULK, token=reader).status == 200


# ----------------------------------------------------------------------------- start and run


def test_start_creates_waiting_jobs_with_sealed_passwords_and_runs_two_at_a_time(bulk: Bulk) -> None:
    set_limits(bulk.table, bulk.org_id, migration_concurrency=2)
    bulk.add_accounts(5)
    started = bulk.start(bulk.rows() + "\nbroken-row", name="Acme move", skip_duplicates=False)
    assert started.status == 201, started.body
    batch = started.json()["data"]
    assert (batch["name"], batch["total_jobs"], batch["status"]) == ("Acme move", 5, "processing")
    assert [r["category"] for r in batch["skipped_rows"]] == ["wrong_column_count"]
    assert batch["rows"]["valid"] == 5 and batch["rows"]["total"] == 6
    for account in bulk.accounts:
        assert account.password.encode() not in started.body

    # Every job: an ordinary migration job of the batch, its password sealed (KMS), never shown.
    jobs = batch["jobs"]
    assert [j["row"] for j in jobs] == [1, 2, 3, 4, 5]
    for job, account, mailbox in zip(jobs, bulk.accounts, bulk.mailboxes, strict=True):
        item = bulk.job(job["id"])
        assert (item["batch_id"], item["mailbox_id"], item["source_email"]) == (
            batch["id"],
            mailbox["id"],
            account.user,
        )
        secret = bulk.table.get(keys.migration_pk(bulk.org_id, job["id"]), keys.MIGRATION_SECRET_SK)
        assert secret is not None and account.password.encode() not in secret["ciphertext"]
        opened = kms.decrypt(secret["ciphertext"], jobs_service.secret_context(bulk.org_id, job["id"]))
        assert opened.decode() == account.password
        single = call("migrations", "GET", f"/api/v1/migrations/{job['id']}", token=bulk.org.admin_token)
        assert single.status == 200 and single.json()["data"]["batch_id"] == batch["id"]

    # Concurrency 2: two started (each with its execution and both slots), three queued.
    assert [(j["status"], j["queued"]) for j in jobs] == [("pending", False)] * 2 + [("pending", True)] * 3
    assert batch["counts"]["running"] == 2 and batch["counts"]["queued"] == 3
    assert slots(bulk.table, bulk.org_id) == 2 and jobs_store.capacity_in_use(bulk.table) == 2
    assert bulk.job(jobs[0]["id"])["execution_arn"].endswith(f"{jobs[0]['id']}-a1-s0")
    assert "execution_arn" not in bulk.job(jobs[2]["id"])

    # The first job ends: its end starts the third (rows in order), still two at a time.
    assert bulk.run(jobs[0]["id"]) == "completed"
    view = bulk.view(batch["id"])
    assert [(j["status"], j["queued"]) for j in view["jobs"]][:3] == [
        ("completed", False),
        ("pending", False),
        ("pending", False),
    ]
    assert view["counts"]["queued"] == 2 and slots(bulk.table, bulk.org_id) == 2

    bulk.run_all(batch["id"])
    done = bulk.view(batch["id"])
    assert done["status"] == "completed" and done["progress"] == 100 and done["poll_hint_seconds"] is None
    assert done["allowed_actions"] == ["delete"]
    for job, account in zip(done["jobs"], bulk.accounts, strict=True):
        assert (job["status"], job["total_messages"], job["imported_messages"]) == (
            "completed",
            account.messages,
            account.messages,
        )
    assert done["imported_messages"] == sum(a.messages for a in bulk.accounts)
    assert slots(bulk.table, bulk.org_id) == 0 and jobs_store.capacity_in_use(bulk.table) == 0
    # Settled: out of the sweep's index.
    assert "GSI2PK" not in (batch_store.get(bulk.table, bulk.org_id, batch["id"]) or {})

    listed = call(FUNCTION, "GET", BULK, token=bulk.org.admin_token).json()
    assert listed["meta"]["total"] == 1 and listed["data"][0]["status"] == "completed"
    assert listed["data"][0]["jobs"] is None and listed["data"][0]["counts"]["completed"] == 5


def test_the_global_capacity_is_shared_with_single_migrations(
    bulk: Bulk, other_org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOM_MIGRATION_CAPACITY", "2")
    get_settings.cache_clear()
    # Another organization's single migration holds one of the two platform slots.
    add_domain(other_org, "other.example.com")
    other_mailbox = new_mailbox(other_org, "them", "other.example.com")
    user, password = bulk.server.new_user("single")
    bulk.server.seed(user, "INBOX", [message(1, "single")])
    single = call(
        "migrations",
        "POST",
        "/api/v1/migrations",
        token=other_org.admin_token,
        json_body=start_body(
            other_mailbox["id"],
            PASSWORD,
            source_port=bulk.server.ssl_port,
            source_email=user,
            source_password=password,
        ),
        headers=key(),
    )
    assert single.status == 201, single.body

    bulk.add_accounts(3)
    batch = bulk.started(bulk.rows())
    assert batch["counts"]["running"] == 1 and batch["counts"]["queued"] == 2  # concurrency 5, capacity 1
    assert jobs_store.capacity_in_use(bulk.table) == 2

    # One active migration per account for a single start, bulk jobs included.
    refused = call(
        "migrations",
        "POST",
        "/api/v1/migrations",
        token=bulk.org.admin_token,
        json_body=start_body(bulk.mailboxes[0]["id"], PASSWORD, source_port=bulk.server.ssl_port),
        headers=key(),
    )
    assert (refused.status, refused.error_code) == (409, "conflict")

    # The other organization's job ends: no job of this batch ended, so the sweep starts the next.
    single_job = jobs_store.get(bulk.table, str(other_org.organization["id"]), single.json()["data"]["id"])
    assert single_job is not None and WorkflowDriver().run_job(single_job)[-1].end == "completed"
    assert bulk.view(batch["id"])["counts"]["queued"] == 2
    counts = bulk_scheduler.sweep(bulk.table)
    assert counts["ticked"] >= 1 and counts["errors"] == 0
    assert bulk.view(batch["id"])["counts"]["queued"] == 1 and jobs_store.capacity_in_use(bulk.table) == 2

    bulk.run_all(batch["id"])
    assert bulk.view(batch["id"])["status"] == "completed"
    assert jobs_store.capacity_in_use(bulk.table) == 0


# ----------------------------------------------------------------------------- actions


def test_cancel_retry_resume_and_delete_follow_the_batch_rules(bulk: Bulk) -> None:
    set_limits(bulk.table, bulk.org_id, migration_concurrency=2)
    bulk.add_accounts(4)
    batch = bulk.started(bulk.rows())
    batch_id = batch["id"]
    path = f"{BULK}/{batch_id}"

    # While it runs: no retry, no resume, no delete.
    for action in (":retry", ":resume"):
        refused = bulk.post(f"{path}{action}")
        assert (refused.status, refused.error_code) == (409, "conflict"), action
    assert call(FUNCTION, "DELETE", path, token=bulk.org.admin_token).status == 409

    cancelled = ok(bulk.post(f"{path}:cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["allowed_actions"] == ["delete", "retry"]
    assert {j["status"] for j in cancelled["jobs"]} == {"cancelled"}
    assert slots(bulk.table, bulk.org_id) == 0 and jobs_store.capacity_in_use(bulk.table) == 0
    assert bulk.post(f"{path}:cancel").status == 409

    # Retry undoes the cancel: every job queued again in its next attempt, two started.
    retried = ok(bulk.post(f"{path}:retry"))
    assert retried["status"] == "processing"
    assert [(j["status"], j["attempt"]) for j in retried["jobs"]] == [("pending", 2)] * 4
    assert retried["counts"]["running"] == 2 and slots(bulk.table, bulk.org_id) == 2
    bulk.run_all(batch_id)
    assert bulk.view(batch_id)["status"] == "completed"
    assert bulk.post(f"{path}:retry").status == 409  # nothing failed

    # Delete: the batch and its jobs' records, 204; gone for both APIs.
    job_ids = [j["id"] for j in retried["jobs"]]
    deleted = call(FUNCTION, "DELETE", path, token=bulk.org.admin_token)
    assert deleted.status == 204, deleted.body
    assert call(FUNCTION, "GET", path, token=bulk.org.admin_token).status == 404
    for job_id in job_ids:
        assert (
            call("migrations", "GET", f"/api/v1/migrations/{job_id}", token=bulk.org.admin_token).status
            == 404
        )
        assert not bulk.table.client.query(
            TableName=bulk.table.name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.migration_pk(bulk.org_id, job_id)}},
        )["Items"]
    assert int((jobs_store.slots(bulk.table, bulk.org_id) or {}).get("count", 0)) == 0
    assert call(FUNCTION, "GET", BULK, token=bulk.org.admin_token).json()["meta"]["total"] == 0

    actions = [
        r["action"]
        for r in audit.list_page(bulk.table, bulk.org_id, per_page=100, cursor=None).items
        if r["action"].startswith("bulk_migration")
    ]
    for action in ("bulk_migration_started", "bulk_migration_cancelled", "bulk_migration_retried"):
        assert action in actions
    assert actions[0] == "bulk_migration_deleted"


def test_cancelling_one_waiting_job_through_the_single_endpoint_keeps_the_slots_right(bulk: Bulk) -> None:
    set_limits(bulk.table, bulk.org_id, migration_concurrency=1)
    bulk.add_accounts(2)
    batch = bulk.started(bulk.rows())
    waiting = batch["jobs"][1]
    assert waiting["queued"] is True and slots(bulk.table, bulk.org_id) == 1
    cancelled = call(
        "migrations",
        "POST",
        f"/api/v1/migrations/{waiting['id']}:cancel",
        token=bulk.org.admin_token,
        headers=key(),
    )
    assert cancelled.status == 200 and cancelled.json()["data"]["status"] == "cancelled"
    assert slots(bulk.table, bulk.org_id) == 1 and jobs_store.capacity_in_use(bulk.table) == 1
    bulk.run_all(batch["id"])
    view = bulk.view(batch["id"])
    assert [j["status"] for j in view["jobs"]] == ["completed", "cancelled"]
    assert view["status"] == "completed_with_errors" and slots(bulk.table, bulk.org_id) == 0
    # A job cancelled on its own in a live batch is not what retry re-runs: nothing failed.
    assert bulk.post(f"{BULK}/{batch['id']}:retry").status == 409


def test_failed_logins_pause_the_batch_a_new_password_and_retry_fix_it(bulk: Bulk) -> None:
    set_limits(bulk.table, bulk.org_id, migration_concurrency=1)
    bulk.add_accounts(5)
    batch = bulk.started(bulk.rows(wrong_password={0, 1, 2}))
    batch_id, jobs = batch["id"], batch["jobs"]
    path = f"{BULK}/{batch_id}"

    # A job still queued has no password to replace (only a failed one has).
    queued = call(
        FUNCTION,
        "PATCH",
        f"{path}/jobs/{jobs[4]['id']}/password",
        token=bulk.org.admin_token,
        json_body={"source_password": "x"},
    )
    assert (queued.status, queued.error_code) == (409, "conflict")

    for job in jobs[:3]:
        assert bulk.run(job["id"]) == "failed"
    paused = bulk.view(batch_id)
    assert paused["status"] == "paused" and "127.0.0.1" in paused["pause_reason"]
    assert paused["allowed_actions"] == ["cancel", "resume"]
    assert [j["status"] for j in paused["jobs"]] == ["failed"] * 3 + ["pending"] * 2
    assert all(j["queued"] for j in paused["jobs"][3:]) and slots(bulk.table, bulk.org_id) == 0
    assert paused["jobs"][0]["error_reason"] == "auth_failed"

    resumed = ok(bulk.post(f"{path}:resume"))
    assert resumed["status"] == "processing" and resumed["counts"]["running"] == 1
    bulk.run_all(batch_id)
    settled = bulk.view(batch_id)
    assert settled["status"] == "completed_with_errors"
    assert [j["status"] for j in settled["jobs"]] == ["failed"] * 3 + ["completed"] * 2

    # New passwords for the failed jobs, then retry: they complete.
    for job, account in zip(jobs[:3], bulk.accounts[:3], strict=True):
        updated = call(
            FUNCTION,
            "PATCH",
            f"{path}/jobs/{job['id']}/password",
            token=bulk.org.admin_token,
            json_body={"source_password": account.password},
        )
        assert updated.status == 200, updated.body
        assert updated.json()["data"]["status"] == "failed" and account.password.encode() not in updated.body
    other = bulk.started(bulk.rows())  # a job of another batch is not this batch's
    assert (
        call(
            FUNCTION,
            "PATCH",
            f"{path}/jobs/{other['jobs'][0]['id']}/password",
            token=bulk.org.admin_token,
            json_body={"source_password": "x"},
        ).status
        == 404
    )
    ok(bulk.post(f"{BULK}/{other['id']}:cancel"))

    retried = ok(bulk.post(f"{path}:retry"))
    assert [j["status"] for j in retried["jobs"]][:3] == ["pending"] * 3
    bulk.run_all(batch_id)
    final = bulk.view(batch_id)
    assert final["status"] == "completed", [(j["status"], j["error_message"]) for j in final["jobs"]]
    assert [j["imported_messages"] for j in final["jobs"]] == [a.messages for a in bulk.accounts]


# ----------------------------------------------------------------------------- conventions


def test_the_idempotency_key_field_starts_one_batch(bulk: Bulk) -> None:
    bulk.add_accounts(1)
    first = bulk.start(bulk.rows(), idempotency_key="move-acme-1")
    again = bulk.start(bulk.rows(), idempotency_key="move-acme-1")  # another Idempotency-Key header
    assert first.status == again.status == 201
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert call(FUNCTION, "GET", BULK, token=bulk.org.admin_token).json()["meta"]["total"] == 1
    different = bulk.start(bulk.rows(), idempotency_key="move-acme-1", name="Another")
    assert (different.status, different.error_code) == (409, "idempotency_key_reused")
    # The header works as everywhere: the same key replays.
    header = {"Idempotency-Key": "bulk-header-1"}
    replay = [bulk.post(BULK, bulk.body(bulk.rows(), name="H"), **header) for _ in range(2)]
    assert replay[0].json() == replay[1].json() and replay[1].headers["idempotent-replayed"] == "true"


def test_bulk_writes_share_the_migration_write_limit(bulk: Bulk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    bulk.add_accounts(1)
    statuses = [bulk.post(f"{BULK}/preview", bulk.body(bulk.rows())).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = bulk.start(bulk.rows())
    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    # The single migration endpoints use the same bucket.
    single = call(
        "migrations",
        "POST",
        "/api/v1/migrations/test-connection",
        token=bulk.org.admin_token,
        json_body={"source_email": "a@example.org", "source_password": "x", "source_host": "127.0.0.1"},
        headers=key(),
    )
    assert single.status == 429


def test_other_organizations_see_nothing(bulk: Bulk, other_org: NewOrganization) -> None:
    bulk.add_accounts(1)
    batch = bulk.started(bulk.rows())
    for method, suffix in (("GET", ""), ("POST", ":cancel"), ("DELETE", "")):
        response = call(
            FUNCTION, method, f"{BULK}/{batch['id']}{suffix}", token=other_org.admin_token, headers=key()
        )
        assert response.status == 404, (method, suffix)
    assert call(FUNCTION, "GET", BULK, token=other_org.admin_token).json()["data"] == []
    assert (
        json.loads(call(FUNCTION, "GET", f"{BULK}/bat_nope", token=bulk.org.admin_token).body)["error"][
            "code"
        ]
        == "not_found"
    )


def test_a_start_that_died_half_way_is_undone_by_the_sweep(
    bulk: Bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk.add_accounts(2)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the Lambda timed out here")

    request = bulk_service.BulkRequest(
        data=bulk.rows(), source_host="127.0.0.1", source_port=bulk.server.ssl_port
    )
    with monkeypatch.context() as patched:
        patched.setattr(batch_store, "created", broken)
        with pytest.raises(RuntimeError):
            bulk_service.start(bulk.table, bulk.org_id, request)
    provision = bulk.table.client.query(
        TableName=bulk.table.name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :b)",
        ExpressionAttributeValues={":pk": {"S": keys.org_pk(bulk.org_id)}, ":b": {"S": "MIGBATCH#"}},
    )["Items"]
    assert len(provision) == 1  # written, still creating: invisible, and never scheduled
    assert call(FUNCTION, "GET", BULK, token=bulk.org.admin_token).json()["data"] == []
    assert slots(bulk.table, bulk.org_id) == 0

    monkeypatch.setattr(bulk_scheduler, "ABORT_CREATING_AFTER_SECONDS", 0)
    assert bulk_scheduler.sweep(bulk.table)["aborted"] == 1
    assert not batch_store.list_page(bulk.table, bulk.org_id, per_page=10, cursor=None).items
    assert int((jobs_store.slots(bulk.table, bulk.org_id) or {}).get("count", 0)) == 0
    assert jobs_store.list_page(bulk.table, bulk.org_id, per_page=10, cursor=None).items == []


def test_the_template_routes_bulk_paths_to_the_bulk_function() -> None:
    from pathlib import Path

    from local.routing import RouteTable
    from local.stack import Stack

    routes = RouteTable(Stack.load(Path(__file__).resolve().parents[2] / "template.yaml").routes)
    for method, path, function in (
        ("POST", BULK, "MigrationBatchesFunction"),
        ("POST", f"{BULK}/preview", "MigrationBatchesFunction"),
        ("POST", f"{BULK}/bat_1:cancel", "MigrationBatchesFunction"),
        ("PATCH", f"{BULK}/bat_1/jobs/mig_1/password", "MigrationBatchesFunction"),
        ("GET", "/api/v1/migrations/mig_1", "MigrationsFunction"),
        ("POST", "/api/v1/migrations/mig_1:retry", "MigrationsFunction"),
    ):
        match = routes.match(method, path)
        assert match is not None and match.route.function == function, (method, path)


def test_a_job_started_by_a_tick_that_died_before_starting_its_execution_is_launched(
    bulk: Bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk.add_accounts(1)

    def dies(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the Lambda stopped here")

    with monkeypatch.context() as patched:
        patched.setattr(jobs_service, "launch", dies)
        started = bulk.started(bulk.rows())  # the batch is there: no 5xx, no second batch on a retry
    assert started["jobs"][0]["queued"] is False
    (batch,) = batch_store.list_page(bulk.table, bulk.org_id, per_page=10, cursor=None).items
    (job_id,) = batch["job_ids"]
    job = bulk.job(job_id)
    arn = str(job["execution_arn"])
    assert slots(bulk.table, bulk.org_id) == 1 and workflows.status(arn) is None

    # Young: left alone (its execution may be starting right now). Two minutes later: launched.
    assert bulk.view(batch["id"])["jobs"][0]["status"] == "pending"
    assert workflows.status(arn) is None
    Update(keys.org_pk(bulk.org_id), keys.migration_sk(job_id)).set(
        updated_at="2020-01-01T00:00:00.000Z"
    ).apply(bulk.table)
    assert bulk_scheduler.sweep(bulk.table)["ticked"] == 1
    assert workflows.status(arn) == "RUNNING"
    assert bulk.run(job_id) == "completed"
    assert bulk.view(batch["id"])["status"] == "completed" and slots(bulk.table, bulk.org_id) == 0


def test_a_delete_out_of_time_leaves_the_partitions_to_the_sweep(
    bulk: Bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk.add_accounts(2)
    batch = bulk.started(bulk.rows())
    bulk.run_all(batch["id"])
    monkeypatch.setattr(bulk_service, "DELETE_BUDGET_SECONDS", 0.0)
    assert call(FUNCTION, "DELETE", f"{BULK}/{batch['id']}", token=bulk.org.admin_token).status == 204

    def partition(job_id: str) -> list[Any]:
        return bulk.table.client.query(  # type: ignore[no-any-return]
            TableName=bulk.table.name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.migration_pk(bulk.org_id, job_id)}},
        )["Items"]

    job_ids = [j["id"] for j in batch["jobs"]]
    assert any(partition(job_id) for job_id in job_ids)  # folder items were left
    assert bulk_scheduler.sweep(bulk.table)["purged"] == 1
    assert not any(partition(job_id) for job_id in job_ids)
    assert bulk.table.get(keys.org_pk(bulk.org_id), batch_store.purge_sk(batch["id"])) is None
