"""Mailbox data documents (``DATA#<key>``) and their counters (``DATAMETA``), in the mailbox's own
partition: the mailbox purge removes them with its mail (keys.py).

A document item is ``{key, value (JSON text), bytes, version, updated_at}``; DATAMETA counts the
mailbox's documents and their bytes. Every write is one transaction: the document, conditioned on
the version the writer read (so two writers never lose one another's change and the counters move
exactly once), and DATAMETA, conditioned on the key limit when a key is added. Inbound writes
``store_data`` results with the same operations inside the transaction that stores the message
(``write_ops``); the API writes them alone (``write``), with a check that the mailbox still exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom import clock
from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, check, put, run
from mailroom.store.txn import delete as delete_op

META_ROLE = "data_meta"


class MailboxGone(Exception):
    """The mailbox was deleted meanwhile."""


class KeyLimitReached(Exception):
    """The mailbox holds its maximum number of documents already."""


class VersionChanged(Exception):
    """The document changed since it was read."""


def role(key: str) -> str:
    """The transaction role of the write of document ``key`` (``Rejected.roles`` names it)."""
    return f"data:{key}"


def item_key(org_id: str, mailbox_id: str, key: str) -> tuple[str, str]:
    return keys.mailbox_pk(org_id, mailbox_id), keys.mailbox_data_sk(key)


def meta_key(org_id: str, mailbox_id: str) -> tuple[str, str]:
    return keys.mailbox_pk(org_id, mailbox_id), keys.MAILBOX_DATA_META_SK


def get(table: Table, org_id: str, mailbox_id: str, key: str) -> Item | None:
    return table.get(*item_key(org_id, mailbox_id, key))


def meta(table: Table, org_id: str, mailbox_id: str) -> Item:
    return table.get(*meta_key(org_id, mailbox_id)) or {"keys": 0, "bytes": 0}


def page(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    """Documents in key order."""
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id),
        sk_prefix=keys.MAILBOX_DATA_PREFIX,
        per_page=per_page,
        cursor=cursor,
    )


@dataclass(frozen=True, slots=True)
class Write:
    """One document write: ``text`` None deletes it. ``current`` is the item as read (None: absent)."""

    key: str
    text: str | None
    current: Item | None

    @property
    def size(self) -> int:
        return len(self.text.encode()) if self.text is not None else 0

    @property
    def old_size(self) -> int:
        return int((self.current or {}).get("bytes", 0))


def _document_op(org_id: str, mailbox_id: str, write: Write, now: str) -> Op:
    pk, sk = item_key(org_id, mailbox_id, write.key)
    version = int((write.current or {}).get("version", 0))
    if write.text is None:
        return delete_op(role(write.key), pk, sk, condition="version = :version", version=version)
    item = {
        "PK": pk,
        "SK": sk,
        "type": "mailbox_data",
        "key": write.key,
        "value": write.text,
        "bytes": write.size,
        "version": version + 1,
        "updated_at": now,
    }
    op = put(role(write.key), item)
    body = op.body["Put"]
    if write.current is None:
        body["ConditionExpression"] = "attribute_not_exists(PK)"
    else:
        body["ConditionExpression"] = "version = :version"
        body["ExpressionAttributeValues"] = {":version": {"N": str(version)}}
    return op


def write_ops(org_id: str, mailbox_id: str, writes: list[Write], *, max_keys: int) -> list[Op]:
    """The operations of ``writes`` (each conditioned on the version read) and the counters' update
    (conditioned on ``max_keys`` when keys are added), for the caller's transaction."""
    if not writes:
        return []
    now = clock.now_iso()
    added = sum(1 for w in writes if w.current is None and w.text is not None)
    removed = sum(1 for w in writes if w.current is not None and w.text is None)
    delta = sum(w.size - w.old_size for w in writes)
    counters = Update(*meta_key(org_id, mailbox_id), upsert=True)
    counters.set(type="mailbox_data_meta").add(keys=added - removed, bytes=delta)
    if added > removed:
        counters.at_most("keys", max_keys - (added - removed))
    return [*(_document_op(org_id, mailbox_id, w, now) for w in writes), counters.op(META_ROLE)]


def write(table: Table, org_id: str, mailbox_id: str, change: Write, *, max_keys: int) -> None:
    """Write (or delete) one document alone. Raises MailboxGone, KeyLimitReached or VersionChanged;
    nothing is written then."""
    from mailroom.store.txn import Rejected

    mailbox = check("mailbox", keys.org_pk(org_id), keys.mailbox_sk(mailbox_id), "attribute_exists(PK)")
    try:
        run(table, [mailbox, *write_ops(org_id, mailbox_id, [change], max_keys=max_keys)])
    except Rejected as rejected:
        if "mailbox" in rejected.roles:
            raise MailboxGone(mailbox_id) from rejected
        if role(change.key) in rejected.roles:
            raise VersionChanged(change.key) from rejected
        if META_ROLE in rejected.roles:
            raise KeyLimitReached(mailbox_id) from rejected
        raise
