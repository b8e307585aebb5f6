"""Token-less endpoints of mailbox owners (``Auth: NONE`` in the template):

* ``POST /api/v1/auth/mailbox-token``: address + password → a short-lived message token;
* ``POST /api/v1/auth/invites:redeem``: invite code + password → the invite's mailbox.

There is no token, so there is no Idempotency-Key (keys are scoped to a token) and no per-token
rate limit: sign-in is throttled per address (services/mailbox_auth.py) and invite codes carry
192 random bits. Both are audited in the organization they concern once it is known.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Request
from pydantic import BaseModel, Field, StringConstraints

from mailroom import clock
from mailroom.api.models import One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import PUBLIC, api_router, audit_public, audit_target
from mailroom.api.schemas.mailboxes import MailboxView, NewPassword
from mailroom.services import invites as invite_service
from mailroom.services import mailbox_auth
from mailroom.services import mailboxes as mailbox_service
from mailroom.store.table import Table

router = api_router("/api/v1/auth", tags=["mailbox auth"])
# Taken byte for byte: the models' whitespace stripping must not apply to passwords.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]


class MailboxSignIn(Strict):
    address: str = Field(min_length=3, max_length=320, description="The mailbox's address (case is ignored)")
    password: Password


class MailboxToken(BaseModel):
    token: str = Field(description="A message token (mr_msg_...) for this mailbox. Shown once.")
    token_id: str
    token_type: Literal["message"]
    mailbox_id: str
    address: str
    scopes: list[Literal["messages:read", "messages:write", "messages:send"]]
    expires_at: Timestamp
    expires_in: int = Field(ge=0, description="Seconds until it expires")


class Redeem(Strict):
    code: str = Field(min_length=8, max_length=200, description="The invite code (mri_...)")
    password: NewPassword


class RedeemMeta(BaseModel):
    storage_downgraded: bool = Field(
        description="The invite promised dedicated storage the pool no longer has: the mailbox is shared"
    )
    notice: str | None = Field(description="What to tell the owner when storage_downgraded")


class Redeemed(BaseModel):
    data: MailboxView
    meta: RedeemMeta


@router.post(
    "/mailbox-token",
    name="mailbox.sign_in",
    status_code=201,
    response_model=One[MailboxToken],
    openapi_extra=PUBLIC,
    summary="Sign in as a mailbox",
    responses={
        **errors(
            e401="invalid_credentials: the address or the password is wrong (which one is not said)",
            e403="token_scope_blocked_by_plan: the organization's plan includes no message tokens; "
            "mailbox_inactive: the mailbox is deactivated; password_change_required: an administrator "
            "must set a new password first (POST /api/v1/mailboxes/{id}/password)",
        ),
        429: {
            "description": "too_many_attempts: too many sign-ins for this address in the window (right "
            "password or not); Retry-After says when to try again",
        },
    },
)
async def mailbox_token(body: MailboxSignIn, request: Request) -> dict[str, Any]:
    """The mailbox's owner (or an agent holding its password) gets a message token for one hour,
    with every message scope, without an ops token. Send it as `Authorization: Bearer` to the
    `/api/v1/messages` endpoints. Attempts are limited per address."""
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
    assert result.mailbox is not None
    item = result.token.item
    audit_target(
        request, "mailbox", item["mailbox_id"], address=result.mailbox["address"], token_id=item["id"]
    )
    return one(
        {
            "token": result.token.plaintext,
            "token_id": item["id"],
            "token_type": item["token_type"],
            "mailbox_id": item["mailbox_id"],
            "address": result.mailbox["address"],
            "scopes": item["scopes"],
            "expires_at": item["expires_at"],
            "expires_in": max(0, int(item["expires_at_epoch"]) - int(clock.utcnow().timestamp())),
        }
    )


@router.post(
    "/invites:redeem",
    name="invite.redeem",
    status_code=201,
    response_model=Redeemed,
    openapi_extra=PUBLIC,
    summary="Redeem an invite",
    responses=errors(
        e404="invite_not_found: no invite has this code",
        e409="invite_already_redeemed: the code was used; concurrent_update: retry",
        e410="invite_expired: the invite expired (or its domain was deleted); ask for a new one",
        e422="weak_password, validation_error; mailbox_limit_reached, domain_mailbox_limit_reached, "
        "domain_quota_exceeded: a limit was reached since the invite was made",
    ),
)
async def redeem_invite(body: Redeem, request: Request) -> dict[str, Any]:
    """The invitee chooses a password and the invite becomes their mailbox (no token needed: the
    code is the credential). Sign in afterwards with `POST /api/v1/auth/mailbox-token`."""
    table = Table()
    invite = invite_service.find(table, body.code)
    audit_public(
        request, invite["org_id"], actor_type="invite", actor_id=invite["id"], name=invite["address"]
    )
    audit_target(request, "invite", invite["id"], address=invite["address"])
    redeemed = invite_service.redeem(table, invite, body.password)
    mailbox = redeemed.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"], invite_id=invite["id"])
    return {
        "data": mailbox_service.mailbox_view(mailbox),
        "meta": {"storage_downgraded": redeemed.downgraded, "notice": redeemed.notice},
    }
