"""The migration workflow's steps against a real Dovecot on loopback: the worker function's handler
invoked with the events statemachines/migration.asl.json builds (tests/support/migrations.py drives
its states, retries and catches), AWS in moto. Jobs are started through the API function."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mailroom import clock
from mailroom.domain import migrations as rules
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import audit, events, keys
from mailroom.store import mail as mail_store
from mailroom.store import migrations as store
from mailroom.store.table import Table
from mailroom.store.txn import Update
from tests.support.dovecot import DovecotServer, dovecot_server, seed_standard_corpus
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox, ok
from tests.support.migrations import MigrationAws, Run, WorkflowDriver, provision_migration_aws, start_body

__all__ = ["dovecot_server"]  # the session fixture, used by name

SYSTEM = {"INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash", "Junk": "spam"}


@dataclass
class Setup:
    org: NewOrganization
    mailbox: dict[str, Any]
    server: DovecotServer
    user: str
    password: str
    aws: MigrationAws

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def body(self, **overrides: Any) -> dict[str, Any]:
        source = {
            "source_port": self.server.ssl_port,
            "source_email": self.user,
            "source_password": self.password,
        }
        return start_body(self.mailbox["id"], PASSWORD, **{**source, **overrides})

    def start(self, **overrides: Any) -> Result:
        return call(
            "migrations",
            "POST",
            "/api/v1/migrations",
            token=self.org.admin_token,
            json_body=self.body(**overrides),
            headers=key(),
        )

    def job(self, table: Table, job_id: str) -> dict[str, Any]:
        item = store.get(table, self.org_id, job_id)
        assert item is not None
        return item

    def view(self, job_id: str) -> dict[str, Any]:
        return ok(call("migrations", "GET", f"/api/v1/migrations/{job_id}", token=self.org.admin_token))  # type: ignore[no-any-return]


@pytest.fixture
def setup(
    moto_env: None, monkeypatch: pytest.MonkeyPatch, org: NewOrganization, dovecot_server: DovecotServer
) -> Iterator[Setup]:
    aws_pieces = provision_migration_aws(monkeypatch)
    monkeypatch.setenv("MAILROOM_IMAP_CA_FILE", str(dovecot_server.ca_file))
    monkeypatch.setenv("MAILROOM_IMAP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("MAILROOM_MIGRATION_BATCH_SIZE", "10")
    monkeypatch.setenv("MAILROOM_MIGRATION_WINDOW_BATCHES", "3")
    monkeypatch.setenv("MAILROOM_MIGRATION_WINDOWS_PER_EXECUTION", "2")
    monkeypatch.setenv("MAILROOM_MIGRATION_FETCH_CHUNK", "4")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "owner")
    user, password = dovecot_server.new_user("mig")
    yield Setup(org, mailbox, dovecot_server, user, password, aws_pieces)
    get_settings.cache_clear()


def mailbox_messages(table: Table, org_id: str, mailbox_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = mail_store.list_messages(table, org_id, mailbox_id, per_page=100, cursor=cursor)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def run_to_end(table: Table, setup: Setup, job_id: str, driver: WorkflowDriver | None = None) -> list[Run]:
    return (driver or WorkflowDriver()).run_job(setup.job(table, job_id))


def test_a_mailbox_migrates_folder_by_folder_with_flags_and_dates(setup: Setup, table: Table) -> None:
    seeded = seed_standard_corpus(setup.server, setup.user, count=90)
    started = setup.start(skip_duplicates=False)
    assert started.status == 201, started.body
    job_id = started.json()["data"]["id"]

    runs = run_to_end(table, setup, job_id)

    # Batches of 10, windows of 3, 2 windows per execution: many batches, several executions.
    assert [r.end for r in runs][-1] == "completed" and len(runs) >= 3, [(r.end, r.error) for r in runs]
    assert all(r.end == "handed_over" for r in runs[:-1])
    view = setup.view(job_id)
    assert view["status"] == "completed" and view["progress"] == 100 and view["poll_hint_seconds"] is None
    expected_total = sum(len(m) for m in seeded.values())
    assert view["total_messages"] == view["imported_messages"] == expected_total
    assert view["failed_messages"] == view["skipped_duplicates"] == 0
    by_name = {f["name"]: f for f in view["folders"]}
    assert set(by_name) == set(seeded)
    for name, messages in seeded.items():
        folder = by_name[name]
        assert (folder["expected"], folder["imported"], folder["failed"], folder["skipped"]) == (
            len(messages),
            len(messages),
            0,
            0,
        ), folder
        assert folder["status"] == "completed"

    # Where the messages landed: system folders by special use, the others as custom folders.
    stored = mailbox_messages(table, setup.org_id, setup.mailbox["id"])
    assert len(stored) == expected_total
    # Metered as imports (not as mail received or sent), in the storing transactions (docs/billing.md).
    month = clock.utcnow().strftime("%Y-%m")
    metered = table.get(keys.org_pk(setup.org_id), keys.usage_sk(month)) or {}
    assert (metered.get("messages_imported"), metered.get("messages_received")) == (expected_total, None)
    assert metered["stored_bytes_added"] == sum(int(m["size"]) for m in stored)
    paths = mail_store.folder_paths(table, setup.org_id, setup.mailbox["id"])
    per_folder = Counter(paths[m["folder_key"]] for m in stored)
    want = {("Spam" if name == "Junk" else name): len(messages) for name, messages in seeded.items()}
    assert dict(per_folder) == want
    assert by_name["Junk"]["target_folder"] == "Spam" and by_name["Café ☕"]["target_folder"] == "Café ☕"

    # Flags and received dates are the source's; Sent mail is outbound.
    by_source = {m["migration_source"]: m for m in stored}
    for name, messages in seeded.items():
        item = table.get(keys.migration_pk(setup.org_id, job_id), keys.migration_folder_sk(_seq(view, name)))
        assert item is not None
        for uid, message in enumerate(messages, start=1):
            sid = rules.source_id(job_id, item["raw_name"], int(item["uidvalidity"]), uid)
            copy = by_source[sid]
            assert copy["flags"]["seen"] == ("\\Seen" in message.flags)
            assert copy["flags"]["flagged"] == ("\\Flagged" in message.flags)
            assert copy["received_at"].startswith(message.internal_date.strftime("%Y-%m-%dT%H:%M:%S"))
            assert copy["direction"] == ("outbound" if name == "Sent" else "inbound")

    # Ended once: the event, the slots back, the sealed password gone.
    assert table.get(keys.migration_pk(setup.org_id, job_id), keys.MIGRATION_SECRET_SK) is None
    assert int((store.slots(table, setup.org_id) or {})["active"]) == 0
    assert store.capacity_in_use(table) == 0
    kinds = [e["event_type"] for e in events.list_page(table, setup.org_id, per_page=100).items]
    assert kinds.count("migration.completed") == 1
    # The job points at its last execution, each started by the one before it.
    item = setup.job(table, job_id)
    assert item["execution_arn"].endswith(f":{job_id}-a1-s{len(runs) - 1}")
    assert int(item["executions"]) == len(runs)


def _seq(view: dict[str, Any], name: str) -> int:
    return next(i for i, f in enumerate(view["folders"]) if f["name"] == name)


def test_a_second_run_with_skip_duplicates_imports_nothing(setup: Setup, table: Table) -> None:
    seeded = seed_standard_corpus(setup.server, setup.user, count=40)
    total = sum(len(m) for m in seeded.values())
    first = setup.start(skip_duplicates=False).json()["data"]["id"]
    assert run_to_end(table, setup, first)[-1].end == "completed"
    stored = len(mailbox_messages(table, setup.org_id, setup.mailbox["id"]))
    assert stored == total

    second = setup.start(skip_duplicates=True)
    assert second.status == 201, second.body
    assert run_to_end(table, setup, second.json()["data"]["id"])[-1].end == "completed"
    view = setup.view(second.json()["data"]["id"])
    assert (view["imported_messages"], view["skipped_duplicates"], view["failed_messages"]) == (0, total, 0)
    assert all(f["imported"] == 0 and f["skipped"] == f["expected"] for f in view["folders"])
    # Found by Message-ID, and by the digest of the bytes for the messages without one.
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == stored


def shared_id(
    subject: str,
    body: str,
    *,
    date: str = "Mon, 6 Jan 2025 10:00:00 +0000",
    sender: str = "Ann <ann@example.net>",
    delivered_by: str = "",
) -> bytes:
    """A message with the Message-ID <shared@example.net>, as mailers that reuse one send them.
    ``delivered_by``: a Received header another server added to its copy of the same message."""
    received = f"Received: from {delivered_by} by imap.example.net; {date}\r\n" if delivered_by else ""
    return (
        f"{received}From: {sender}\r\nTo: owner@example.com\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <shared@example.net>\r\n\r\n{body}\r\n"
    ).encode()


# Five distinct messages under one Message-ID: each differs from the first in one thing only.
DISTINCT_SHARING_AN_ID = [
    shared_id("Weekly report", "Numbers: 1"),
    shared_id("Weekly report", "Numbers: 2"),  # the body (the same size)
    shared_id("Weekly report", "Numbers: 1", date="Mon, 13 Jan 2025 10:00:00 +0000"),  # the Date
    shared_id("Weekly report", "Numbers: 1", sender="Bob <bob@example.net>"),  # the sender
    shared_id("Monthly report", "Numbers: 1"),  # the Subject
]
WITHOUT_ID = [
    b"From: a@example.net\r\nTo: owner@example.com\r\nSubject: no id\r\n\r\nfirst\r\n",
    b"From: a@example.net\r\nTo: owner@example.com\r\nSubject: no id\r\n\r\nsecond\r\n",
]


def stored_with(table: Table, setup: Setup, message_id: str | None) -> list[dict[str, Any]]:
    return [
        m
        for m in mailbox_messages(table, setup.org_id, setup.mailbox["id"])
        if m.get("rfc_message_id") == message_id
    ]


def test_messages_sharing_a_message_id_are_skipped_only_when_they_are_the_same_message(
    setup: Setup, table: Table
) -> None:
    setup.server.seed(setup.user, "INBOX", [*DISTINCT_SHARING_AN_ID, *WITHOUT_ID])
    # The same messages again in a second folder: one byte for byte, one as another server kept it
    # (a Received header more), and a message without Message-ID byte for byte.
    copies = [
        DISTINCT_SHARING_AN_ID[0],
        shared_id("Weekly report", "Numbers: 2", delivered_by="mx.example.org"),
        WITHOUT_ID[0],
    ]
    setup.server.seed(setup.user, "Copies", copies)

    first = setup.start()  # skip_duplicates is the default
    assert first.status == 201 and first.json()["data"]["skip_duplicates"] is True, first.body
    assert run_to_end(table, setup, first.json()["data"]["id"])[-1].end == "completed"
    view = setup.view(first.json()["data"]["id"])
    # Every distinct message imported, each second copy skipped (whichever folder came first).
    assert (view["imported_messages"], view["skipped_duplicates"], view["failed_messages"]) == (7, 3, 0)
    shared = stored_with(table, setup, "<shared@example.net>")
    assert len(shared) == 5
    assert {(m["subject"], m["from"], m["date"]) for m in shared} == {
        ("Weekly report", "Ann <ann@example.net>", "2025-01-06T10:00:00.000Z"),
        ("Weekly report", "Bob <bob@example.net>", "2025-01-06T10:00:00.000Z"),
        ("Weekly report", "Ann <ann@example.net>", "2025-01-13T10:00:00.000Z"),
        ("Monthly report", "Ann <ann@example.net>", "2025-01-06T10:00:00.000Z"),
    }
    assert len({m["content_fingerprint"] for m in shared}) == 5
    assert len(stored_with(table, setup, None)) == 2

    # A second job over the same source: the same messages, all skipped, nothing stored again.
    second = setup.start().json()["data"]["id"]
    assert run_to_end(table, setup, second)[-1].end == "completed"
    again = setup.view(second)
    assert (again["imported_messages"], again["skipped_duplicates"], again["failed_messages"]) == (0, 10, 0)
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 7


def test_a_message_stored_without_a_fingerprint_is_compared_by_its_bytes(setup: Setup, table: Table) -> None:
    setup.server.seed(setup.user, "INBOX", DISTINCT_SHARING_AN_ID)
    first = setup.start(skip_duplicates=False).json()["data"]["id"]
    assert run_to_end(table, setup, first)[-1].end == "completed"
    # As mail delivered through the inbound flow, or imported before fingerprints, is stored.
    for message in stored_with(table, setup, "<shared@example.net>"):
        Update(message["PK"], message["SK"]).remove("content_fingerprint").apply(table)
    # Headers as the first message's, another body: the same Message-ID, Date, From and Subject.
    setup.server.seed(setup.user, "INBOX", [shared_id("Weekly report", "Numbers: 3")])

    second = setup.start().json()["data"]["id"]
    assert run_to_end(table, setup, second)[-1].end == "completed"
    view = setup.view(second)
    assert (view["imported_messages"], view["skipped_duplicates"], view["failed_messages"]) == (1, 5, 0)
    assert len(stored_with(table, setup, "<shared@example.net>")) == 6


def test_cancelled_mid_way_then_retried_ends_complete_without_duplicates(setup: Setup, table: Table) -> None:
    seeded = seed_standard_corpus(setup.server, setup.user, count=60)
    total = sum(len(m) for m in seeded.values())
    job_id = setup.start(skip_duplicates=False).json()["data"]["id"]
    batches_run = []

    def cancel_after_four(step: str, event: dict[str, Any]) -> None:
        if step == "ImportBatch":
            batches_run.append(event["seq"])
            if len(batches_run) == 5:
                cancelled = call(
                    "migrations",
                    "POST",
                    f"/api/v1/migrations/{job_id}:cancel",
                    token=setup.org.admin_token,
                    headers=key(),
                )
                assert cancelled.status == 200, cancelled.body

    first = WorkflowDriver(before_step=cancel_after_four).run_job(setup.job(table, job_id))
    assert first[-1].end == "stopped"  # the next step found the job cancelled and did nothing
    cancelled = setup.view(job_id)
    assert cancelled["status"] == "cancelled" and 0 < cancelled["imported_messages"] < total
    planned_first = int(setup.job(table, job_id)["batches_total"])
    partial = len(mailbox_messages(table, setup.org_id, setup.mailbox["id"]))
    assert partial == cancelled["imported_messages"]

    retried = call(
        "migrations", "POST", f"/api/v1/migrations/{job_id}:retry", token=setup.org.admin_token, headers=key()
    )
    assert retried.status == 200, retried.body
    assert retried.json()["data"]["status"] == "pending" and retried.json()["data"]["attempt"] == 2
    assert retried.json()["data"]["imported_messages"] == 0  # reset, then recounted by the plan
    runs = run_to_end(table, setup, job_id)
    assert runs[-1].end == "completed"

    view = setup.view(job_id)
    assert (view["status"], view["total_messages"], view["imported_messages"]) == ("completed", total, total)
    assert view["skipped_duplicates"] == view["failed_messages"] == 0
    for folder in view["folders"]:
        assert folder["imported"] == folder["expected"] == len(seeded[folder["name"]])
    # What the first attempt imported was neither fetched nor stored again.
    assert int(setup.job(table, job_id)["batches_total"]) < planned_first
    stored = mailbox_messages(table, setup.org_id, setup.mailbox["id"])
    assert len(stored) == total
    assert len({m["migration_source"] for m in stored}) == total


def test_a_batch_runs_out_of_time_resumes_and_is_counted_once(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.services import migration_import
    from mailroom.services.migration_context import BatchIncomplete

    messages = [
        b"From: a@example.net\r\nSubject: m%d\r\nMessage-ID: <m%d@example.net>\r\n\r\nbody\r\n" % (n, n)
        for n in range(10)
    ]
    setup.server.seed(setup.user, "INBOX", messages)
    job_id = setup.start().json()["data"]["id"]
    job = setup.job(table, job_id)
    state = {"org_id": setup.org_id, "job_id": job_id, "attempt": 1, "segment": 0}
    driver = WorkflowDriver()
    driver.invoke("Validate", {"step": "validate", "state": state})
    planned = driver.invoke("Plan", {"step": "plan", "state": state})
    window = driver.invoke("NextWindow", {"step": "next_window", "state": planned})
    assert window["window"]["batches"] == [0] and window["window"]["then"] == "finalize"
    event = {"step": "import_batch", "state": state, "seq": 0}

    # Time runs out after 4 messages: what was stored is checkpointed, the batch is not counted.
    budget = iter([10**9] * 4 + [0] * 100)
    with pytest.raises(BatchIncomplete):
        migration_import.import_batch(event, lambda: next(budget))
    batch = store.get_batch(table, setup.org_id, job_id, 1, 0)
    assert batch is not None and batch["status"] == "pending" and len(batch["processed"]) >= 4
    assert setup.view(job_id)["imported_messages"] == 0

    # Step Functions runs it again: it continues after the checkpoint and counts the batch once.
    done = driver.invoke("ImportBatch", event)
    assert done["counted"] is True and done["imported"] == 10
    again = driver.invoke("ImportBatch", event)  # a retry after success (a lost response)
    assert again["counted"] is False
    assert setup.view(job_id)["imported_messages"] == 10
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 10

    # Counting is conditional on the attempt: a straggler of an earlier attempt adds nothing.
    assert (
        store.count_batch(
            table,
            setup.org_id,
            job_id,
            batch={**batch, "status": "pending", "attempt": 0},
            tallies={"imported": 5},
            folder_error=None,
            sample_error=None,
        )
        is False
    )
    driver.invoke("Finalize", {"step": "finalize", "state": window})
    view = setup.view(job_id)
    assert (view["status"], view["imported_messages"]) == ("completed", 10)
    assert job["execution_arn"] == setup.job(table, job_id)["execution_arn"]


def test_a_transient_aws_failure_storing_a_message_is_retried_in_place(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a reason to stop the batch (Step Functions would run it again seconds later)."""
    from mailroom.services import mail_delivery
    from mailroom.store.errors import ServiceUnavailable, Throttled

    messages = [
        b"From: a@example.net\r\nSubject: t%d\r\nMessage-ID: <t%d@example.net>\r\n\r\nbody\r\n" % (n, n)
        for n in range(6)
    ]
    setup.server.seed(setup.user, "INBOX", messages)
    job_id = setup.start().json()["data"]["id"]
    state = {"org_id": setup.org_id, "job_id": job_id, "attempt": 1, "segment": 0}
    driver = WorkflowDriver()
    driver.invoke("Validate", {"step": "validate", "state": state})
    planned = driver.invoke("Plan", {"step": "plan", "state": state})
    driver.invoke("NextWindow", {"step": "next_window", "state": planned})
    real, failures = mail_delivery.deliver, [Throttled("slow"), ServiceUnavailable("down")]

    def outage(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(mail_delivery, "deliver", outage)
    done = driver.invoke("ImportBatch", {"step": "import_batch", "state": state, "seq": 0})
    assert failures == []
    assert (done["counted"], done["imported"]) == (True, 6)
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 6


def test_a_folder_renumbered_after_planning_fails_its_messages_with_a_folder_error(
    setup: Setup, table: Table
) -> None:
    setup.server.seed(setup.user, "INBOX", [b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\na\r\n"] * 3)
    setup.server.seed(
        setup.user, "Work", [b"Subject: b\r\nMessage-ID: <b%d@x>\r\n\r\nb\r\n" % n for n in range(4)]
    )
    job_id = setup.start(skip_duplicates=False).json()["data"]["id"]
    renumbered: list[bool] = []

    def renumber(step: str, event: dict[str, Any]) -> None:
        if step == "ImportBatch" and not renumbered:
            setup.server.doveadm("mailbox", "update", "-u", setup.user, "--uid-validity", "4242", "Work")
            renumbered.append(True)

    runs = WorkflowDriver(before_step=renumber).run_job(setup.job(table, job_id))
    assert runs[-1].end == "completed"
    view = setup.view(job_id)
    by_name = {f["name"]: f for f in view["folders"]}
    assert (by_name["INBOX"]["status"], by_name["INBOX"]["imported"]) == ("completed", 3)
    work = by_name["Work"]
    assert (work["status"], work["imported"], work["failed"]) == ("failed", 0, 4)
    assert "UIDVALIDITY" in work["error"] and "retry" in work["error"]
    assert view["failed_messages"] == 4 and view["status"] == "completed"


def test_wrong_source_password_fails_the_job_with_connection_failed(setup: Setup, table: Table) -> None:
    started = setup.start(source_password="not-the-password")
    assert started.status == 201, started.body
    job_id = started.json()["data"]["id"]
    runs = run_to_end(table, setup, job_id)
    assert runs[-1].end == "failed" and runs[-1].steps == ["validate"]

    view = setup.view(job_id)
    assert (view["status"], view["error_code"], view["error_reason"]) == (
        "failed",
        "connection_failed",
        "auth_failed",
    )
    assert "refused the login" in view["error_message"] and "not-the-password" not in json.dumps(view)
    assert view["poll_hint_seconds"] is None and view["finished_at"]
    assert int((store.slots(table, setup.org_id) or {})["active"]) == 0 and store.capacity_in_use(table) == 0
    failed_events = [
        e
        for e in events.list_page(table, setup.org_id, per_page=50).items
        if e["event_type"] == "migration.failed"
    ]
    assert len(failed_events) == 1 and failed_events[0]["data"]["error_code"] == "connection_failed"
    # Kept for :retry (with a TTL), never returned.
    secret = table.get(keys.migration_pk(setup.org_id, job_id), keys.MIGRATION_SECRET_SK)
    assert secret is not None and secret["ttl"] > 0 and b"not-the-password" not in secret["ciphertext"]

    # Retried with the right password, it completes.
    setup.server.seed(setup.user, "INBOX", [b"Subject: one\r\nMessage-ID: <one@x>\r\n\r\nbody\r\n"])
    retried = call(
        "migrations",
        "POST",
        f"/api/v1/migrations/{job_id}:retry",
        token=setup.org.admin_token,
        json_body={"source_password": setup.password},
        headers=key(),
    )
    assert retried.status == 200, retried.body
    assert run_to_end(table, setup, job_id)[-1].end == "completed"
    assert setup.view(job_id)["imported_messages"] == 1
    assert table.get(keys.migration_pk(setup.org_id, job_id), keys.MIGRATION_SECRET_SK) is None


def test_an_unreachable_source_fails_the_job_instead_of_hanging(setup: Setup, table: Table) -> None:
    from tests.e2e.stack_process import free_port

    job_id = setup.start(source_port=free_port()).json()["data"]["id"]
    runs = run_to_end(table, setup, job_id)
    assert runs[-1].end == "failed"
    view = setup.view(job_id)
    assert (view["status"], view["error_code"], view["error_reason"]) == (
        "failed",
        "connection_failed",
        "connection_failed",
    )
    assert "127.0.0.1" in view["error_message"]


def test_tls_failure_fails_the_job_with_a_clear_error(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILROOM_IMAP_CA_FILE")  # the server's certificate is not trusted then
    get_settings.cache_clear()
    job_id = setup.start().json()["data"]["id"]
    assert run_to_end(table, setup, job_id)[-1].end == "failed"
    view = setup.view(job_id)
    assert (view["error_code"], view["error_reason"]) == ("connection_failed", "tls_failed")


def test_selected_folders_and_import_since(setup: Setup, table: Table) -> None:
    seeded = seed_standard_corpus(setup.server, setup.user, count=40)
    since = "2024-01-05"
    started = setup.start(
        selected_folders=["inbox", "Entwürfe", "Nowhere"], import_since=since, skip_duplicates=False
    )
    assert started.status == 201, started.body
    job_id = started.json()["data"]["id"]
    assert run_to_end(table, setup, job_id)[-1].end == "completed"
    view = setup.view(job_id)
    by_name = {f["name"]: f for f in view["folders"]}
    assert set(by_name) == {"INBOX", "Entwürfe", "Nowhere"}
    for name in ("INBOX", "Entwürfe"):
        recent = [m for m in seeded[name] if m.internal_date.date().isoformat() >= since]
        assert len(recent) < len(seeded[name]) or name != "INBOX"
        assert by_name[name]["imported"] == by_name[name]["expected"] == len(recent)
    assert by_name["Nowhere"]["status"] == "failed" and by_name["Nowhere"]["expected"] == 0
    assert view["selected_folders"] == ["inbox", "Entwürfe", "Nowhere"]


def test_test_connection_lists_folders_or_says_why_not(setup: Setup) -> None:
    seeded = seed_standard_corpus(setup.server, setup.user, count=30)
    body = {k: v for k, v in setup.body().items() if k.startswith("source_")}
    listed = call(
        "migrations",
        "POST",
        "/api/v1/migrations/test-connection",
        token=setup.org.admin_token,
        json_body=body,
        headers=key(),
    )
    assert listed.status == 200, listed.body
    assert listed.json()["success"] is True
    folders = listed.json()["folders"]
    assert {name: count for name, count in folders.items() if name in seeded} == {
        name: len(messages) for name, messages in seeded.items()
    }

    wrong = call(
        "migrations",
        "POST",
        "/api/v1/migrations/test-connection",
        token=setup.org.admin_token,
        json_body={**body, "source_password": "nope-nope"},
        headers=key(),
    )
    assert (wrong.status, wrong.error_code) == (422, "connection_failed")
    assert "refused the login" in wrong.json()["error"]["message"] and b"nope-nope" not in wrong.body
    records = audit.list_page(
        Table(), setup.org_id, per_page=50, cursor=None, action="migration_connection_tested"
    )
    assert [r["outcome"]["status"] for r in records.items] == [422, 200]  # newest first
