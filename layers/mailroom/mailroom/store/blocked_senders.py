"""Senders a mailbox refuses: exact addresses or whole domains (``@example.org``).

Items live in the mailbox partition (``SK=BLOCK#<address or @domain>``) so the mailbox purge removes
them. ``is_blocked`` is a single BatchGetItem of the two possible keys, on the inbound hot path.
They are counted on the mailbox item (``blocked_sender_count``), in the transaction that adds or
removes one, so ``MAX_PER_MAILBOX`` holds under concurrency and lists show a maintained total.
"""

from __future__ import annotations

from typing import Any

from mailroom import clock, ids
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, serialize
from mailroom.store.txn import Rejected, Update, delete, put_new, run

MAX_PER_MAILBOX = 1000


class LimitReached(Exception):
    """The mailbox already blocks MAX_PER_MAILBOX senders."""


def block_sk(pattern: str) -> str:
    return f"BLOCK#{pattern.lower()}"


def is_blocked(table: Table, org_id: str, mailbox_id: str, sender: str | None) -> bool:
    if not sender or "@" not in sender:
        return False
    sender = sender.lower()
    pk = keys.mailbox_pk(org_id, mailbox_id)
    candidates = [block_sk(sender), block_sk("@" + sender.rpartition("@")[2])]
    response = table.client.batch_get_item(
        RequestItems={
            table.name: {
                "Keys": [serialize({"PK": pk, "SK": sk}) for sk in candidates],
                "ProjectionExpression": "SK",
            }
        }
    )
    return bool(response.get("Responses", {}).get(table.name))


def any_blocked(table: Table, org_id: str, mailbox_id: str, senders: list[str | None]) -> bool:
    """``is_blocked`` for several senders at once (the envelope sender and the From address of one
    message): one BatchGetItem of every candidate key."""
    candidates: dict[str, None] = {}
    for sender in senders:
        if sender and "@" in sender:
            lowered = sender.lower()
            candidates[block_sk(lowered)] = None
            candidates[block_sk("@" + lowered.rpartition("@")[2])] = None
    if not candidates:
        return False
    pk = keys.mailbox_pk(org_id, mailbox_id)
    request: dict[str, Any] = {
        table.name: {
            "Keys": [serialize({"PK": pk, "SK": sk}) for sk in candidates],
            "ProjectionExpression": "SK",
        }
    }
    for _attempt in range(5):
        response = table.client.batch_get_item(RequestItems=request)
        if response.get("Responses", {}).get(table.name):
            return True
        # Keys DynamoDB did not get to (throttling) are asked again: an unread key is not "not blocked".
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return False
    raise RuntimeError("blocked senders: DynamoDB left keys unprocessed after 5 attempts")


def add(table: Table, org_id: str, mailbox_id: str, pattern: str) -> Item:
    item: Item = {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": block_sk(pattern),
        "type": "blocked_sender",
        "id": ids.new_id("blk"),
        "pattern": pattern.lower(),
        "created_at": clock.now_iso(),
    }
    count = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(blocked_sender_count=1)
    count.at_most("blocked_sender_count", MAX_PER_MAILBOX - 1)
    try:
        run(table, [put_new("block", item), count.op("mailbox")])
    except Rejected as rejected:
        if "block" in rejected.roles:
            raise ConditionFailed(f"{pattern} is already blocked") from rejected
        raise LimitReached(f"at most {MAX_PER_MAILBOX} blocked senders per mailbox") from rejected
    return item


def list_page(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id), sk_prefix="BLOCK#", per_page=per_page, cursor=cursor
    )


def remove(table: Table, org_id: str, mailbox_id: str, pattern: str) -> bool:
    pk = keys.mailbox_pk(org_id, mailbox_id)
    count = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(blocked_sender_count=-1)
    try:
        run(
            table,
            [delete("block", pk, block_sk(pattern), condition="attribute_exists(PK)"), count.op("mailbox")],
        )
    except Rejected as rejected:
        if "block" in rejected.roles:
            return False
        raise
    return True
