"""Support tickets (``/api/v1/tickets``): the organization's threads with the platform operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.tickets import Body, TicketMessageView
from mailroom.domain import tickets as rules
from mailroom.domain.principal import Principal
from mailroom.services import tickets as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1/tickets", tags=["tickets"])
READ = "tickets:read"
WRITE = "tickets:write"

Status = Literal["open", "answered", "closed"]


class NewTicket(Strict):
    subject: str = Field(
        min_length=1,
        max_length=rules.MAX_SUBJECT,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="One line: what the ticket is about",
    )
    body: Body


class TicketReply(Strict):
    body: Body


class CreatedBy(BaseModel):
    token_id: str | None
    name: str | None


class TicketView(BaseModel):
    id: str = Field(description="tkt_...")
    subject: str
    status: Status = Field(
        description="open: waiting for the operator; answered: the operator replied last; closed"
    )
    message_count: int
    last_message_at: Timestamp | None
    last_author: Literal["organization", "operator"] | None
    created_by: CreatedBy | None = Field(description="The token that opened the ticket")
    created_at: Timestamp
    updated_at: Timestamp
    closed_at: Timestamp | None
    closed_by: Literal["organization", "operator"] | None


TicketId = Annotated[str, Path(max_length=64, description="The ticket's id (tkt_...)")]
NOT_FOUND = errors(e404="not_found: no such ticket in this organization")
CLOSED = "ticket_closed: the ticket is closed"
EMAIL_503 = (
    "support_email_failed: the operator could not be emailed, so nothing was saved (retryable unless "
    "SES refused the message)"
)


def _ticket_with(scope: str) -> Callable[[Request, str], Item]:
    authorized = require(scope)

    def load(request: Request, ticket_id: TicketId) -> Item:
        principal = authorized(request)
        return service.load(Table(), principal.org_id, ticket_id)

    return load


ReadableTicket = Annotated[Item, Depends(_ticket_with(READ))]
WritableTicket = Annotated[Item, Depends(_ticket_with(WRITE))]


def _author(principal: Principal) -> service.Author:
    return service.Author(
        rules.ORGANIZATION, rules.VIA_API, name=principal.token_name, token_id=principal.token_id
    )


@router.get(
    "",
    name="ticket.list",
    response_model=ListOf[TicketView],
    summary="List support tickets",
)
async def list_tickets(
    request: Request,
    principal: Annotated[Principal, Depends(require(READ))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    status: Annotated[Status | None, Query(description="Only tickets in this status")] = None,
) -> dict[str, Any]:
    """The organization's tickets with the platform operator, newest first. With `status`, pages
    link forward only; `meta.total` is not counted."""
    page = service.list_tickets(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor, status=status
    )
    data = [service.ticket_view(t) for t in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.post(
    "",
    name="ticket.create",
    status_code=201,
    response_model=One[TicketView],
    summary="Open a support ticket",
    responses=errors(
        e422=f"validation_error; ticket_limit_reached: {rules.MAX_OPEN_TICKETS} tickets are open already "
        "(close the solved ones)",
        e503=EMAIL_503,
    ),
)
async def create_ticket(
    body: NewTicket, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Write to the platform operator (a limited number of tickets may be open at once: 422). The
    message is emailed to the operator's support address;
    the operator's answers arrive as messages of the ticket (`GET .../messages`) and as
    `ticket.replied` events (webhooks, the event log, the WebSocket API)."""
    audit_target(request, "ticket", "-", subject=body.subject[:100])
    ticket, _message = service.create_ticket(
        Table(), principal.org_id, subject=body.subject, body=body.body, author=_author(principal)
    )
    audit_target(request, "ticket", ticket["id"], subject=body.subject[:100])
    return one(service.ticket_view(ticket))


@router.get(
    "/{ticket_id}",
    name="ticket.get",
    response_model=One[TicketView],
    summary="Get a support ticket",
    responses=NOT_FOUND,
)
async def get_ticket(ticket: ReadableTicket) -> dict[str, Any]:
    """A ticket's subject, status and who wrote last."""
    return one(service.ticket_view(ticket))


@router.get(
    "/{ticket_id}/messages",
    name="ticket.messages",
    response_model=ListOf[TicketMessageView],
    summary="List a ticket's messages",
    responses=NOT_FOUND,
)
async def list_messages(
    request: Request,
    ticket: ReadableTicket,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The thread, oldest first: the organization's messages and the operator's answers (by email,
    by the operator's command line or by the operator's support pipeline)."""
    page = service.list_messages(Table(), ticket, per_page=page_query.per_page, cursor=page_query.cursor)
    data = [service.message_view(m) for m in page.items]
    total = int(ticket.get("message_count") or 0)
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.post(
    "/{ticket_id}/reply",
    name="ticket.reply",
    status_code=201,
    response_model=One[TicketMessageView],
    summary="Reply on a support ticket",
    responses={**NOT_FOUND, **errors(e409=CLOSED, e503=EMAIL_503)},
)
async def reply(body: TicketReply, request: Request, ticket: WritableTicket) -> dict[str, Any]:
    """Add a message to the thread (emailed to the operator, in the same email thread); the ticket
    is `open` again. A closed ticket takes no more messages: open a new one."""
    audit_target(request, "ticket", ticket["id"])
    principal: Principal = request.state.principal
    message = service.reply(Table(), ticket, body=body.body, author=_author(principal))
    return one(service.message_view(message))


@router.post(
    "/{ticket_id}:close",
    name="ticket.close",
    response_model=One[TicketView],
    summary="Close a support ticket",
    responses={**NOT_FOUND, **errors(e409=CLOSED)},
)
async def close(request: Request, ticket: WritableTicket) -> dict[str, Any]:
    """Mark the ticket solved. The operator may still answer it (that reopens it as `answered`)."""
    audit_target(request, "ticket", ticket["id"])
    return one(service.ticket_view(service.close(Table(), ticket, by=rules.ORGANIZATION)))
