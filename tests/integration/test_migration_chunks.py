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
