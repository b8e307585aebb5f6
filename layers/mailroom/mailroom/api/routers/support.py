"""The operator's support endpoints (``/api/v1/support``), for an automated support pipeline.

No token: each request is signed with the stack's support secret (HMAC-SHA256 over the timestamp,
method, path and body; services/support_auth.py). The signature is checked before anything else
is read, the body included, so an unsigned caller learns nothing but ``401`` (a malformed body too):
the body is therefore parsed here rather than by FastAPI, and documented with ``openapi_extra``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from mailroom.api.models import One, Strict, errors, one
from mailroom.api.pipeline import PUBLIC, api_router, audit_public, audit_target
from mailroom.api.schemas.tickets import Body, TicketMessageView
from mailroom.domain import tickets as rules
from mailroom.services import support_auth
from mailroom.services import tickets as service
from mailroom.store.table import Table

router = api_router("/api/v1/support", tags=["support (operator)"])
M = TypeVar("M", bound=BaseModel)

NOT_A_TOOL = "x-mailroom-not-a-tool"  # signed with the operator's secret: no agent token can call it
E401 = (
    "unauthenticated: no signature, a malformed, stale (over 5 minutes) or wrong one, one used before, "
    "or no support secret configured"
)
Timestamp = Annotated[
    str | None,
    Header(alias=rules.TIMESTAMP_HEADER, description="Unix seconds when the request was signed"),
]
Signature = Annotated[
    str | None,
    Header(
        alias=rules.SIGNATURE_HEADER,
        description="v1=<hex>: HMAC-SHA256 of '<timestamp>.<METHOD>.<path>.<body>', keyed with the "
        "support secret",
    ),
]
MessageId = Annotated[str, Path(description="An operator message's id (tkm_...)")]


class SupportReply(Strict):
    ticket_id: str = Field(max_length=64, description="The ticket to answer (tkt_...)")
    body: Body
    author_name: str | None = Field(
        default=None, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$", description="Shown as the author"
    )
    close: bool = Field(default=False, description="Close the ticket after this answer")


class SupportEdit(Strict):
    body: Body


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        **PUBLIC,
        NOT_A_TOOL: True,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
    }


async def _signed(request: Request, timestamp: str | None, signature: str | None) -> bytes:
    body = await request.body()
    support_auth.authenticate(
        Table(),
        timestamp=timestamp,
        signature=signature,
        method=request.method,
        path=request.url.path,
        body=body,
    )
    return body


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
        ) from None


def _audit(request: Request, org_id: str, author_name: str | None) -> None:
    audit_public(request, org_id, actor_type="operator", actor_id="support", name=author_name or "support")


@router.post(
    "/reply",
    name="support.reply",
    status_code=201,
    response_model=One[TicketMessageView],
    openapi_extra=_request_body(SupportReply),
    summary="Answer a ticket (support pipeline)",
    responses=errors(e401=E401, e404="not_found: no such ticket"),
)
async def support_reply(
    request: Request, timestamp: Timestamp = None, signature: Signature = None
) -> dict[str, Any]:
    """The operator's answer to a ticket, from the automated support pipeline: the ticket becomes
    `answered` (a closed one reopens), or `closed` with `close: true`; the organization gets
    `ticket.replied` (and `ticket.closed`) events."""
    reply = _parse(SupportReply, await _signed(request, timestamp, signature))
    table = Table()
    ticket = service.load_any(table, reply.ticket_id)
    _audit(request, str(ticket["org_id"]), reply.author_name)
    audit_target(request, "ticket", ticket["id"])
    author = service.Author(rules.OPERATOR, rules.VIA_SUPPORT_API, name=reply.author_name)
    message = service.operator_reply(table, ticket, body=reply.body, author=author)
    assert message is not None  # a new id: never stored before
    if reply.close:
        service.close(table, service.load_any(table, reply.ticket_id), by=rules.OPERATOR)
    return one(service.message_view(message))


@router.put(
    "/messages/{ticket_message_id}",
    name="support.edit_message",
    response_model=One[TicketMessageView],
    openapi_extra=_request_body(SupportEdit),
    summary="Edit an operator message (support pipeline)",
    responses=errors(e401=E401, e404="not_found: no operator message with this id"),
)
async def edit_message(
    request: Request,
    ticket_message_id: MessageId,
    timestamp: Timestamp = None,
    signature: Signature = None,
) -> dict[str, Any]:
    """Replace the body of an answer the operator's side wrote (the organization's own messages
    cannot be edited); it shows `edited_at`."""
    edit = _parse(SupportEdit, await _signed(request, timestamp, signature))
    table = Table()
    ticket, message = service.operator_message(table, ticket_message_id)
    _audit(request, str(ticket["org_id"]), None)
    audit_target(request, "ticket_message", ticket_message_id, ticket_id=ticket["id"])
    return one(service.message_view(service.edit_operator_message(table, message, body=edit.body)))


@router.delete(
    "/messages/{ticket_message_id}",
    name="support.delete_message",
    status_code=204,
    openapi_extra={**PUBLIC, NOT_A_TOOL: True},
    summary="Delete an operator message (support pipeline)",
    responses=errors(e401=E401, e404="not_found: no operator message with this id"),
)
async def delete_message(
    request: Request,
    ticket_message_id: MessageId,
    timestamp: Timestamp = None,
    signature: Signature = None,
) -> Response:
    """Withdraw an answer the operator's side wrote (e.g. one sent by mistake)."""
    await _signed(request, timestamp, signature)
    table = Table()
    ticket, message = service.operator_message(table, ticket_message_id)
    _audit(request, str(ticket["org_id"]), None)
    audit_target(request, "ticket_message", ticket_message_id, ticket_id=ticket["id"])
    service.delete_operator_message(table, ticket, message)
    return Response(status_code=204)
