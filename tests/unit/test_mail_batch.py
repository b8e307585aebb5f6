"""store/mail_batch.py's transaction for a group of messages: what one message would write, folded."""

from __future__ import annotations

from typing import Any

from mailroom.store import mail_batch
from mailroom.store.mail import ThreadChange
from mailroom.store.mail_batch import Entry, Group, Pending
from mailroom.store.table import deserialize


def pending(
    n: int, thread: str, *, created: bool, seen: bool = False, at: str = "2025-01-06T10:00:00.000Z"
) -> Pending:
    message: dict[str, Any] = {
        "id": f"msg_01J00000000000000000000{n:03d}",
        "org_id": "org_1",
        "mailbox_id": "mbx_1",
        "thread_id": thread,
        "folder_key": "inbox",
        "size": 100 * n,
        "flags": {"seen": seen},
        "subject": "Topic",
    }
    change = ThreadChange(
        thread_id=thread,
        subject="Topic",
        subject_key="k",
        last_activity_at=at,
        preview=f"preview {n}",
        last_message_id=message["id"],
        senders={f"s{n}@example.net"},
        created=created,
    )
    entry = Entry(message["id"], thread, f"fp{n}", f"src{n}")
    return Pending(message, change, f"MSGID#h{n % 2}", entry)


def by_role(ops: list[Any]) -> dict[str, dict[str, Any]]:
    return {op.role: op.body for op in ops}


def test_one_transaction_writes_each_thread_and_counter_once_with_the_sums() -> None:
    group = Group(
        [
            pending(1, "thr_A", created=True),
            pending(2, "thr_A", created=False, seen=True, at="2025-01-07T10:00:00.000Z"),
            pending(3, "thr_B", created=False),
        ]
    )
    ops = mail_batch.operations(
        group, quota_bytes=10_000, meter={"messages_imported": 1}, org_id="org_1", mailbox_id="mbx_1"
    )
    roles = by_role(ops)
    # 3 messages, 2 threads, 1 subject, 2 Message-ID entry items, mailbox, org, usage.
    assert len(ops) == group.operations_with() == 11
    assert {r for r in roles if r.startswith("message:")} == {
        f"message:{p.message['id']}" for p in group.messages
    }

    thread_a = roles["thread:thr_A"]["Update"]
    values = {k: deserialize({"v": v})["v"] for k, v in thread_a["ExpressionAttributeValues"].items()}
    assert "attribute_not_exists(PK)" in thread_a["ConditionExpression"]  # created once, counted once
    # Two messages (300 bytes, one unread); the later one is the thread's latest.
    assert {2, 300, 1, "preview 2", "2025-01-07T10:00:00.000Z"} <= {
        v for v in values.values() if isinstance(v, int | str)
    }
    thread_b = roles["thread:thr_B"]["Update"]
    assert "attribute_exists(PK)" in thread_b["ConditionExpression"]

    mailbox = roles["mailbox"]["Update"]
    counts = {k: deserialize({"v": v})["v"] for k, v in mailbox["ExpressionAttributeValues"].items()}
    assert 600 in counts.values() and 3 in counts.values()  # bytes and messages summed
    assert 10_000 - 600 in counts.values()  # the quota checked for the group's bytes at once
    usage = roles["usage"]["Update"]
    metered = {k: deserialize({"v": v})["v"] for k, v in usage["ExpressionAttributeValues"].items()}
    assert sorted(v for v in metered.values() if isinstance(v, int)) == [3, 600]
    entries = roles["entries:MSGID#h1"]["Update"]
    assert len([n for n in entries["ExpressionAttributeNames"].values() if n.startswith("m_")]) == 2


def test_a_group_fits_one_transaction() -> None:
    group = Group()
    n = 0
    while group.fits(pending(n, f"thr_{n}", created=True), reserve=3):
        group.messages.append(pending(n, f"thr_{n}", created=True))
        n += 1
    assert group.operations_with() <= 97
    assert (
        len(mail_batch.operations(group, quota_bytes=None, meter={}, org_id="org_1", mailbox_id="mbx_1"))
        <= 97
    )


def test_entries_and_the_latest_thread_read_back() -> None:
    item = {
        "PK": "p",
        "SK": "MSGID#h",
        "m_01": {"id": "msg_01", "thread": "thr_9", "fp": "f", "src": "s"},
        "type": "message_id_entries",
    }
    assert mail_batch.entries_of(item) == [Entry("msg_01", "thr_9", "f", "s")]
    subjects = {"SK": "SUBJECT#k", "t_AAA": "2025-01-01T00:00:00.000Z", "t_BBB": "2025-02-01T00:00:00.000Z"}
    assert mail_batch.latest_thread(subjects) == ("thr_BBB", "2025-02-01T00:00:00.000Z")
    assert mail_batch.latest_thread(None) is None
