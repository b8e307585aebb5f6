"""Many messages of one mailbox in one transaction (an import batch's chunk; see store/mail.py for one).

The transaction holds what ``store.mail.store_message`` writes for each message, folded: every
message (conditional on not existing: a re-run after a crash finds the ones stored before and
stores each exactly once), each thread once (the sum of its messages' changes), the mailbox's
counters, the organization's storage and the month's usage once (sums), and the messages'
Message-ID entries. A message and its counts are written together or not at all.

Message-ID entries (``MSGID#<hash>`` in the mailbox's partition, one attribute per message
``m_<ulid>``: thread, content fingerprint, import source) answer, for a whole chunk in one
BatchGetItem, what the GSI1 Query per message answered: is this message here already, and which
thread does its parent belong to. Entries outlive a deleted message; readers confirm a hit against
the message item before relying on it for a duplicate (``get_many``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.mail import folders
from mailroom.store import keys, usage
from mailroom.store.mail import ThreadChange, _month, message_item, ulid_of
from mailroom.store.table import Item, Table
from mailroom.store.txn import MAX_OPERATIONS, Op, Update, put_new, run

ENTRY_PREFIX = "m_"
THREAD_PREFIX = "t_"
FIXED_OPERATIONS = 3  # the mailbox's counters, the organization's storage, the month's usage


@dataclass(slots=True)
class Entry:
    """One message under its Message-ID (or content digest) key."""

    message_id: str
    thread_id: str
    fingerprint: str
    source: str

    def value(self) -> dict[str, str]:
        return {"id": self.message_id, "thread": self.thread_id, "fp": self.fingerprint, "src": self.source}


def entries_of(item: Item | None) -> list[Entry]:
    """The entries of one ``MSGID#`` item."""
    found: list[Entry] = []
    for name, value in (item or {}).items():
        if name.startswith(ENTRY_PREFIX) and isinstance(value, dict):
            found.append(
                Entry(
                    str(value["id"]),
                    str(value["thread"]),
                    str(value.get("fp", "")),
                    str(value.get("src", "")),
                )
            )
    return found


def get_many(table: Table, org_id: str, mailbox_id: str, sort_keys: Iterable[str]) -> dict[str, Item]:
    """Items of the mailbox's partition by sort key (BatchGetItem, 100 keys per request), SK → item."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    return {item["SK"]: item for item in table.batch_get([(pk, sk) for sk in dict.fromkeys(sort_keys)])}


@dataclass(slots=True)
class Pending:
    """One message ready to be written: its record, how it changes its thread, its entry key."""

    message: Item
    thread: ThreadChange
    entry_key: str | None  # MSGID#<hash> (None: no entry, e.g. no Message-ID)
    entry: Entry | None = None


@dataclass(slots=True)
class Group:
    """Messages of one mailbox for one transaction, with the caller's own operations."""

    messages: list[Pending] = field(default_factory=list)
    also: list[Op] = field(default_factory=list)

    def operations_with(self, extra: Pending | None = None) -> int:
        chosen = [*self.messages, *([extra] if extra else [])]
        threads = {p.thread.thread_id for p in chosen}
        subjects = {p.thread.subject_key for p in chosen}
        entries = {p.entry_key for p in chosen if p.entry_key}
        return len(chosen) + len(threads) + len(subjects) + len(entries) + FIXED_OPERATIONS + len(self.also)

    def fits(self, extra: Pending, *, reserve: int) -> bool:
        return self.operations_with(extra) + reserve <= MAX_OPERATIONS


def latest_thread(item: Item | None) -> tuple[str, str] | None:
    """(thread id, last activity) of the latest thread in one ``SUBJECT#`` item."""
    found = [
        (str(at), f"thr_{name[len(THREAD_PREFIX) :]}")
        for name, at in (item or {}).items()
        if name.startswith(THREAD_PREFIX)
    ]
    if not found:
        return None
    at, thread_id = max(found)
    return thread_id, at


def _thread_op(org_id: str, mailbox_id: str, changes: Sequence[tuple[ThreadChange, int, bool]]) -> Op:
    """One thread's update for several messages: counts summed, sets joined, the latest message's
    activity, preview and id (as ``store.mail._thread_op`` does for one)."""
    first = changes[0][0]
    latest = max((c for c, _, _ in changes), key=lambda c: c.last_activity_at)
    created = any(c.created for c, _, _ in changes)
    update = Update(
        keys.mailbox_pk(org_id, mailbox_id), keys.thread_sk(ulid_of(first.thread_id)), upsert=created
    )
    if created:
        update.when("attribute_not_exists(PK)")
    update.set_if_absent(
        id=first.thread_id,
        org_id=org_id,
        mailbox_id=mailbox_id,
        type="thread",
        subject=first.subject,
        created_at=min(c.last_activity_at for c, _, _ in changes),
    )
    update.set(
        last_activity_at=latest.last_activity_at,
        last_message_id=latest.last_message_id,
        preview=latest.preview,
        GSI1PK=keys.subject_index_pk(org_id, mailbox_id, latest.subject_key),
        GSI1SK=latest.last_activity_at,
        GSI2PK=keys.threads_index_pk(org_id, mailbox_id),
        GSI2SK=f"{latest.last_activity_at}#{ulid_of(first.thread_id)}",
    )
    received = [c.received_at for c, _, _ in changes if c.received_at]
    sent = [c.sent_at for c, _, _ in changes if c.sent_at]
    if received:
        update.set(received_at=max(received))
    if sent:
        update.set(sent_at=max(sent))
    update.add(
        message_count=len(changes),
        size=sum(size for _, size, _ in changes),
        unread_count=sum(1 for _, _, unread in changes if unread),
    )
    update.add_to_set(
        senders=set().union(*(c.senders for c, _, _ in changes)),
        recipients=set().union(*(c.recipients for c, _, _ in changes)),
        labels=set().union(*(c.labels for c, _, _ in changes)),
    )
    return update.op(f"thread:{first.thread_id}")


def operations(
    group: Group, *, quota_bytes: int | None, meter: Mapping[str, int], org_id: str, mailbox_id: str
) -> list[Op]:
    """The group's transaction. ``meter``: usage counters per message (``messages_imported``: 1)."""
    ops: list[Op] = []
    threads: dict[str, list[tuple[ThreadChange, int, bool]]] = {}
    entries: dict[str, list[Entry]] = {}
    totals: dict[str, int] = {}
    size_sum = created_threads = 0
    for pending in group.messages:
        message = pending.message
        size = int(message["size"])
        unread = not message.get("flags", {}).get("seen", False)
        ops.append(put_new(f"message:{message['id']}", message_item(message)))
        threads.setdefault(pending.thread.thread_id, []).append((pending.thread, size, unread))
        if pending.entry_key and pending.entry:
            entries.setdefault(pending.entry_key, []).append(pending.entry)
        total_attr, unread_attr = folders.counter_attributes(message["folder_key"])
        totals[total_attr] = totals.get(total_attr, 0) + 1
        totals[unread_attr] = totals.get(unread_attr, 0) + (1 if unread else 0)
        size_sum += size
    subjects: dict[str, dict[str, str]] = {}
    for changes in threads.values():
        created_threads += 1 if any(c.created for c, _, _ in changes) else 0
        ops.append(_thread_op(org_id, mailbox_id, changes))
        latest = max((c for c, _, _ in changes), key=lambda c: c.last_activity_at)
        subjects.setdefault(latest.subject_key, {})[ulid_of(latest.thread_id)] = latest.last_activity_at
    pk = keys.mailbox_pk(org_id, mailbox_id)
    for subject_key, latest_by_thread in subjects.items():
        # The thread's last activity only grows while messages are added: no condition needed.
        update = Update(pk, keys.subject_entries_sk(subject_key), upsert=True).set_if_absent(
            type="subject_entries"
        )
        update.set(**{f"{THREAD_PREFIX}{ulid}": at for ulid, at in latest_by_thread.items()})
        ops.append(update.op(f"subject:{subject_key}"))
    for entry_key, listed in entries.items():
        update = Update(pk, entry_key, upsert=True).set_if_absent(type="message_id_entries")
        update.set(**{f"{ENTRY_PREFIX}{ulid_of(e.message_id)}": e.value() for e in listed})
        ops.append(update.op(f"entries:{entry_key}"))
    count = len(group.messages)
    counters = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
    counters.add(used_bytes=size_sum, message_count=count, thread_count=created_threads, **totals)
    if quota_bytes is not None and size_sum > 0:
        counters.at_most("used_bytes", quota_bytes - size_sum)
    ops.append(counters.op("mailbox"))
    ops.append(Update(keys.org_pk(org_id), keys.ORG_SK).add(storage_used_bytes=size_sum).op("org"))
    metered = {name: per_message * count for name, per_message in meter.items()}
    ops.append(usage.counter_op(org_id, _month(), stored_bytes_added=size_sum, **metered))
    return ops + group.also


def store_group(
    table: Table,
    group: Group,
    *,
    quota_bytes: int | None,
    meter: Mapping[str, int],
    org_id: str,
    mailbox_id: str,
) -> None:
    """Write the group in one transaction; ``Rejected`` names what failed: ``message:<id>`` (stored
    before), ``thread:<id>`` (created or dropped meanwhile), ``mailbox`` (quota, or the mailbox is
    gone), or a role of the caller's operations."""
    run(table, operations(group, quota_bytes=quota_bytes, meter=meter, org_id=org_id, mailbox_id=mailbox_id))


def entry_operations(org_id: str, mailbox_id: str, written: Sequence[Pending]) -> list[list[Op]]:
    """The Message-ID entries of messages stored one by one, in transactions of at most 100."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    grouped: dict[str, list[Entry]] = {}
    for pending in written:
        if pending.entry_key and pending.entry:
            grouped.setdefault(pending.entry_key, []).append(pending.entry)
    ops: list[Op] = []
    for entry_key, listed in grouped.items():
        update = Update(pk, entry_key, upsert=True).set_if_absent(type="message_id_entries")
        update.set(**{f"{ENTRY_PREFIX}{ulid_of(e.message_id)}": e.value() for e in listed})
        ops.append(update.op(f"entries:{entry_key}"))
    return [ops[i : i + MAX_OPERATIONS] for i in range(0, len(ops), MAX_OPERATIONS)]


def run_operations(table: Table, ops: Sequence[Op]) -> None:
    if ops:
        run(table, ops)


def item_bytes(message: Mapping[str, Any]) -> int:
    """About what the message item weighs on the wire (a transaction carries at most 4 MB)."""
    import json

    return len(json.dumps(message, default=str, separators=(",", ":")))
