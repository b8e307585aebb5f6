"""Support tickets in the table (keys in ``store/keys.py``): a ticket and its first message, its
claim and its event in one transaction; each later message with the ticket's new state and its event
in one transaction; the operator's claims on the ids its side is given."""

from __future__ import annotations

import time
from typing import Any

from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, values
from mailroom.store.txn import Rejected, Update, delete, put_new, run

NONCE_TTL_SECONDS = 900  # longer than the replay window on either side of now
SOURCE_TTL_SECONDS = 30 * 86400  # as long as inbound receipts: SES redelivers within hours


class TicketClosed(Exception):
    """The ticket was closed (by then) and the change needs an open one."""


class AlreadyStored(Exception):
    """The message exists already (an emailed reply delivered twice)."""


class TooManyOpen(Exception):
    """The organization has as many open tickets as it may have."""


class StatusChanged(Exception):
    """The ticket was closed or reopened between the read and the write: read it again."""


def _open_count(org_id: str, delta: int, *, limit: int | None = None) -> Update:
    """The organization's count of tickets not closed (``open_ticket_count`` on its item)."""
    update = Update(keys.org_pk(org_id), keys.ORG_SK).add(open_ticket_count=delta)
    return update.at_most("open_ticket_count", limit - 1) if limit is not None else update


def _ulid(some_id: str) -> str:
    return some_id.partition("_")[2]


def ticket_item(ticket: dict[str, Any]) -> Item:
    ulid = _ulid(ticket["id"])
    return {
        "PK": keys.tickets_pk(ticket["org_id"]),
        "SK": ulid,
        "GSI1PK": keys.TICKETS_INDEX_PK,
        "GSI1SK": ulid,
        "type": "ticket",
        **ticket,
    }


def message_item(message: dict[str, Any]) -> Item:
    return {
        "PK": keys.ticket_messages_pk(message["org_id"], message["ticket_id"]),
        "SK": _ulid(message["id"]),
        "type": "ticket_message",
        **message,
    }


def _claim(ticket_id: str, org_id: str) -> Item:
    return {"PK": keys.ticket_claim_pk(ticket_id), "SK": keys.TICKET_CLAIM_SK, "org_id": org_id}


def _message_claim(message: Item) -> Item:
    return {
        "PK": keys.ticket_message_claim_pk(message["id"]),
        "SK": keys.TICKET_CLAIM_SK,
        "org_id": message["org_id"],
        "ticket_id": message["ticket_id"],
    }


def _source_marker(message: Item, source_id: str) -> Item:
    """Kept with the organization's inbound receipts, as long as they are."""
    return {
        "PK": keys.inbound_pk(message["org_id"]),
        "SK": keys.inbound_ticket_sk(source_id, message["ticket_id"]),
        "type": "inbound_ticket_reply",
        "message_id": message["id"],
        "ttl": int(time.time()) + SOURCE_TTL_SECONDS,
    }


def create(table: Table, ticket: Item, message: Item, event: Item, *, max_open: int) -> None:
    """The ticket, its first message, its claim, its ``ticket.created`` event and the organization's
    open count, or nothing (``TooManyOpen`` with ``max_open`` open already)."""
    try:
        run(
            table,
            [
                put_new("ticket", ticket),
                put_new("message", message),
                put_new("claim", _claim(ticket["id"], ticket["org_id"])),
                put_new("event", event),
                _open_count(ticket["org_id"], 1, limit=max_open).op("open_count"),
            ],
        )
    except Rejected as rejected:
        if "open_count" in rejected.roles:
            raise TooManyOpen from rejected
        raise


def add_message(
    table: Table,
    ticket: Item,
    message: Item,
    *,
    changes: dict[str, Any],
    event: Item,
    open_only: bool,
    source_id: str | None = None,
) -> None:
    """A message, the ticket's new state and the ``ticket.replied`` event, or nothing.
    ``open_only``: refused (``TicketClosed``) once the ticket is closed; otherwise a closed ticket
    is reopened (counted open again) and ``StatusChanged`` says the ticket is not as it was read.
    ``source_id``: the SES message id of an emailed message, recorded with it (``AlreadyStored``
    the second time)."""
    update = Update(ticket["PK"], ticket["SK"]).set(**changes).add(message_count=1)
    was_closed = ticket["status"] == "closed"
    if open_only or not was_closed:
        update.when(f"{update.name('status')} <> {update.value('closed')}")
    else:
        update.when(f"{update.name('status')} = {update.value('closed')}")
    operations = [put_new("message", message), update.op("ticket"), put_new("event", event)]
    if was_closed and not open_only:
        operations.append(_open_count(message["org_id"], 1).op("open_count"))
    if message["author"] == "operator":
        operations.append(put_new("message_claim", _message_claim(message)))
    if source_id is not None:
        operations.append(put_new("source", _source_marker(message, source_id)))
    try:
        run(table, operations)
    except Rejected as rejected:
        if "message" in rejected.roles or "source" in rejected.roles:
            raise AlreadyStored from rejected
        if "ticket" in rejected.roles:
            raise TicketClosed if open_only else StatusChanged from rejected
        raise


def close(table: Table, ticket: Item, *, changes: dict[str, Any], event: Item) -> None:
    update = Update(ticket["PK"], ticket["SK"]).set(**changes)
    update.when(f"{update.name('status')} <> {update.value('closed')}")
    count = _open_count(ticket["org_id"], -1)
    try:
        run(table, [update.op("ticket"), put_new("event", event), count.op("open_count")])
    except Rejected as rejected:
        if "ticket" in rejected.roles:
            raise TicketClosed from rejected
        raise


def get(table: Table, org_id: str, ticket_id: str) -> Item | None:
    ulid = _ulid(ticket_id)
    return table.get(keys.tickets_pk(org_id), ulid) if ulid else None


def org_of(table: Table, ticket_id: str) -> str | None:
    claim = table.get(keys.ticket_claim_pk(ticket_id), keys.TICKET_CLAIM_SK)
    return str(claim["org_id"]) if claim else None


def _status_filter(status: str | None) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    if status is None:
        return None
    return "#status = :status", {"#status": "status"}, values(status=status)


def list_page(
    table: Table, org_id: str, *, per_page: int, cursor: str | None, status: str | None = None
) -> Page:
    """The organization's tickets, newest first (a status filter pages forward only)."""
    return table.query_page(
        partition=keys.tickets_pk(org_id),
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
        filter_expression=_status_filter(status),
    )


def list_all(table: Table, *, per_page: int, cursor: str | None, status: str | None = None) -> Page:
    """Every organization's tickets, newest first: the operator's queue."""
    return table.query_page(
        partition=keys.TICKETS_INDEX_PK,
        index="GSI1",
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
        filter_expression=_status_filter(status),
    )


def messages_page(
    table: Table,
    org_id: str,
    ticket_id: str,
    *,
    per_page: int,
    cursor: str | None,
    newest_first: bool = False,
) -> Page:
    return table.query_page(
        partition=keys.ticket_messages_pk(org_id, ticket_id),
        per_page=per_page,
        cursor=cursor,
        newest_first=newest_first,
    )


def get_message(table: Table, org_id: str, ticket_id: str, message_id: str) -> Item | None:
    return table.get(keys.ticket_messages_pk(org_id, ticket_id), _ulid(message_id))


def operator_message_claim(table: Table, message_id: str) -> Item | None:
    return table.get(keys.ticket_message_claim_pk(message_id), keys.TICKET_CLAIM_SK)


def edit_message(table: Table, message: Item, *, body: str, edited_at: str) -> Item:
    """An operator message's new body; ConditionFailed when it is gone (deleted meanwhile)."""
    update = Update(message["PK"], message["SK"]).set(body=body, edited_at=edited_at)
    return update.equals("author", "operator").apply(table)


def delete_message(table: Table, ticket: Item, message: Item, *, updated_at: str) -> None:
    """An operator message, its claim, and its place in the ticket's count; Rejected when gone."""
    count = Update(ticket["PK"], ticket["SK"]).add(message_count=-1).set(updated_at=updated_at)
    run(
        table,
        [
            delete("message", message["PK"], message["SK"], condition="attribute_exists(PK)"),
            delete("claim", keys.ticket_message_claim_pk(message["id"]), keys.TICKET_CLAIM_SK),
            count.op("ticket"),
        ],
    )


def use_nonce(table: Table, signature: str, *, now: float | None = None) -> bool:
    """Record a signed request's signature; False when it was used before (a replay)."""
    expires = int(now if now is not None else time.time()) + NONCE_TTL_SECONDS
    try:
        table.put(
            {"PK": keys.support_nonce_pk(signature), "SK": "#SEEN", "ttl": expires},
            condition="attribute_not_exists(PK)",
        )
    except ConditionFailed:
        return False
    return True
