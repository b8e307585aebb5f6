"""Import batches written a chunk at a time (services/migration_chunks.py): the requests a batch
costs, and a batch killed between two of its transactions, run again by Step Functions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from mailroom import clock
from mailroom.services import migration_chunks, migration_import
from mailroom.store import aws, keys, mail_batch
from mailroom.store import migrations as store
from mailroom.store.table import Table
from tests.integration.test_migration_workflow import Setup, mailbox_messages, setup
from tests.support.dovecot import dovecot_server
from tests.support.migrations import WorkflowDriver

__all__ = ["dovecot_server", "setup"]  # fixtures, used by name


def conversation(count: int, tag: str) -> list[bytes]:
    """``count`` messages in threads of four: each reply names its parent (In-Reply-To)."""
    messages = []
    for n in range(count):
        parent = f"In-Reply-To: <{tag}{n - 1}@example.net>\r\n" if n % 4 else ""
        subject = f"{'Re: ' if n % 4 else ''}Topic {tag}{n // 4}"
        messages.append(
            (
                f"From: Ann <ann@example.net>\r\nTo: owner@example.com\r\nSubject: {subject}\r\n"
                f"Date: Mon, 6 Jan 2025 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <{tag}{n}@example.net>\r\n"
                f"{parent}\r\nbody {n}\r\n"
            ).encode()
        )
    return messages


def planned(setup: Setup, job_id: str) -> tuple[dict[str, Any], WorkflowDriver, list[int]]:
    state = {"org_id": setup.org_id, "job_id": job_id, "attempt": 1, "segment": 0}
    driver = WorkflowDriver()
    driver.invoke("Validate", {"step": "validate", "state": state})
    plan = driver.invoke("Plan", {"step": "plan", "state": state})
    window = driver.invoke("NextWindow", {"step": "next_window", "state": plan})
    return state, driver, list(window["window"]["batches"])


def test_a_batch_costs_at_most_one_dynamodb_request_per_ten_messages(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.settings import get_settings

    monkeypatch.setenv("MAILROOM_MIGRATION_BATCH_SIZE", "150")
    get_settings.cache_clear()
    setup.server.seed(setup.user, "INBOX", conversation(150, "cost"))
    job_id = setup.start().json()["data"]["id"]
    state, driver, batches = planned(setup, job_id)
    assert batches == [0]
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.*", count)
    try:
        done = driver.invoke("ImportBatch", {"step": "import_batch", "state": state, "seq": 0})
    finally:
        events.unregister("before-call.dynamodb.*", count)
    assert (done["counted"], done["imported"]) == (True, 150)
    assert sum(calls.values()) <= 15, calls  # through the real handler: <= 0.1 per message
    assert calls["Query"] == 0, calls  # an empty target: duplicates and parents from the entries
    stored = mailbox_messages(table, setup.org_id, setup.mailbox["id"])
    threads = Counter(m["thread_id"] for m in stored)
    assert sorted(threads.values()) == [2] + [4] * 37  # replies joined their parents' threads


def test_a_batch_killed_between_its_transactions_is_run_again_without_duplicates_or_double_counts(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.server.seed(setup.user, "INBOX", conversation(10, "kill"))
    job_id = setup.start().json()["data"]["id"]
    state, driver, batches = planned(setup, job_id)
    assert batches == [0]
    monkeypatch.setattr(migration_chunks, "GROUP_BYTES", 1)  # one message per transaction
    real, written = mail_batch.store_group, list[int]()

    def killed_after_three(*args: Any, **kwargs: Any) -> None:
        if len(written) == 3:
            raise SystemExit("the sandbox is gone")  # nothing of the batch's code runs after it
        real(*args, **kwargs)
        written.append(1)

    monkeypatch.setattr(mail_batch, "store_group", killed_after_three)
    event = {"step": "import_batch", "state": state, "seq": 0}
    with pytest.raises(SystemExit):
        migration_import.import_batch(event, lambda: 10**9)
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 3
    batch = store.get_batch(table, setup.org_id, job_id, 1, 0)
    assert batch is not None and not batch.get("processed")  # the chunk's checkpoint was not written

    monkeypatch.setattr(mail_batch, "store_group", real)
    done = driver.invoke("ImportBatch", event)  # Step Functions' retry
    assert (done["counted"], done["imported"]) == (True, 10)
    stored = mailbox_messages(table, setup.org_id, setup.mailbox["id"])
    assert len(stored) == len({m["migration_source"] for m in stored}) == 10
    mailbox = table.get(keys.org_pk(setup.org_id), keys.mailbox_sk(setup.mailbox["id"]))
    assert mailbox is not None
    assert (mailbox["message_count"], mailbox["used_bytes"]) == (10, sum(int(m["size"]) for m in stored))
    assert mailbox["thread_count"] == len({m["thread_id"] for m in stored}) == 3
    threads = [
        mail_batch.get_many(table, setup.org_id, setup.mailbox["id"], [keys.thread_sk(t[4:])])
        for t in {m["thread_id"] for m in stored}
    ]
    assert sorted(int(next(iter(t.values()))["message_count"]) for t in threads) == [2, 4, 4]
    month = clock.utcnow().strftime("%Y-%m")
    metered = table.get(keys.org_pk(setup.org_id), keys.usage_sk(month)) or {}
    assert metered["messages_imported"] == 10
    assert metered["stored_bytes_added"] == mailbox["used_bytes"]
    assert setup.view(job_id)["imported_messages"] == 10


def counted_calls(driver: WorkflowDriver, event: dict[str, Any]) -> tuple[dict[str, Any], Counter[str]]:
    """The ImportBatch step through the real handler, with the DynamoDB requests it made."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.*", count)
    try:
        done = driver.invoke("ImportBatch", event)
    finally:
        events.unregister("before-call.dynamodb.*", count)
    return done, calls


def test_a_full_batch_fills_its_transactions_and_is_counted_in_the_last_one(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.settings import get_settings

    size = migration_chunks.CHUNK  # the template's batch: one chunk
    monkeypatch.setenv("MAILROOM_MIGRATION_BATCH_SIZE", str(size))
    get_settings.cache_clear()
    setup.server.seed(setup.user, "INBOX", conversation(size, "full"))
    job_id = setup.start().json()["data"]["id"]
    state, driver, batches = planned(setup, job_id)
    assert batches == [0]
    done, calls = counted_calls(driver, {"step": "import_batch", "state": state, "seq": 0})
    assert (done["counted"], done["imported"]) == (True, size)
    # Per message its item and its Message-ID entry, per thread of four its rollup and its subject
    # entry (twice for a thread split between two transactions), three counters per transaction,
    # and in the last the checkpoint, the batch's counts and its imported set: full transactions.
    transactions = calls["TransactWriteItems"]
    operations = size * 2 + (size / 4 + transactions) * 2 + 3 * transactions + 4
    assert transactions == -(-operations // 100), calls
    # The job, batch and password in one read, the mailbox, the chunk's entries and the messages
    # and threads they name (BatchGetItem: 100 keys each); nothing per message.
    assert calls["GetItem"] == 1 and calls["Query"] == 0 and calls["UpdateItem"] == 0, calls
    assert sum(calls.values()) / size <= 0.07, calls
    assert setup.view(job_id)["imported_messages"] == size
    batch = store.get_batch(table, setup.org_id, job_id, 1, 0)
    assert batch is not None and batch["status"] == "done"


def test_a_batch_killed_after_the_transaction_that_counted_it_is_not_counted_again(
    setup: Setup, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.server.seed(setup.user, "INBOX", conversation(10, "after"))
    job_id = setup.start().json()["data"]["id"]
    state, driver, batches = planned(setup, job_id)
    assert batches == [0]
    real = mail_batch.store_group

    def killed_once_counted(table_: Table, group: mail_batch.Group, **kwargs: Any) -> None:
        real(table_, group, **kwargs)
        if any(op.role == store.COUNT_JOB for op in group.also):
            raise SystemExit("the sandbox is gone")  # counted: nothing after the transaction runs

    monkeypatch.setattr(mail_batch, "store_group", killed_once_counted)
    event = {"step": "import_batch", "state": state, "seq": 0}
    with pytest.raises(SystemExit):
        migration_import.import_batch(event, lambda: 10**9)
    monkeypatch.setattr(mail_batch, "store_group", real)
    done = driver.invoke("ImportBatch", event)  # Step Functions' retry
    assert done["counted"] is False  # counted by the run that was killed
    assert setup.view(job_id)["imported_messages"] == 10
    job = store.get(table, setup.org_id, job_id)
    assert job is not None and (job["transferred_messages"], job["batches_done"]) == (10, 1)
    folder = table.get(keys.migration_pk(setup.org_id, job_id), keys.migration_folder_sk(0))
    assert folder is not None and (folder["imported"], folder["batches_done"]) == (10, 1)
    mailbox = table.get(keys.org_pk(setup.org_id), keys.mailbox_sk(setup.mailbox["id"]))
    assert mailbox is not None and mailbox["message_count"] == 10
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 10


def test_a_batch_whose_attempt_ended_records_its_messages_without_counting_them(
    setup: Setup, table: Table
) -> None:
    setup.server.seed(setup.user, "INBOX", conversation(6, "ended"))
    job_id = setup.start().json()["data"]["id"]
    state, _driver, batches = planned(setup, job_id)
    assert batches == [0]
    real = mail_batch.store_group
    ended = False

    def attempt_moves_on(table_: Table, group: mail_batch.Group, **kwargs: Any) -> None:
        nonlocal ended
        if not ended:  # a retry of the whole job began while this batch ran
            ended = True
            table_.client.update_item(
                TableName=table_.name,
                Key={"PK": {"S": keys.org_pk(setup.org_id)}, "SK": {"S": keys.migration_sk(job_id)}},
                UpdateExpression="SET attempt = :next",
                ExpressionAttributeValues={":next": {"N": "2"}},
            )
        real(table_, group, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mail_batch, "store_group", attempt_moves_on)
        event = {"step": "import_batch", "state": state, "seq": 0}
        done = migration_import.import_batch(event, lambda: 10**9)
    assert done["counted"] is False
    job = store.get(table, setup.org_id, job_id)
    assert job is not None and int(job.get("imported_messages", 0)) == 0
    batch = store.get_batch(table, setup.org_id, job_id, 1, 0)
    assert batch is not None and batch["status"] == "pending" and len(batch["processed"]) == 6
    assert len(mailbox_messages(table, setup.org_id, setup.mailbox["id"])) == 6
