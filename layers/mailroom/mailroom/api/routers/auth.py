"""Token-less endpoints of mailbox owners (``Auth: NONE`` in the template):

* ``POST /api/v1/auth/mailbox-token``: address + password → a short-lived message token;
* ``POST /api/v1/auth/invites:redeem``: invite code + password → the invite's mailbox.

There is no token, so there is no Idempotency-Key (keys are scoped to a token) and no per-token
rate limit: sign-in is throttled per address (services/mailbox_auth.py) and invite codes carry
192 random bits. Both are audited in the organization they concern once it is known.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, Field, StringConstraints

from mailroom import clock
from mailroom.api.models import One, Strict, one
from mailroom.api.pipeline import PUBLIC, api_router, audit_public, audit_target
from mailroom.api.routers.mailboxes import MailboxView
from mailroom.services import invites as invite_service
from mailroom.services import mailbox_auth
from mailroom.services import mailboxes as mailbox_service
from mailroom.store.table import Table

router = api_router("/api/v1/auth", tags=["mailbox auth"])
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]


class MailboxSignIn(Strict):
    address: str = Field(min_length=3, max_length=320)
    password: Password


class MailboxToken(BaseModel):
    token: str = Field(description="A message token (mr_msg_...) for this mailbox. Shown once.")
    token_id: str
    token_type: str
    mailbox_id: str
    address: str
    scopes: list[str]
    expires_at: str
    expires_in: int


class Redeem(Strict):
    code: str = Field(min_length=8, max_length=200)
    password: Password


class RedeemMeta(BaseModel):
    storage_downgraded: bool
    notice: str | None


class Redeemed(BaseModel):
    data: MailboxView
    meta: RedeemMeta


@router.post(
    "/mailbox-token",
    name="mailbox.sign_in",
    status_code=201,
    response_model=One[MailboxToken],
    openapi_extra=PUBLIC,
    summary="Sign in as a mailbox: a message token valid for one hour",
)
async def mailbox_token(body: MailboxSignIn, request: Request) -> dict[str, Any]:
    result = mailbox_auth.sign_in(Table(), body.address, body.password)
    if result.mailbox is not None:
        mailbox = result.mailbox
        audit_public(
            request, mailbox["org_id"], actor_type="mailbox", actor_id=mailbox["id"], name=mailbox["address"]
        )
        audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    if result.error is not None:
        raise result.error
    assert result.token is not None
    item = result.token.item
    if result.mailbox is not None:
        audit_target(
            request, "mailbox", item["mailbox_id"], address=result.mailbox["address"], token_id=item["id"]
        )
    expires_epoch = int(item["expires_at_epoch"])
    return one(
        {
            "token": result.token.plaintext,
            "token_id": item["id"],
            "token_type": item["token_type"],
            "mailbox_id": item["mailbox_id"],
            "address": result.mailbox["address"] if result.mailbox else "",
            "scopes": item["scopes"],
            "expires_at": item["expires_at"],
            "expires_in": max(0, expires_epoch - int(clock.utcnow().timestamp())),
        }
    )


@router.post(
    "/invites:redeem",
    name="invite.redeem",
    status_code=201,
    response_model=Redeemed,
    openapi_extra=PUBLIC,
    summary="Redeem an invite: choose a password, get the mailbox",
)
async def redeem_invite(body: Redeem, request: Request) -> dict[str, Any]:
    table = Table()
    invite = invite_service.find(table, body.code)
    audit_public(
        request, invite["org_id"], actor_type="invite", actor_id=invite["id"], name=invite["address"]
    )
    audit_target(request, "invite", invite["id"], address=invite["address"])
    invite_service.ensure_pending(table, invite)
    redeemed = invite_service.redeem(table, invite, body.password)
    mailbox = redeemed.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"], invite_id=invite["id"])
    notice = None
    if redeemed.downgraded:
        notice = (
            "The storage pool no longer had room for this mailbox's dedicated allocation of "
            f"{invite['storage_allocation_mb']} MB, so it uses the shared pool."
        )
    return {
        "data": mailbox_service.mailbox_view(mailbox),
        "meta": {"storage_downgraded": redeemed.downgraded, "notice": notice},
    }
