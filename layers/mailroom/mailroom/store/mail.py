"""Messages, threads and folders of a mailbox (partition ``ORG#<org>#MBX#<mailbox>``; see keys.py).

Storing a message is one transaction: the message (conditional on not existing, which makes
delivery idempotent for deterministic ids), its thread (created or updated), the mailbox's counters
(used bytes within its quota, the folder's total and unread, the number of threads), the
organization's storage, the month's usage counters (store/usage.py: metering costs no request of
its own), and the event that reports it. Either all of it happened or none of it did.

The mailbox's ``thread_count`` moves with thread items: +1 in the transaction that creates one
(conditioned on the thread not existing yet; an update of an existing thread is conditioned on it
existing, so a thread dropped between the caller's read and this write is created and counted
again), -1 in the transaction that drops an empty one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mailroom import clock
from mailroom.mail import folders
from mailroom.store import keys, usage
from mailroom.store.table import Item, Page, Table, deserialize, serialize, values
from mailroom.store.txn import Op, Rejected, Update, check, delete, put, put_new, run

MAX_LABELS = 50
REMOVE_BATCH = 40  # messages per removal transaction: 40 deletes + their threads + 3 counters <= 100
BATCH_GET_LIMIT = 100  # BatchGetItem's limit
SEARCH_FIELD_CHARS = 4096  # per search copy: thousands of recipients must not cost a 400 KB item


class Stored(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same message id was stored before (a redelivered event)
    OVER_QUOTA = "over_quota"
    NO_MAILBOX = "no_mailbox"
    DEFERRED = "deferred"  # handed to the caller's collector, written with others (an import batch)


@dataclass(slots=True)
class ThreadChange:
    """How a stored message changes its thread (computed by the caller from the current thread)."""

    thread_id: str  # "thr_<ulid>"
    subject: str
    subject_key: str
    last_activity_at: str
    preview: str
    last_message_id: str
    senders: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    received_at: str | None = None
    sent_at: str | None = None
    created: bool = False  # the caller found no thread item: this message starts it


def ulid_of(prefixed_id: str) -> str:
    return prefixed_id.partition("_")[2]


def message_key(org_id: str, mailbox_id: str, message_id: str) -> tuple[str, str]:
    return keys.mailbox_pk(org_id, mailbox_id), keys.message_sk(ulid_of(message_id))


def message_item(message: Item) -> Item:
    """A message record with its keys: base partition plus folder (GSI2), thread (GSI3) and
    RFC Message-ID (GSI1) index entries."""
    org_id, mailbox_id, ulid = message["org_id"], message["mailbox_id"], ulid_of(message["id"])
    item: Item = {
        **message,
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.message_sk(ulid),
        "type": "message",
        "GSI2PK": keys.folder_index_pk(org_id, mailbox_id, message["folder_key"]),
        "GSI2SK": ulid,
        "GSI3PK": keys.thread_index_pk(org_id, mailbox_id, message["thread_id"]),
        "GSI3SK": ulid,
    }
    if message.get("rfc_message_id_hash"):
        item["GSI1PK"] = keys.message_id_index_pk(org_id, mailbox_id, message["rfc_message_id_hash"])
        item["GSI1SK"] = keys.message_sk(ulid)
    item.update(search_fields(message))
    return item


def search_text(value: str) -> str:
    """How searchable text is stored and searched: DynamoDB's ``contains`` is case-sensitive, so
    both sides are case-folded."""
    return value.casefold()


def search_fields(message: Mapping[str, Any]) -> Item:
    """Case-folded copies of what the message filters search (subject, sender, recipients), kept on
    the item so a filter is one FilterExpression, not a read of every body. ``to`` covers To, Cc
    and Bcc, as webmail searches do. Each copy keeps its first SEARCH_FIELD_CHARS characters."""
    sender = [message.get("from"), message.get("from_address")]
    recipients = [*(message.get("to") or []), *(message.get("cc") or []), *(message.get("bcc") or [])]
    return {
        "subject_search": search_text(str(message.get("subject") or ""))[:SEARCH_FIELD_CHARS],
        "from_search": search_text("\n".join(str(v) for v in sender if v))[:SEARCH_FIELD_CHARS],
        "to_search": search_text("\n".join(str(v) for v in recipients if v))[:SEARCH_FIELD_CHARS],
    }


def _thread_op(org_id: str, mailbox_id: str, change: ThreadChange, *, size: int, unread: bool) -> Op:
    # Created: must not exist yet (it is counted once); updated: must still exist (or it is counted).
    update = Update(
        keys.mailbox_pk(org_id, mailbox_id), keys.thread_sk(ulid_of(change.thread_id)), upsert=change.created
    )
    if change.created:
        update.when("attribute_not_exists(PK)")
    update.set_if_absent(
        id=change.thread_id,
        org_id=org_id,
        mailbox_id=mailbox_id,
        type="thread",
        subject=change.subject,
        created_at=change.last_activity_at,
    )
    update.set(
        last_activity_at=change.last_activity_at,
        last_message_id=change.last_message_id,
        preview=change.preview,
        GSI1PK=keys.subject_index_pk(org_id, mailbox_id, change.subject_key),
        GSI1SK=change.last_activity_at,
        GSI2PK=keys.threads_index_pk(org_id, mailbox_id),
        GSI2SK=f"{change.last_activity_at}#{ulid_of(change.thread_id)}",
    )
    if change.received_at:
        update.set(received_at=change.received_at)
    if change.sent_at:
        update.set(sent_at=change.sent_at)
    update.add(message_count=1, size=size, unread_count=1 if unread else 0)
    update.add_to_set(senders=change.senders, recipients=change.recipients, labels=change.labels)
    return update.op("thread")


def _mailbox_counters(
    org_id: str,
    mailbox_id: str,
    *,
    folder_key: str,
    size: int,
    total: int,
    unread: int,
    quota_bytes: int | None,
    threads: int = 0,
) -> Update:
    total_attr, unread_attr = folders.counter_attributes(folder_key)
    update = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
    update.add(
        used_bytes=size,
        message_count=total,
        thread_count=threads,
        **{total_attr: total, unread_attr: unread},
    )
    if quota_bytes is not None and size > 0:
        update.at_most("used_bytes", quota_bytes - size)
    return update


def store_message(
    table: Table,
    message: Item,
    *,
    thread: ThreadChange,
    quota_bytes: int | None,
    event: Item | None,
    also: Sequence[Op] = (),
    meter: Mapping[str, int] | None = None,
) -> Stored:
    """Store one message in its mailbox (see the module docstring); never raises for the expected
    outcomes (duplicate, over quota, mailbox gone). ``also``: the caller's own operations, written in
    the same transaction (a failed condition of theirs raises Rejected with their role). ``meter``:
    usage counters this message moves besides its stored bytes (``messages_received``, ...)."""
    try:
        return _store(table, message, thread, quota_bytes=quota_bytes, event=event, also=also, meter=meter)
    except Rejected as rejected:
        if rejected.roles != ["thread"]:
            raise
    # The thread was dropped (or, never in practice, created) since the caller read it.
    changed = replace(thread, created=not thread.created)
    return _store(table, message, changed, quota_bytes=quota_bytes, event=event, also=also, meter=meter)


def _store(
    table: Table,
    message: Item,
    thread: ThreadChange,
    *,
    quota_bytes: int | None,
    event: Item | None,
    also: Sequence[Op] = (),
    meter: Mapping[str, int] | None = None,
) -> Stored:
    org_id, mailbox_id, size = message["org_id"], message["mailbox_id"], int(message["size"])
    unread = not message.get("flags", {}).get("seen", False)
    operations = [
        put_new("message", message_item(message)),
        _thread_op(org_id, mailbox_id, thread, size=size, unread=unread),
        _mailbox_counters(
            org_id,
            mailbox_id,
            folder_key=message["folder_key"],
            size=size,
            total=1,
            unread=1 if unread else 0,
            quota_bytes=quota_bytes,
            threads=1 if thread.created else 0,
        ).op("mailbox"),
        Update(keys.org_pk(org_id), keys.ORG_SK).add(storage_used_bytes=size).op("org"),
        # The month's usage moves with the storage it meters: no request of its own.
        usage.counter_op(org_id, _month(), stored_bytes_added=size, **(meter or {})),
    ]
    if event is not None:
        operations.append(put_new("event", event))
    operations += also
    try:
        run(table, operations)
    except Rejected as rejected:
        if "message" in rejected.roles:
            return Stored.DUPLICATE
        if "mailbox" in rejected.roles:
            exists = table.get(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)) is not None
            return Stored.OVER_QUOTA if exists else Stored.NO_MAILBOX
        raise
    return Stored.STORED


def get_message(table: Table, org_id: str, mailbox_id: str, message_id: str) -> Item | None:
    return table.get(*message_key(org_id, mailbox_id, message_id))


def get_messages(table: Table, org_id: str, mailbox_id: str, message_ids: Sequence[str]) -> dict[str, Item]:
    """Up to 100 messages by id in one BatchGetItem (strongly consistent), id → item; missing ids
    are absent. Keys DynamoDB leaves unprocessed (throttling) are asked again, a few times."""
    if len(message_ids) > BATCH_GET_LIMIT:
        raise ValueError(f"at most {BATCH_GET_LIMIT} messages per batch")
    wanted = []
    for message_id in message_ids:
        pk, sk = message_key(org_id, mailbox_id, message_id)
        wanted.append(serialize({"PK": pk, "SK": sk}))
    found: dict[str, Item] = {}
    request: dict[str, Any] = {table.name: {"Keys": wanted, "ConsistentRead": True}} if wanted else {}
    for attempt in range(5):
        if not request:
            break
        response = table.client.batch_get_item(RequestItems=request)
        for wire in response.get("Responses", {}).get(table.name, []):
            item = deserialize(wire)
            found[item["id"]] = item
        request = response.get("UnprocessedKeys") or {}
        if request:
            time.sleep(0.05 * 2**attempt)
    if request:
        raise RuntimeError("DynamoDB left keys unprocessed after retries")
    return found


def get_thread(table: Table, org_id: str, mailbox_id: str, thread_id: str) -> Item | None:
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.thread_sk(ulid_of(thread_id)))


def find_by_rfc_id(table: Table, org_id: str, mailbox_id: str, message_id_hash: str) -> Item | None:
    """The message of this mailbox with that RFC Message-ID, if stored (GSI1; eventually consistent)."""
    return table.query_one(
        partition=keys.message_id_index_pk(org_id, mailbox_id, message_id_hash), index="GSI1"
    )


def latest_thread_with_subject(table: Table, org_id: str, mailbox_id: str, subject_hash: str) -> Item | None:
    page = table.query_page(
        partition=keys.subject_index_pk(org_id, mailbox_id, subject_hash),
        index="GSI1",
        per_page=1,
        newest_first=True,
    )
    return page.items[0] if page.items else None


def list_messages(
    table: Table,
    org_id: str,
    mailbox_id: str,
    *,
    per_page: int,
    cursor: str | None,
    folder_key: str | None = None,
    thread_id: str | None = None,
    between: tuple[str, str] | None = None,
    newest_first: bool = True,
    filter_expression: tuple[str, dict[str, str], dict[str, Any]] | None = None,
) -> Page:
    """One page of a mailbox's messages: all of them, a folder's (GSI2) or a thread's (GSI3)."""
    if thread_id:
        partition, index, prefix = keys.thread_index_pk(org_id, mailbox_id, thread_id), "GSI3", None
    elif folder_key:
        partition, index, prefix = keys.folder_index_pk(org_id, mailbox_id, folder_key), "GSI2", None
    else:
        partition, index, prefix = keys.mailbox_pk(org_id, mailbox_id), None, "MSG#"
    if between is not None and index is None:
        between = (keys.message_sk(between[0]), keys.message_sk(between[1]))
    return table.query_page(
        partition=partition,
        index=index,
        per_page=per_page,
        cursor=cursor,
        sk_prefix=None if between else prefix,
        sk_between=between,
        newest_first=newest_first,
        filter_expression=filter_expression,
    )


def messages_window(table: Table, org_id: str, mailbox_id: str, *, offset: int, limit: int) -> list[Item]:
    """Messages ``offset`` to ``offset + limit`` of the mailbox (every folder), newest first: the
    base partition's ``MSG#`` range in reverse (numbered pages; costs in ``Table.query_window``)."""
    return table.query_window(
        partition=keys.mailbox_pk(org_id, mailbox_id),
        sk_prefix="MSG#",
        offset=offset,
        limit=limit,
        newest_first=True,
    )


def threads_window(table: Table, org_id: str, mailbox_id: str, *, offset: int, limit: int) -> list[Item]:
    """Threads ``offset`` to ``offset + limit`` by latest activity, newest first (GSI2)."""
    return table.query_window(
        partition=keys.threads_index_pk(org_id, mailbox_id),
        index="GSI2",
        offset=offset,
        limit=limit,
        newest_first=True,
    )


def list_threads(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    """Threads by latest activity, newest first (GSI2)."""
    return table.query_page(
        partition=keys.threads_index_pk(org_id, mailbox_id),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


def change_message(
    table: Table,
    message: Item,
    *,
    seen: bool | None = None,
    flagged: bool | None = None,
    labels: list[str] | None = None,
    folder_key: str | None = None,
    set_fields: Mapping[str, Any] | None = None,
) -> Item:
    """Change flags, labels or folder, moving the folder counters and the thread's unread count with
    them in the same transaction. Returns the message as stored afterwards.

    ``set_fields``: other top-level attributes to set in the same write (e.g. ``verdicts``). A move
    into a custom folder also checks that the folder still exists (role ``folder``), so a message
    cannot land in a folder deleted meanwhile."""
    org_id, mailbox_id = message["org_id"], message["mailbox_id"]
    flags = dict(message.get("flags") or {})
    was_seen = bool(flags.get("seen", False))
    if seen is not None:
        flags["seen"] = seen
    if flagged is not None:
        flags["flagged"] = flagged
    was_unread, now_unread = not was_seen, not flags.get("seen", False)
    old_key, new_key = message["folder_key"], folder_key or message["folder_key"]
    changed: Item = {**message, **(set_fields or {}), "flags": flags, "folder_key": new_key}
    if labels is not None:
        changed["labels"] = labels
    old_total, old_unread = folders.counter_attributes(old_key)
    new_total, new_unread = folders.counter_attributes(new_key)
    moves: dict[str, int] = {}
    if old_key != new_key:
        moves[old_total], moves[new_total] = -1, 1
    if was_unread:
        moves[old_unread] = moves.get(old_unread, 0) - 1
    if now_unread:
        moves[new_unread] = moves.get(new_unread, 0) + 1
    message_update = Update(*message_key(org_id, mailbox_id, message["id"]))
    # Optimistic: the message must still be as it was read, or the counters would drift.
    message_update.equals("folder_key", old_key).equals("flags.seen", was_seen)
    message_update.set(
        flags=flags, folder_key=new_key, GSI2PK=keys.folder_index_pk(org_id, mailbox_id, new_key)
    )
    if labels is not None:
        message_update.set(labels=labels)
    if set_fields:
        message_update.set(**set_fields)
    operations = [message_update.op("message")]
    if old_key != new_key and not folders.is_system_key(new_key):
        pk = keys.mailbox_pk(org_id, mailbox_id)
        operations.append(check("folder", pk, keys.folder_sk(new_key), "attribute_exists(PK)"))
    if any(moves.values()):
        counters = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
        operations.append(counters.add(**{k: v for k, v in moves.items() if v}).op("mailbox"))
    unread_delta = int(now_unread) - int(was_unread)
    # A thread's labels are those its messages carry or carried: a label added to a message is
    # added to its thread (removing one from a message leaves the thread's set as it is).
    added_labels = set(labels or []) - set(message.get("labels") or [])
    if unread_delta or added_labels:
        thread = Update(keys.mailbox_pk(org_id, mailbox_id), keys.thread_sk(ulid_of(message["thread_id"])))
        thread.add(unread_count=unread_delta).add_to_set(labels=added_labels)
        operations.append(thread.op("thread"))
    run(table, operations)
    return changed


def remove_message(table: Table, message: Item) -> None:
    """Delete a message for good, with its counters (mailbox, folder, thread, organization)."""
    org_id, mailbox_id, size = message["org_id"], message["mailbox_id"], int(message["size"])
    unread = not message.get("flags", {}).get("seen", False)
    total_attr, unread_attr = folders.counter_attributes(message["folder_key"])
    pk, sk = message_key(org_id, mailbox_id, message["id"])
    thread = Update(keys.mailbox_pk(org_id, mailbox_id), keys.thread_sk(ulid_of(message["thread_id"])))
    thread.add(message_count=-1, size=-size, unread_count=-1 if unread else 0)
    run(
        table,
        [
            delete(
                "message",
                pk,
                sk,
                condition="attribute_exists(PK) AND folder_key = :folder",
                folder=message["folder_key"],
            ),
            Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
            .add(used_bytes=-size, message_count=-1, **{total_attr: -1, unread_attr: -1 if unread else 0})
            .op("mailbox"),
            thread.op("thread"),
            Update(keys.org_pk(org_id), keys.ORG_SK).add(storage_used_bytes=-size).op("org"),
            usage.counter_op(org_id, _month(), stored_bytes_removed=size),
        ],
    )


def _removal_operations(messages: Sequence[Item]) -> list[Op]:
    """One transaction removing messages of one mailbox: each delete is conditioned on the message
    being as it was read (folder and seen flag: the counters it moves depend on both), and the
    counters of the mailbox, its folders, the threads and the organization move by the sums."""
    org_id, mailbox_id = messages[0]["org_id"], messages[0]["mailbox_id"]
    pk = keys.mailbox_pk(org_id, mailbox_id)
    operations: list[Op] = []
    mailbox_deltas: dict[str, int] = defaultdict(int)
    thread_deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total_size = 0
    for message in messages:
        if (message["org_id"], message["mailbox_id"]) != (org_id, mailbox_id):
            raise ValueError("messages of one mailbox per removal")
        size = int(message["size"])
        seen = bool((message.get("flags") or {}).get("seen", False))
        total_size += size
        operations.append(
            Op(
                f"message:{message['id']}",
                {
                    "Delete": {
                        "Key": serialize({"PK": pk, "SK": keys.message_sk(ulid_of(message["id"]))}),
                        "ConditionExpression": "attribute_exists(PK) AND folder_key = :folder "
                        "AND #flags.#seen = :seen",
                        "ExpressionAttributeNames": {"#flags": "flags", "#seen": "seen"},
                        "ExpressionAttributeValues": values(folder=message["folder_key"], seen=seen),
                    }
                },
            )
        )
        total_attr, unread_attr = folders.counter_attributes(message["folder_key"])
        mailbox_deltas[total_attr] -= 1
        mailbox_deltas[unread_attr] -= 0 if seen else 1
        thread = thread_deltas[message["thread_id"]]
        thread["message_count"] -= 1
        thread["size"] -= size
        thread["unread_count"] -= 0 if seen else 1
    for thread_id, deltas in thread_deltas.items():
        # Upsert: a thread item that went missing must not make its messages undeletable (an
        # item created this way has a count <= 0 and is dropped right after, with the empty ones).
        update = Update(pk, keys.thread_sk(ulid_of(thread_id)), upsert=True).add(**deltas)
        operations.append(update.op(f"thread:{thread_id}"))
    counters = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
    counters.add(used_bytes=-total_size, message_count=-len(messages), **mailbox_deltas)
    operations.append(counters.op("mailbox"))
    operations.append(Update(keys.org_pk(org_id), keys.ORG_SK).add(storage_used_bytes=-total_size).op("org"))
    operations.append(usage.counter_op(org_id, _month(), stored_bytes_removed=total_size))
    return operations


def _month() -> str:
    """The usage month (UTC) work done now is counted in."""
    return clock.utcnow().strftime("%Y-%m")


def remove_messages(table: Table, messages: Sequence[Item]) -> list[Item]:
    """Delete messages of one mailbox for good, ``REMOVE_BATCH`` per transaction, with their
    counters; threads left without messages are deleted too. A message changed or removed since it
    was read is re-read: removed only if still in the folder it was read in. Returns the removed
    messages (as they were when removed). The caller deletes their S3 objects."""
    removed: list[Item] = []
    for start in range(0, len(messages), REMOVE_BATCH):
        chunk = list(messages[start : start + REMOVE_BATCH])
        try:
            run(table, _removal_operations(chunk))
            removed.extend(chunk)
            continue
        except Rejected:
            pass
        # One of them changed meanwhile (moved, flagged seen, removed): one by one, as they are now.
        for message in chunk:
            fresh = get_message(table, message["org_id"], message["mailbox_id"], message["id"])
            if fresh is None or fresh["folder_key"] != message["folder_key"]:
                continue
            try:
                run(table, _removal_operations([fresh]))
            except Rejected:
                continue
            removed.append(fresh)
    drop_empty_threads(table, removed)
    return removed


def _drop_thread(pk: str, sk: str, *, has_id: bool) -> Op:
    """Delete an empty thread item: with ``has_id``, a real thread; otherwise only an id-less stub."""
    exists = "attribute_exists(#id)" if has_id else "attribute_not_exists(#id)"
    return Op(
        "thread",
        {
            "Delete": {
                "Key": serialize({"PK": pk, "SK": sk}),
                "ConditionExpression": f"attribute_exists(PK) AND message_count <= :zero AND {exists}",
                "ExpressionAttributeNames": {"#id": "id"},
                "ExpressionAttributeValues": values(zero=0),
            }
        },
    )


def drop_empty_threads(table: Table, messages: Iterable[Item]) -> None:
    """Delete the threads of these messages that have no message left (a conditional delete each:
    a thread that received a message meanwhile stays), counting each off the mailbox's
    ``thread_count`` in the same transaction. A stub ``_removal_operations`` left for a thread that
    had already gone (no ``id``: never a thread, never counted) is deleted uncounted."""
    done: set[tuple[str, str, str]] = set()
    for message in messages:
        thread = (message["org_id"], message["mailbox_id"], message["thread_id"])
        if thread in done:
            continue
        done.add(thread)
        pk, sk = keys.mailbox_pk(thread[0], thread[1]), keys.thread_sk(ulid_of(thread[2]))
        counter = Update(keys.org_pk(thread[0]), keys.mailbox_sk(thread[1])).add(thread_count=-1)
        try:
            run(table, [_drop_thread(pk, sk, has_id=True), counter.op("mailbox")])
            continue
        except Rejected:
            pass  # not empty, already gone, a stub, or the mailbox itself is gone (being purged)
        try:
            run(table, [_drop_thread(pk, sk, has_id=False)])
        except Rejected:
            continue


def folder_counts(mailbox: Item, folder_key: str) -> dict[str, int]:
    total_attr, unread_attr = folders.counter_attributes(folder_key)
    return {"total": int(mailbox.get(total_attr, 0)), "unread": int(mailbox.get(unread_attr, 0))}


def custom_folders(table: Table, org_id: str, mailbox_id: str) -> list[Item]:
    """The mailbox's custom folders (one Query: at most MAX_CUSTOM_FOLDERS exist)."""
    page = table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id),
        sk_prefix="FOLDER#",
        per_page=folders.MAX_CUSTOM_FOLDERS,
    )
    return page.items


def folder_paths(table: Table, org_id: str, mailbox_id: str) -> dict[str, str]:
    """Every folder of the mailbox, key → path (system folders first)."""
    paths = dict(folders.SYSTEM_KEYS)
    paths.update({f["key"]: f["path"] for f in custom_folders(table, org_id, mailbox_id)})
    return paths


def get_folder(table: Table, org_id: str, mailbox_id: str, key: str) -> Item | None:
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.folder_sk(key))


def folder_by_path(table: Table, org_id: str, mailbox_id: str, path: str) -> Item | None:
    """The custom folder with exactly this path (its path claim: one GetItem), or None."""
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.folder_path_sk(path))


def _path_claim(org_id: str, mailbox_id: str, *, key: str, path: str, created_at: str) -> Item:
    return {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.folder_path_sk(path),
        "type": "folder_path",
        "key": key,
        "path": path,
        "created_at": created_at,
    }


def create_folder(
    table: Table, org_id: str, mailbox_id: str, *, key: str, path: str, created_at: str
) -> Item:
    """Create a custom folder. One transaction: the folder, its path claim (role ``path``: the path
    is taken) and the mailbox's folder count (role ``mailbox``: MAX_CUSTOM_FOLDERS reached, or the
    mailbox is gone)."""
    item = {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.folder_sk(key),
        "type": "folder",
        "key": key,
        "path": path,
        "created_at": created_at,
    }
    count = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(custom_folder_count=1)
    count.at_most("custom_folder_count", folders.MAX_CUSTOM_FOLDERS - 1)
    run(
        table,
        [
            put_new("folder", item),
            put_new("path", _path_claim(org_id, mailbox_id, key=key, path=path, created_at=created_at)),
            count.op("mailbox"),
        ],
    )
    return item


def rename_folder(
    table: Table, org_id: str, mailbox_id: str, key: str, path: str, *, old_path: str | None = None
) -> Item:
    """Give a custom folder a new path (its messages keep its key, so nothing else changes). The old
    path claim goes, the new one is taken (role ``path``); the folder must still have the path it
    was read with (role ``folder``). Returns the folder as renamed."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    current = get_folder(table, org_id, mailbox_id, key)
    if current is None or (old_path is not None and current["path"] != old_path):
        raise Rejected(["folder"])
    folder = Update(pk, keys.folder_sk(key)).set(path=path).equals("path", current["path"])
    claim = _path_claim(org_id, mailbox_id, key=key, path=path, created_at=current.get("created_at", ""))
    run(
        table,
        [
            folder.op("folder"),
            delete("old_path", pk, keys.folder_path_sk(current["path"])),
            put_new("path", claim),
        ],
    )
    return {**current, "path": path}


def delete_folder(
    table: Table, org_id: str, mailbox_id: str, key: str, *, require_empty: bool = False
) -> None:
    """Delete a custom folder with its path claim. ``require_empty``: only if no message is in it
    (role ``mailbox``: its maintained total is not 0), checked in the same transaction, so a message
    moved in concurrently either lands before (and the delete is refused) or is refused itself."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    current = get_folder(table, org_id, mailbox_id, key)
    if current is None:
        raise Rejected(["folder"])
    count = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(custom_folder_count=-1)
    if require_empty:
        total_attr, _ = folders.counter_attributes(key)
        ref = count.name(total_attr)
        count.when(f"(attribute_not_exists({ref}) OR {ref} = {count.value(0)})")
    run(
        table,
        [
            Op(
                "folder",
                {
                    "Delete": {  # PATH is a DynamoDB reserved word: the condition names it by placeholder
                        "Key": serialize({"PK": pk, "SK": keys.folder_sk(key)}),
                        "ConditionExpression": "#path = :path",
                        "ExpressionAttributeNames": {"#path": "path"},
                        "ExpressionAttributeValues": values(path=current["path"]),
                    }
                },
            ),
            delete("path", pk, keys.folder_path_sk(current["path"])),
            count.op("mailbox"),
        ],
    )


def quarantine(table: Table, item: Item) -> None:
    """Record a quarantined message (kept in S3, in no folder)."""
    record = {
        **item,
        "PK": keys.mailbox_pk(item["org_id"], item.get("mailbox_id") or "_"),
        "SK": keys.quarantine_sk(ulid_of(item["id"])),
        "type": "quarantined",
    }
    run(table, [put("quarantined", record)])
