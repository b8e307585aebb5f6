"""Message tokens: ``POST/GET /api/v1/mailboxes/{id}/message-tokens`` (``mailbox_router``, served
with the mailboxes), ``DELETE /api/v1/message-tokens/{id}`` and the message-token diagnostic
``GET /api/v1/messages/_ping`` (``router``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from mailroom.api import pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.mailbox_lookup import NOT_FOUND, LoadedMailbox, mailbox_with
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import MESSAGE_SCOPES, invalid_scopes
from mailroom.services import message_tokens as service
from mailroom.services.mailbox_policy import send_blocked
from mailroom.store.table import Table

mailbox_router = api_router("/api/v1/mailboxes", tags=["message tokens"])
router = api_router("/api/v1", tags=["message tokens"])
MANAGE = "mailboxes:message-tokens:manage"
ManagedMailbox = Annotated[LoadedMailbox, Depends(mailbox_with(MANAGE))]

MessageScope = Annotated[str, Field(json_schema_extra={"enum": sorted(MESSAGE_SCOPES)})]


class CreateMessageToken(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[MessageScope] = Field(
        min_length=1,
        max_length=len(MESSAGE_SCOPES),
        description="Message scopes only: messages:read, messages:write, messages:send",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 with a time zone, in the future; omit for a token that does not expire",
    )

    @field_validator("scopes")
    @classmethod
    def message_scopes_only(cls, scopes: list[str]) -> list[str]:
        unknown = invalid_scopes(scopes, MESSAGE_SCOPES)
        if unknown:
            raise ValueError(f"not message scopes: {', '.join(unknown)}")
        return scopes


MessageScopeName = Literal["messages:read", "messages:write", "messages:send"]


class MessageTokenView(BaseModel):
    id: str
    name: str
    type: Literal["message"]
    kind: Literal["managed", "session"] = Field(
        description="managed: made through the API; session: from a mailbox sign-in"
    )
    prefix: str = Field(description="The token's first characters, to recognize it")
    last_four: str
    scopes: list[MessageScopeName]
    mailbox_id: str
    expires_at: Timestamp | None
    used_at: Timestamp | None
    created_at: Timestamp
    created_by: str | None = Field(description="Id of the ops token that made it")


class NewMessageTokenView(MessageTokenView):
    token: str = Field(description="The token itself (mr_msg_...). Shown once; only its SHA-256 is stored.")


@mailbox_router.post(
    "/{mailbox_id}/message-tokens",
    name="message_token.create",
    status_code=201,
    response_model=One[NewMessageTokenView],
    summary="Create a message token for this mailbox",
    responses={
        **NOT_FOUND,
        **errors(
            e403="insufficient_scope, wrong_token_type; plan_api_disabled: the plan excludes message "
            "tokens; token_scope_blocked_by_plan: a scope the organization's plan excludes",
            e422="validation_error: not message scopes, or expires_at not in the future; "
            "message_token_limit_reached: the mailbox has as many tokens as the plan allows",
        ),
    },
)
async def create_message_token(
    body: CreateMessageToken, request: Request, mailbox: ManagedMailbox
) -> dict[str, Any]:
    """A token (mr_msg_...) that reads, writes or sends the mail of this mailbox only, for an agent
    or an app. The plaintext is returned once."""
    audit_target(
        request, "mailbox", mailbox.item["id"], address=mailbox.item["address"], token_name=body.name
    )
    new = service.create_managed(
        Table(),
        mailbox.item,
        name=body.name,
        scopes=body.scopes,
        created_by=mailbox.principal.token_id,
        expires_at=body.expires_at if isinstance(body.expires_at, datetime) else None,
        plan_allowed=mailbox.principal.plan_allowed,
    )
    audit_target(request, "message_token", new.item["id"], mailbox_id=mailbox.item["id"], name=body.name)
    return one({**service.token_view(new.item), "token": new.plaintext})


@mailbox_router.get(
    "/{mailbox_id}/message-tokens",
    name="message_token.list",
    response_model=ListOf[MessageTokenView],
    summary="List the mailbox's message tokens",
    responses=NOT_FOUND,
)
async def list_message_tokens(
    request: Request,
    mailbox: ManagedMailbox,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The mailbox's managed tokens, never their secret. Sign-in tokens are not listed."""
    page, total = service.list_managed(
        Table(), mailbox.item, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.token_view(t) for t in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.delete(
    "/message-tokens/{token_id}",
    name="message_token.revoke",
    status_code=204,
    summary="Revoke a message token",
    responses=errors(e404="not_found: no such message token in this organization"),
)
async def revoke_message_token(
    token_id: Annotated[str, Path(max_length=64, description="The token's id (mtk_...)")],
    request: Request,
    principal: Annotated[Principal, Depends(require(MANAGE))],
) -> Response:
    """Revoke a managed or sign-in token at once; requests with it get 401 from then on."""
    audit_target(request, "message_token", token_id)
    revoked = service.revoke(Table(), principal.org_id, token_id)
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
    scopes: list[MessageScopeName]


class Ping(BaseModel):
    ok: Literal[True]
    mailbox: PingMailbox
    token: PingToken
    can_send: bool = Field(description="The token holds messages:send and the mailbox may send")
    send_blocked_reason: str | None = Field(
        description="Why the mailbox cannot send (e.g. mailbox_paused, mailbox_inactive), else null"
    )


@router.get(
    "/messages/_ping",
    name="messages.ping",
    response_model=One[Ping],
    summary="Check a message token",
)
async def ping(bound: Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]) -> dict[str, Any]:
    """For a message token: the mailbox it is bound to, its scopes, and whether it can send now. A
    cheap way for an agent to check its configuration."""
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
