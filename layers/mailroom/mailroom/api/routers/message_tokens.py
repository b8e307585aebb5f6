"""Message tokens: ``POST/GET /api/v1/mailboxes/{id}/message-tokens`` (``mailbox_router``, served
with the mailboxes), ``DELETE /api/v1/message-tokens/{id}`` and the message-token diagnostic
``GET /api/v1/messages/_ping`` (``router``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from mailroom import clock, errors
from mailroom.api import pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import MESSAGE_SCOPES, invalid_scopes
from mailroom.services import mailboxes as mailbox_service
from mailroom.services import message_tokens as service
from mailroom.services.sending import send_blocked
from mailroom.store import message_tokens as store
from mailroom.store.table import Table

mailbox_router = api_router("/api/v1/mailboxes", tags=["message tokens"])
router = api_router("/api/v1", tags=["message tokens"])
MANAGE = require("mailboxes:message-tokens:manage")


class CreateMessageToken(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(
        min_length=1,
        max_length=len(MESSAGE_SCOPES),
        description="messages:read, messages:write, messages:send",
    )
    expires_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with a time zone.")

    @field_validator("scopes")
    @classmethod
    def message_scopes_only(cls, scopes: list[str]) -> list[str]:
        unknown = invalid_scopes(scopes, MESSAGE_SCOPES)
        if unknown:
            raise ValueError(f"not message scopes: {', '.join(unknown)}")
        return scopes


class MessageTokenView(BaseModel):
    id: str
    name: str
    type: str
    kind: str
    prefix: str
    last_four: str
    scopes: list[str]
    mailbox_id: str
    expires_at: str | None
    used_at: str | None
    created_at: str
    created_by: str | None


class NewMessageTokenView(MessageTokenView):
    token: str = Field(description="The token itself. Shown once; only its SHA-256 is stored.")


@mailbox_router.post(
    "/{mailbox_id}/message-tokens",
    name="message_token.create",
    status_code=201,
    response_model=One[NewMessageTokenView],
    summary="Create a message token bound to this mailbox (the plaintext is returned once)",
)
async def create_message_token(
    mailbox_id: str,
    body: CreateMessageToken,
    request: Request,
    principal: Annotated[Principal, Depends(MANAGE)],
) -> dict[str, Any]:
    table = Table()
    mailbox = mailbox_service.load(table, principal.org_id, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"], token_name=body.name)
    if body.expires_at is not None and body.expires_at <= clock.utcnow():
        raise errors.validation("expires_at must be in the future", field="expires_at")
    new = service.issue(
        table,
        mailbox,
        name=body.name,
        scopes=body.scopes,
        kind=store.MANAGED,
        created_by=principal.token_id,
        expires_at=body.expires_at if isinstance(body.expires_at, datetime) else None,
    )
    audit_target(request, "message_token", new.item["id"], mailbox_id=mailbox_id, name=body.name)
    return one({**service.token_view(new.item), "token": new.plaintext})


@mailbox_router.get(
    "/{mailbox_id}/message-tokens",
    name="message_token.list",
    summary="List the mailbox's message tokens (never the secret; sign-in tokens are not listed)",
)
async def list_message_tokens(
    mailbox_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(MANAGE)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    mailbox = mailbox_service.load(table, principal.org_id, mailbox_id)
    page = store.list_page(
        table, principal.org_id, mailbox_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request,
        page,
        [service.token_view(t) for t in page.items],
        per_page=page_query.per_page,
        total=int(mailbox.get("message_token_count", 0)),
    )


@router.delete(
    "/message-tokens/{token_id}",
    name="message_token.revoke",
    status_code=204,
    summary="Revoke a message token",
)
async def revoke_message_token(
    token_id: str, request: Request, principal: Annotated[Principal, Depends(MANAGE)]
) -> Response:
    audit_target(request, "message_token", token_id)
    revoked = service.revoke(Table(), principal.org_id, token_id)
    if revoked is None:
        raise errors.not_found("Message token")
    audit_target(request, "message_token", token_id, mailbox_id=revoked["mailbox_id"], name=revoked["name"])
    return Response(status_code=204)


class PingMailbox(BaseModel):
    id: str
    address: str
    active: bool
    paused: bool


class PingToken(BaseModel):
    id: str
    name: str
    scopes: list[str]


class Ping(BaseModel):
    ok: bool
    mailbox: PingMailbox
    token: PingToken
    can_send: bool
    send_blocked_reason: str | None


@router.get(
    "/messages/_ping",
    name="messages.ping",
    response_model=One[Ping],
    summary="Diagnostic for a message token: the mailbox it is bound to",
)
async def ping(bound: Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]) -> dict[str, Any]:
    mailbox, principal = bound.mailbox, bound.principal
    blocked = send_blocked(mailbox)
    return one(
        {
            "ok": True,
            "mailbox": {
                "id": mailbox["id"],
                "address": mailbox["address"],
                "active": bool(mailbox.get("active", True)),
                "paused": bool(mailbox.get("paused", False)),
            },
            "token": {
                "id": principal.token_id,
                "name": principal.token_name,
                "scopes": sorted(principal.scopes),
            },
            "can_send": blocked is None and principal.has("messages:send"),
            "send_blocked_reason": blocked.code if blocked else None,
        }
    )
