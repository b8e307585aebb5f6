"""/api/v1/migrations through the authorizer and the migrations function, under moto: status codes
and errors of every endpoint, the one-active-job and platform-capacity invariants, the migration
write limit, the sealed source password, audit records. The state machine is created in moto but
not run (the workflow's steps are tested in test_migration_workflow.py and end to end)."""

from __future__ import annotations

import json
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from mailroom import clock
from mailroom.domain import migrations as rules
from mailroom.errors import Conflict
from mailroom.services import migration_writes
from mailroom.services import migrations as service
from mailroom.services.migration_jobs import Source
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.settings import get_settings
from mailroom.store import audit, events, keys
from mailroom.store import migrations as store
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox, ok
from tests.support.migrations import SOURCE_PASSWORD, MigrationAws, provision_migration_aws, start_body


@pytest.fixture
def aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[MigrationAws]:
    yield provision_migration_aws(monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def mailbox(org: NewOrganization, aws: MigrationAws) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "owner")


def post(org: NewOrganization, path: str, body: Any = None, **headers: str) -> Result:
    return call(
        "migrations", "POST", path, token=org.admin_token, json_body=body, headers={**key(), **headers}
    )


def get(org: NewOrganization, path: str, **query: Any) -> Result:
    return call("migrations", "GET", path, token=org.admin_token, query=query or None)


def delete(org: NewOrganization, path: str) -> Result:
    return call("migrations", "DELETE", path, token=org.admin_token)


def start(org: NewOrganization, mailbox: dict[str, Any], **overrides: Any) -> Result:
    return post(org, "/api/v1/migrations", {**start_body(mailbox["id"], PASSWORD), **overrides})


def started(org: NewOrganization, mailbox: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return ok(start(org, mailbox, **overrides), 201)  # type: ignore[no-any-return]


def error(result: Result, status: int, code: str) -> dict[str, Any]:
    assert (result.status, result.error_code) == (status, code), (result.status, result.body[:1500])
    return result.json()["error"]  # type: ignore[no-any-return]


def sfn() -> Any:
    return boto3.client("stepfunctions", region_name="us-east-1")


def test_start_returns_the_job_as_the_spec_shows_it(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    result = start(
        org,
        mailbox,
        source_email="john.doe@gmail.com",
        selected_folders=["INBOX", "Sent"],
        import_since="2025-01-01",
    )
    job = ok(result, 201)
    spec_fields = {
        "id", "mailbox_id", "mailbox_email", "provider", "source_host", "source_email", "status", "progress",
        "total_messages", "imported_messages", "failed_messages", "skipped_duplicates", "selected_folders",
        "import_since", "skip_duplicates", "folders", "error_message", "poll_hint_seconds", "started_at",
        "finished_at", "created_at",
    }  # fmt: skip
    assert spec_fields <= set(job)
    assert job["id"].startswith("mig_") and job["mailbox_id"] == mailbox["id"]
    assert job["mailbox_email"] == "owner@example.com"
    assert job["source_email"] == "j***e@gmail.com"
    assert (job["status"], job["progress"], job["poll_hint_seconds"]) == ("pending", 0, 5)
    assert (job["selected_folders"], job["import_since"], job["skip_duplicates"]) == (
        ["INBOX", "Sent"],
        "2025-01-01",
        True,
    )
    assert job["folders"] == [] and job["error_code"] is None and job["batch_id"] is None
    assert (job["source_host"], job["source_port"], job["source_security"]) == ("127.0.0.1", 993, "ssl")

    # The source password is sealed in its own item, never in the job or a response.
    assert SOURCE_PASSWORD not in result.body.decode() and PASSWORD not in result.body.decode()
    item = store.get(table, org.organization["id"], job["id"])
    assert item is not None and SOURCE_PASSWORD not in json.dumps(item, default=str)
    secret = table.get(keys.migration_pk(org.organization["id"], job["id"]), keys.MIGRATION_SECRET_SK)
    assert secret is not None and SOURCE_PASSWORD.encode() not in secret["ciphertext"]
    assert secret["ttl"] > clock.utcnow().timestamp()

    # Its execution runs, named after the job and its attempt, with ids only as input.
    described = sfn().describe_execution(executionArn=item["execution_arn"])
    assert described["name"] == f"{job['id']}-a1-s0"
    assert json.loads(described["input"]) == {
        "org_id": org.organization["id"],
        "job_id": job["id"],
        "attempt": 1,
        "segment": 0,
    }
    assert ok(get(org, f"/api/v1/migrations/{job['id']}")) == {**job, "updated_at": job["updated_at"]}


def test_provider_presets_fill_the_server_and_generic_imap_needs_it(
    org: NewOrganization, mailbox: dict[str, Any]
) -> None:
    body = start_body(mailbox["id"], PASSWORD, provider="gmail")
    for name in ("source_host", "source_port", "source_security"):
        del body[name]
    job = ok(post(org, "/api/v1/migrations", body), 201)
    assert (job["provider"], job["source_host"], job["source_port"], job["source_security"]) == (
        "gmail",
        "imap.gmail.com",
        993,
        "ssl",
    )
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))

    body["provider"] = "generic_imap"
    refused = error(post(org, "/api/v1/migrations", body), 422, "validation_error")
    assert "host" in refused["message"]
    refused = error(start(org, mailbox, provider="aol"), 422, "validation_error")
    assert refused["fields"][0]["field"] == "provider"
    error(start(org, mailbox, source_security="starttls"), 422, "validation_error")
    error(start(org, mailbox, source_port=0), 422, "validation_error")


def test_the_target_mailbox_must_exist_and_its_password_match(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    wrong = error(start(org, mailbox, target_password="Not-The-Password-1"), 422, "validation_error")
    assert wrong["fields"] == [{"field": "target_password", "message": wrong["message"]}]
    missing = error(
        post(org, "/api/v1/migrations", start_body("mbx_nope", PASSWORD)), 422, "validation_error"
    )
    assert missing["fields"][0]["field"] == "mailbox_id"
    other = create_organization(table, name="Other")
    assert error(start(other, mailbox), 422, "validation_error")["fields"][0]["field"] == "mailbox_id"
    assert store.slots(table, org.organization["id"]) is None  # nothing was taken


def test_one_active_migration_per_organization(
    org: NewOrganization, mailbox: dict[str, Any], other_org: NewOrganization, table: Table
) -> None:
    first = started(org, mailbox)
    conflict = error(start(org, mailbox), 409, "conflict")
    assert conflict["retryable"] is False and "active migration" in conflict["message"]
    # Another organization is not affected.
    add_domain(other_org, "other.example.com")
    theirs = new_mailbox(other_org, "owner", "other.example.com")
    started(other_org, theirs)
    # Once the first ends, a new one starts.
    ok(post(org, f"/api/v1/migrations/{first['id']}:cancel"))
    started(org, mailbox)
    assert int((store.slots(table, org.organization["id"]) or {})["active"]) == 1
    assert store.capacity_in_use(table) == 2


def test_concurrent_starts_in_one_organization_start_exactly_one(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    """The one-active rule is a condition of the start transaction, not a read before it."""
    org_id = org.organization["id"]
    attempts = 4
    barrier = threading.Barrier(attempts)

    def attempt(number: int) -> str:
        request = service.StartRequest(
            mailbox_id=mailbox["id"],
            source=Source(
                provider="generic_imap",
                email=f"user{number}@example.org",
                password=SOURCE_PASSWORD,
                host="127.0.0.1",
                port=993,
                security="ssl",
            ),
            target_password=PASSWORD,
        )
        barrier.wait()
        try:
            return str(service.start(Table(), org_id, request)["status"])
        except Conflict as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        outcomes = sorted(pool.map(attempt, range(attempts)))
    assert outcomes == ["conflict"] * (attempts - 1) + ["pending"]
    assert int((store.slots(table, org_id) or {})["active"]) == 1 and store.capacity_in_use(table) == 1
    assert len(ok(get(org, "/api/v1/migrations"))) == 1


def test_concurrent_migration_writes_take_the_bucket_exactly_once_each(
    org: NewOrganization, table: Table
) -> None:
    writes, now = 14, 1_800_000_000.0
    barrier = threading.Barrier(writes)

    def write(_: int) -> bool:
        barrier.wait()
        try:
            migration_writes.count_write(Table(), org.organization["id"], "tok_concurrent", now=now)
        except migration_writes.WriteLimitReached as limited:
            assert (limited.limit, limited.retry_after, limited.resets_at) == (10, 60, int(now) + 60)
            return False
        return True

    with ThreadPoolExecutor(max_workers=writes) as pool:
        allowed = list(pool.map(write, range(writes)))
    assert allowed.count(True) == 10


def test_the_platform_capacity_is_shared_and_refused_with_a_retryable_503(
    org: NewOrganization,
    mailbox: dict[str, Any],
    other_org: NewOrganization,
    monkeypatch: pytest.MonkeyPatch,
    table: Table,
) -> None:
    monkeypatch.setenv("MAILROOM_MIGRATION_CAPACITY", "1")
    get_settings.cache_clear()
    add_domain(other_org, "other.example.com")
    theirs = new_mailbox(other_org, "owner", "other.example.com")
    held = started(other_org, theirs)

    full = error(start(org, mailbox), 503, "migration_capacity_reached")
    assert full["retryable"] is True
    assert store.get(table, org.organization["id"], "mig_x") is None
    assert store.slots(table, org.organization["id"]) is None  # the transaction took nothing
    # A 503 is not replayed for its Idempotency-Key: the client's retry runs again.
    again = start(org, mailbox, source_email="again@example.org")
    error(again, 503, "migration_capacity_reached")

    ok(post(other_org, f"/api/v1/migrations/{held['id']}:cancel"))
    started(org, mailbox)
    # A retry needs a platform slot too.
    assert error(
        post(other_org, f"/api/v1/migrations/{held['id']}:retry"), 503, "migration_capacity_reached"
    )["retryable"]


def test_migration_writes_are_limited_to_ten_a_minute_per_token(
    org: NewOrganization, mailbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_800_000_000.0]
    monkeypatch.setattr(migration_writes, "time", types.SimpleNamespace(time=lambda: now[0]))
    for _ in range(10):
        error(post(org, "/api/v1/migrations/mig_unknown:cancel"), 404, "not_found")
    limited = post(
        org, "/api/v1/migrations", start_body(mailbox["id"], PASSWORD), **{"Idempotency-Key": "the-11th"}
    )
    body = error(limited, 429, "rate_limited")
    assert body["retryable"] is True and int(limited.headers["retry-after"]) > 0
    assert (
        limited.headers["x-migration-ratelimit-limit"],
        limited.headers["x-migration-ratelimit-remaining"],
    ) == (
        "10",
        "0",
    )
    assert int(limited.headers["x-migration-ratelimit-reset"]) == 1_800_000_000 - 1_800_000_000 % 60 + 60
    error(delete(org, "/api/v1/migrations/mig_unknown"), 429, "rate_limited")
    # Reads are not migration writes.
    ok(get(org, "/api/v1/migrations"))
    # Another token has its own bucket.
    from mailroom.services.tokens import issue_ops_token

    other = issue_ops_token(
        Table(), org_id=org.organization["id"], name="second", scopes=["migrations:write"], created_by=None
    )
    refused = call(
        "migrations", "POST", "/api/v1/migrations/mig_unknown:cancel", token=other.plaintext, headers=key()
    )
    error(refused, 404, "not_found")

    # The next minute: the same Idempotency-Key runs (a 429 is never replayed).
    now[0] += 60
    again = post(
        org, "/api/v1/migrations", start_body(mailbox["id"], PASSWORD), **{"Idempotency-Key": "the-11th"}
    )
    assert again.status == 201 and "idempotent-replayed" not in again.headers


def test_cancel_stops_the_execution_and_releases_the_slots(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    job = started(org, mailbox)
    cancelled = ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
    assert (cancelled["status"], cancelled["poll_hint_seconds"]) == ("cancelled", None)
    assert cancelled["finished_at"] and cancelled["progress"] == 0
    item = store.get(table, org.organization["id"], job["id"])
    assert item is not None
    assert sfn().describe_execution(executionArn=item["execution_arn"])["status"] == "ABORTED"
    assert int((store.slots(table, org.organization["id"]) or {})["active"]) == 0
    assert store.capacity_in_use(table) == 0
    # Kept (with a TTL) for a retry.
    assert table.get(keys.migration_pk(org.organization["id"], job["id"]), keys.MIGRATION_SECRET_SK)

    again = error(post(org, f"/api/v1/migrations/{job['id']}:cancel"), 409, "conflict")
    assert "cancelled" in again["message"]
    error(post(org, "/api/v1/migrations/mig_01HZZZZZZZZZZZZZZZZZZZZZZZ:cancel"), 404, "not_found")


def test_retry_only_failed_or_cancelled_jobs_in_a_new_attempt(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    job = started(org, mailbox)
    error(post(org, f"/api/v1/migrations/{job['id']}:retry"), 409, "conflict")  # still pending
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))

    # While another job of the organization is active, no retry.
    other = started(org, mailbox, source_email="other@example.org")
    error(post(org, f"/api/v1/migrations/{job['id']}:retry"), 409, "conflict")
    ok(post(org, f"/api/v1/migrations/{other['id']}:cancel"))

    retried = ok(post(org, f"/api/v1/migrations/{job['id']}:retry"))
    assert (retried["id"], retried["status"], retried["attempt"]) == (job["id"], "pending", 2)
    assert retried["finished_at"] is None and retried["error_message"] is None
    assert retried["poll_hint_seconds"] == 5
    item = store.get(table, org.organization["id"], job["id"])
    assert item is not None and item["execution_arn"].endswith(f":{job['id']}-a2-s0")
    assert sfn().describe_execution(executionArn=item["execution_arn"])["status"] == "RUNNING"

    # A failed job whose sealed password expired needs a new one.
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
    store.delete_secret(table, org.organization["id"], job["id"])
    refused = error(post(org, f"/api/v1/migrations/{job['id']}:retry"), 422, "validation_error")
    assert refused["fields"][0]["field"] == "source_password"
    retried = ok(post(org, f"/api/v1/migrations/{job['id']}:retry", {"source_password": "a new one"}))
    assert retried["attempt"] == 3
    assert table.get(keys.migration_pk(org.organization["id"], job["id"]), keys.MIGRATION_SECRET_SK)


def test_delete_only_jobs_that_are_not_running(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    job = started(org, mailbox)
    error(delete(org, f"/api/v1/migrations/{job['id']}"), 409, "conflict")
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
    table.put(
        {"PK": keys.migration_pk(org.organization["id"], job["id"]), "SK": "FOLDER#0000", "name": "INBOX"}
    )

    deleted = delete(org, f"/api/v1/migrations/{job['id']}")
    assert deleted.status == 204 and deleted.body == b""
    error(get(org, f"/api/v1/migrations/{job['id']}"), 404, "not_found")
    error(delete(org, f"/api/v1/migrations/{job['id']}"), 404, "not_found")
    partition = table.query_page(partition=keys.migration_pk(org.organization["id"], job["id"]), per_page=10)
    assert partition.items == []  # folders, batches and the sealed password are gone
    assert int((store.slots(table, org.organization["id"]) or {})["count"]) == 0


def test_list_filters_pages_and_counts(
    org: NewOrganization, mailbox: dict[str, Any], other_org: NewOrganization, table: Table
) -> None:
    second_mailbox = new_mailbox(org, "second")
    jobs = []
    for index in range(3):
        target = mailbox if index < 2 else second_mailbox
        job = started(org, target, source_email=f"user{index}@example.org")
        ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
        jobs.append(job)
    active = started(org, second_mailbox, source_email="active@example.org")

    listed = get(org, "/api/v1/migrations", per_page=2)
    assert listed.status == 200
    page = listed.json()
    assert [j["id"] for j in page["data"]] == [active["id"], jobs[2]["id"]]  # newest first
    assert page["meta"]["total"] == 4 and page["data"][0]["folders"] is None
    assert page["links"]["next"]
    cancelled = ok(get(org, "/api/v1/migrations", status="cancelled"))
    assert [j["id"] for j in cancelled] == [j["id"] for j in reversed(jobs)]
    assert ok(get(org, "/api/v1/migrations", status="pending")) == [
        ok(get(org, "/api/v1/migrations", mailbox_id=second_mailbox["id"], status="pending"))[0]
    ]
    into_second = get(org, "/api/v1/migrations", mailbox_id=second_mailbox["id"]).json()
    assert [j["id"] for j in into_second["data"]] == [active["id"], jobs[2]["id"]]
    assert into_second["meta"]["total"] is None  # filtered views are not counted
    error(get(org, "/api/v1/migrations", status="running"), 422, "validation_error")
    assert ok(call("migrations", "GET", "/api/v1/migrations", token=other_org.admin_token)) == []


def test_progress_and_poll_hints_follow_the_status(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    job = started(org, mailbox)
    org_id = org.organization["id"]
    for status, hint in (("validating", 5), ("planning", 5), ("processing", 10)):
        store.advance(
            table, org_id, job["id"], attempt=1, from_statuses=rules.ACTIVE, fields={"status": status}
        )
        assert ok(get(org, f"/api/v1/migrations/{job['id']}"))["poll_hint_seconds"] == hint
    store.advance(
        table,
        org_id,
        job["id"],
        attempt=1,
        from_statuses=rules.ACTIVE,
        fields={
            "total_messages": 200,
            "imported_messages": 80,
            "failed_messages": 2,
            "skipped_duplicates": 8,
        },
    )
    assert ok(get(org, f"/api/v1/migrations/{job['id']}"))["progress"] == 45
    item = store.get(table, org_id, job["id"])
    assert item is not None and service.complete(table, item, attempt=1)
    done = ok(get(org, f"/api/v1/migrations/{job['id']}"))
    assert (done["status"], done["progress"], done["poll_hint_seconds"]) == ("completed", 100, None)
    # Completed: the sealed password is gone, and migration.completed was recorded once.
    assert table.get(keys.migration_pk(org_id, job["id"]), keys.MIGRATION_SECRET_SK) is None
    recorded = [
        e
        for e in events.list_page(table, org_id, per_page=50).items
        if e["event_type"].startswith("migration.")
    ]
    assert [e["event_type"] for e in recorded] == ["migration.completed"]
    assert recorded[0]["data"]["id"] == job["id"] and recorded[0]["data"]["status"] == "completed"
    assert not service.complete(table, item, attempt=1)  # ends once
    assert int((store.slots(table, org_id) or {})["active"]) == 0


def test_a_job_whose_execution_ended_without_it_is_failed_when_read(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    job = started(org, mailbox)
    item = store.get(table, org.organization["id"], job["id"])
    assert item is not None
    sfn().stop_execution(executionArn=item["execution_arn"], error="Manual", cause="stopped by an operator")
    assert ok(get(org, f"/api/v1/migrations/{job['id']}"))["status"] == "pending"  # recently updated
    long_ago = clock.isoformat(clock.utcnow().replace(year=2020))
    store.advance(
        table,
        org.organization["id"],
        job["id"],
        attempt=1,
        from_statuses=rules.ACTIVE,
        fields={"updated_at": long_ago},
    )
    view = ok(get(org, f"/api/v1/migrations/{job['id']}"))
    assert (view["status"], view["error_code"]) == ("failed", "internal_error")
    assert "aborted" in view["error_message"]
    assert int((store.slots(table, org.organization["id"]) or {})["active"]) == 0


def test_scopes_and_audit_records(org: NewOrganization, mailbox: dict[str, Any], table: Table) -> None:
    from mailroom.services.tokens import issue_ops_token

    reader = issue_ops_token(
        table, org_id=org.organization["id"], name="reader", scopes=["migrations:read"], created_by=None
    )
    refused = call(
        "migrations", "POST", "/api/v1/migrations", token=reader.plaintext, json_body={}, headers=key()
    )
    error(refused, 403, "insufficient_scope")
    assert call("migrations", "GET", "/api/v1/migrations", token=reader.plaintext).status == 200

    job = started(org, mailbox)
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
    ok(post(org, f"/api/v1/migrations/{job['id']}:retry"))
    ok(post(org, f"/api/v1/migrations/{job['id']}:cancel"))
    assert delete(org, f"/api/v1/migrations/{job['id']}").status == 204
    org_id = org.organization["id"]
    for action in ("migration_started", "migration_cancelled", "migration_retried", "migration_deleted"):
        records = audit.list_page(table, org_id, per_page=10, cursor=None, action=action).items
        assert records, action
        assert records[0]["target"]["id"] == job["id"] and records[0]["outcome"]["status"] in (200, 201, 204)
    audited = json.dumps(audit.list_page(table, org_id, per_page=50, cursor=None).items, default=str)
    assert SOURCE_PASSWORD not in audited and PASSWORD not in audited
