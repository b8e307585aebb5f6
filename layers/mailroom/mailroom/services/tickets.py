"""Support tickets: an organization's threads with the platform operator (docs/tickets.md).

The organization writes through the API (``/api/v1/tickets``); each of its messages is emailed to the
operator's support address (``MAILROOM_SUPPORT_ADDRESS``) from the ticket's own reply address, so the
operator answers from any mail client and the answer comes back through the inbound path
(services/ticket_mail.py sends, services/ticket_inbound.py receives). The operator may also answer
with ``mailroom admin tickets reply`` or through the HMAC-signed support API (api/routers/support.py,
services/support_auth.py). Every change is one transaction with
its event (``ticket.created``, ``ticket.replied``, ``ticket.closed``), which the event fan-out
delivers to webhooks, EventBridge and WebSocket subscribers like any other.

A message is emailed before it is stored: a ticket exists only once the operator has been told of
it, and a failed send leaves nothing behind for the client to be confused by (it retries with the
same Idempotency-Key). A store failure after a send means the retry emails again; the operator's
mail client sees the same subject and thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import clock, ids
from mailroom.domain import tickets as rules
from mailroom.errors import Conflict, Invalid, LimitReached, MailroomError, concurrent_update, not_found
from mailroom.mail.header_text import ComposeError, check_body_text, check_header_text
from mailroom.observability import logger
from mailroom.services import ticket_mail
from mailroom.store import events, organizations
from mailroom.store import tickets as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Rejected

STATUS_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Author:
    """Who wrote a message, and how it arrived."""

    kind: str  # rules.ORGANIZATION or rules.OPERATOR
    via: str  # rules.VIAS
    name: str | None = None  # the token's name, the operator's name or address
    token_id: str | None = None


def ticket_view(ticket: Item) -> dict[str, Any]:
    return {
        "id": ticket["id"],
        "subject": ticket["subject"],
        "status": ticket["status"],
        "message_count": int(ticket.get("message_count") or 0),
        "last_message_at": ticket.get("last_message_at"),
        "last_author": ticket.get("last_author"),
        "created_by": ticket.get("created_by"),
        "created_at": ticket["created_at"],
        "updated_at": ticket["updated_at"],
        "closed_at": ticket.get("closed_at"),
        "closed_by": ticket.get("closed_by"),
    }


def message_view(message: Item) -> dict[str, Any]:
    return {
        "id": message["id"],
        "ticket_id": message["ticket_id"],
        "author": message["author"],
        "author_name": message.get("author_name"),
        "via": message["via"],
        "body": message["body"],
        "emailed": bool(message.get("email_message_id")) and message["author"] == rules.ORGANIZATION,
        "created_at": message["created_at"],
        "edited_at": message.get("edited_at"),
    }


def _event(ticket: Item, event_type: str, message: Item | None = None) -> Item:
    data: dict[str, Any] = {"ticket": ticket_view(ticket)}
    if message is not None:
        data["message"] = message_view(message)
    return events.new_event(str(ticket["org_id"]), event_type, data)


def checked(*, subject: str | None = None, body: str | None = None) -> None:
    """What an email can carry: a subject is a header (no line breaks, control characters or
    unpaired surrogates), a body text (no unpaired surrogates); 422 naming the field otherwise."""
    try:
        if subject is not None:
            check_header_text("subject", subject)
        if body is not None:
            check_body_text("body", body)
    except ComposeError as exc:
        raise Invalid(exc.code, exc.message, fields=[{"field": exc.field, "message": exc.message}]) from None


def _too_many_open() -> MailroomError:
    return LimitReached(
        "ticket_limit_reached",
        f"The organization has {rules.MAX_OPEN_TICKETS} open tickets, as many as it may have.",
        hint="Close the tickets that are solved (POST /api/v1/tickets/{id}:close), or add to an open one.",
    )


def _closed(ticket: Item) -> MailroomError:
    return Conflict(
        "ticket_closed",
        f"Ticket {ticket['id']} is closed.",
        hint="Open a new ticket (POST /api/v1/tickets) and mention this one.",
    )


# ----------------------------------------------------------------------------- reading


def load(table: Table, org_id: str, ticket_id: str) -> Item:
    """The organization's ticket; another organization's is not found."""
    ticket = store.get(table, org_id, ticket_id) if ids.is_id(ticket_id, "tkt") else None
    if ticket is None:
        raise not_found("ticket")
    return ticket


def load_any(table: Table, ticket_id: str) -> Item:
    """Any organization's ticket, by its id alone: the operator's side (CLI, support API)."""
    org_id = store.org_of(table, ticket_id) if ids.is_id(ticket_id, "tkt") else None
    if org_id is None:
        raise not_found("ticket")
    return load(table, org_id, ticket_id)


def list_tickets(
    table: Table, org_id: str | None, *, per_page: int, cursor: str | None, status: str | None = None
) -> Page:
    """One organization's tickets, or (``org_id`` None, the operator) every organization's."""
    if org_id is None:
        return store.list_all(table, per_page=per_page, cursor=cursor, status=status)
    return store.list_page(table, org_id, per_page=per_page, cursor=cursor, status=status)


def list_messages(table: Table, ticket: Item, *, per_page: int, cursor: str | None) -> Page:
    """The ticket's messages, oldest first."""
    return store.messages_page(
        table, str(ticket["org_id"]), str(ticket["id"]), per_page=per_page, cursor=cursor
    )


def _thread_ids(table: Table, ticket: Item) -> list[str]:
    """The Message-IDs of the ticket's emails, oldest first (the last twenty: References' bound)."""
    page = store.messages_page(
        table,
        str(ticket["org_id"]),
        str(ticket["id"]),
        per_page=rules.MAX_REFERENCES,
        cursor=None,
        newest_first=True,
    )
    return [str(m["email_message_id"]) for m in reversed(page.items) if m.get("email_message_id")]


# ----------------------------------------------------------------------------- the organization


def _message(ticket_id: str, org_id: str, body: str, author: Author, now: str, **extra: Any) -> Item:
    message = {
        "id": ids.new_id("tkm"),
        "ticket_id": ticket_id,
        "org_id": org_id,
        "author": author.kind,
        "author_name": author.name,
        "via": author.via,
        "body": body,
        "created_at": now,
        **{k: v for k, v in extra.items() if v is not None},
    }
    if author.token_id:
        message["token_id"] = author.token_id
    return store.message_item(message)


def create_ticket(table: Table, org_id: str, *, subject: str, body: str, author: Author) -> tuple[Item, Item]:
    """Open a ticket with its first message, emailed to the operator; (ticket, message)."""
    checked(subject=subject, body=body)
    organization = organizations.get(table, org_id) or {}
    now = clock.now_iso()
    ticket_id = ids.new_id("tkt")
    token = rules.new_reply_token()
    ticket = store.ticket_item(
        {
            "id": ticket_id,
            "org_id": org_id,
            "subject": subject,
            "status": rules.OPEN,
            "reply_token": token,
            "message_count": 1,
            "last_message_at": now,
            "last_author": rules.ORGANIZATION,
            "created_by": {"token_id": author.token_id, "name": author.name},
            "created_at": now,
            "updated_at": now,
        }
    )
    message = _message(ticket_id, org_id, body, author, now)
    if int(organization.get("open_ticket_count") or 0) >= rules.MAX_OPEN_TICKETS:
        raise _too_many_open()  # before emailing: the write would refuse it anyway
    message["email_message_id"] = ticket_mail.email_operator(
        ticket, message, organization=organization, thread=[]
    )
    try:
        store.create(
            table, ticket, message, _event(ticket, "ticket.created", message), max_open=rules.MAX_OPEN_TICKETS
        )
    except store.TooManyOpen:
        raise _too_many_open() from None
    return ticket, message


def reply(table: Table, ticket: Item, *, body: str, author: Author) -> Item:
    """The organization adds a message (emailed to the operator); the ticket is open again."""
    checked(body=body)
    if ticket["status"] == rules.CLOSED:
        raise _closed(ticket)
    organization = organizations.get(table, str(ticket["org_id"])) or {}
    now = clock.now_iso()
    message = _message(str(ticket["id"]), str(ticket["org_id"]), body, author, now)
    message["email_message_id"] = ticket_mail.email_operator(
        ticket, message, organization=organization, thread=_thread_ids(table, ticket)
    )
    changes = {"status": rules.OPEN, "last_message_at": now, "last_author": author.kind, "updated_at": now}
    updated = {**ticket, **changes, "message_count": int(ticket.get("message_count") or 0) + 1}
    try:
        store.add_message(
            table,
            ticket,
            message,
            changes=changes,
            event=_event(updated, "ticket.replied", message),
            open_only=True,
        )
    except store.TicketClosed:
        raise _closed(ticket) from None
    return message


def close(table: Table, ticket: Item, *, by: str) -> Item:
    """Close the ticket (``by``: organization or operator); 409 ticket_closed when it is already."""
    if ticket["status"] == rules.CLOSED:
        raise _closed(ticket)
    now = clock.now_iso()
    changes = {"status": rules.CLOSED, "closed_at": now, "closed_by": by, "updated_at": now}
    updated = {**ticket, **changes}
    try:
        store.close(table, ticket, changes=changes, event=_event(updated, "ticket.closed"))
    except store.TicketClosed:
        raise _closed(ticket) from None
    return updated


# ----------------------------------------------------------------------------- the operator


def operator_reply(
    table: Table,
    ticket: Item,
    *,
    body: str,
    author: Author,
    source_id: str | None = None,
    email_message_id: str | None = None,
) -> Item | None:
    """The operator answers: the ticket becomes ``answered`` (a closed one is reopened, whatever the
    organization's open count: the operator has more to say). ``source_id``: the SES message id of
    an emailed answer, which is stored once however often it is delivered (None the second time)."""
    checked(body=body)
    now = clock.now_iso()
    message = _message(
        str(ticket["id"]), str(ticket["org_id"]), body, author, now, email_message_id=email_message_id
    )
    changes: dict[str, Any] = {
        "status": rules.ANSWERED,
        "last_message_at": now,
        "last_author": rules.OPERATOR,
        "updated_at": now,
        "closed_at": None,
        "closed_by": None,
    }
    for attempt in range(STATUS_ATTEMPTS):
        updated = {**ticket, **changes, "message_count": int(ticket.get("message_count") or 0) + 1}
        try:
            store.add_message(
                table,
                ticket,
                message,
                changes=changes,
                event=_event(updated, "ticket.replied", message),
                open_only=False,
                source_id=source_id,
            )
            return message
        except store.AlreadyStored:
            logger().info(
                "ticket reply stored before", extra={"ticket_id": ticket["id"], "source_id": source_id}
            )
            return None
        except store.StatusChanged:
            # Closed or reopened since it was read: whether the open count moves depends on it.
            if attempt == STATUS_ATTEMPTS - 1:
                raise concurrent_update() from None
            ticket = load(table, str(ticket["org_id"]), str(ticket["id"]))
    raise AssertionError("unreachable")


def operator_message(table: Table, message_id: str) -> tuple[Item, Item]:
    """An operator message (the support API edits and deletes only those), with its ticket."""
    claim = store.operator_message_claim(table, message_id) if ids.is_id(message_id, "tkm") else None
    if claim is None:
        raise not_found("operator message")
    ticket = store.get(table, str(claim["org_id"]), str(claim["ticket_id"]))
    message = store.get_message(table, str(claim["org_id"]), str(claim["ticket_id"]), message_id)
    if ticket is None or message is None:
        raise not_found("operator message")
    return ticket, message


def edit_operator_message(table: Table, message: Item, *, body: str) -> Item:
    """A new body for an operator message (``operator_message``); it shows ``edited_at``."""
    checked(body=body)
    try:
        return store.edit_message(table, message, body=body, edited_at=clock.now_iso())
    except ConditionFailed:  # withdrawn meanwhile
        raise not_found("operator message") from None


def delete_operator_message(table: Table, ticket: Item, message: Item) -> None:
    """Withdraw an operator message (``operator_message``): it leaves the thread and its count."""
    try:
        store.delete_message(table, ticket, message, updated_at=clock.now_iso())
    except Rejected:  # withdrawn meanwhile
        raise not_found("operator message") from None
