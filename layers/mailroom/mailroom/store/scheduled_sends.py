"""Scheduled sends (``SCHEDSEND#<mailbox id>#<ulid>`` in the organization's partition; keys.py).

The item is the truth about a scheduled send; its EventBridge schedule is only the timer. Every
change of state is conditional on the state before, which is what makes the send happen at most
once and a cancel either win or lose cleanly:

* ``pending`` → ``sending`` (the firing's claim, ``claim``) → ``sent`` or ``failed``
* ``pending`` → ``cancelled`` (``cancel``)

Two firings of one schedule (Scheduler delivers at least once) or a firing racing a cancel: one
conditional update wins, the other finds the state changed and does nothing. A claim whose send
failed before anything went out (an AWS outage) is given back (``release``) for the retry.

The items live in the organization's partition, not the mailbox's: a mailbox deleted before the
time takes its mail with it, but the scheduled send stays to record why it failed. Items in a
final state expire ``RETENTION_DAYS`` after it (table TTL).
"""

from __future__ import annotations

from typing import Any

from mailroom import clock
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, values
from mailroom.store.txn import Update

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
STATES = (PENDING, SENDING, SENT, FAILED, CANCELLED)
RETENTION_DAYS = 30


def _key(org_id: str, mailbox_id: str, scheduled_id: str) -> tuple[str, str]:
    return keys.org_pk(org_id), keys.scheduled_send_sk(mailbox_id, scheduled_id)


def create(table: Table, item: Item) -> None:
    """Store a new pending scheduled send (``item`` has org_id, mailbox_id, id)."""
    pk, sk = _key(item["org_id"], item["mailbox_id"], item["id"])
    table.put(
        {**item, "PK": pk, "SK": sk, "type": "scheduled_send", "status": PENDING},
        condition="attribute_not_exists(PK)",
    )


def get(table: Table, org_id: str, mailbox_id: str, scheduled_id: str) -> Item | None:
    return table.get(*_key(org_id, mailbox_id, scheduled_id))


def list_page(
    table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None, status: str | None
) -> Page:
    """The mailbox's scheduled sends, newest first; ``status`` filters (after reading)."""
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=keys.scheduled_send_prefix(mailbox_id),
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
        filter_expression=(
            None if status is None else ("#status = :status", {"#status": "status"}, values(status=status))
        ),
    )


def _transition(item: Item, before: str, after: str, **fields: Any) -> Update:
    change = Update(*_key(item["org_id"], item["mailbox_id"], item["id"]))
    change.set(status=after, updated_at=clock.now_iso(), **fields)
    change.equals("status", before)
    return change


def _final(after: str, **fields: Any) -> dict[str, Any]:
    expires = int(clock.utcnow().timestamp()) + RETENTION_DAYS * 86400
    return {f"{after}_at": clock.now_iso(), "ttl": expires, **fields}


def claim(table: Table, item: Item, token: str) -> Item | None:
    """pending → sending, for the firing holding ``token``; None if it is not pending any more."""
    change = _transition(item, PENDING, SENDING, claim=token, claimed_at=clock.now_iso()).add(attempts=1)
    try:
        return change.apply(table)
    except ConditionFailed:
        return None


def release(table: Table, item: Item, token: str) -> None:
    """sending → pending again: the send failed before anything went out; the retry may claim it."""
    change = _transition(item, SENDING, PENDING).remove("claim", "claimed_at").equals("claim", token)
    try:
        change.apply(table)
    except ConditionFailed:  # not ours any more: nothing to give back
        return


def finish(table: Table, item: Item, token: str, outcome: str, **fields: Any) -> None:
    """sending → sent or failed, by the firing holding the claim."""
    _transition(item, SENDING, outcome, **_final(outcome, **fields)).equals("claim", token).apply(table)


def cancel(table: Table, item: Item) -> Item | None:
    """pending → cancelled; None if it is not pending any more (it fired, or was cancelled)."""
    try:
        return _transition(item, PENDING, CANCELLED, **_final(CANCELLED)).apply(table)
    except ConditionFailed:
        return None
