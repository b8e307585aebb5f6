"""Mailbox invites (``/api/v1/mailboxes/invites``, ``/api/v1/mailboxes/invites:bulk``): the invitee
redeems the code with ``POST /api/v1/auth/invites:redeem``, choosing their password."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request
from pydantic import BaseModel, Field

from mailroom.api.bulk import BULK_422, bulk_invalid
from mailroom.api.models import DisplayName, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.mailboxes import (
    LIMIT_ERRORS,
    LOCAL_PART_PATTERN,
    LOCAL_PART_RULES,
    StorageAllocation,
)
from mailroom.domain.principal import Principal
from mailroom.services import invites as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["invites"])
MAX_BULK = 25
REDEEM_PATH = "/api/v1/auth/invites:redeem"
CREATE = require("mailboxes:invites:create")


class CreateInvite(Strict):
    """The mailbox to be: its address, quota and storage are checked and held now (the address is
    taken, a dedicated allocation reserved from the pool, the domain cannot be deleted meanwhile)."""

    local_part: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": LOCAL_PART_PATTERN},
        description=LOCAL_PART_RULES,
    )
    domain: str = Field(min_length=1, max_length=300, description="A domain of this organization")
    name: DisplayName | None = Field(default=None, max_length=255, description="Display name of the mailbox")
    quota: int | None = Field(default=None, ge=1, le=10_000_000, description="MB; defaults as for a mailbox")
    storage_allocation_mb: StorageAllocation = None
    expires_in_hours: int = Field(
        default=service.DEFAULT_EXPIRY_HOURS, ge=1, le=720, description="Until the code stops working"
    )

    def request(self) -> service.NewInvite:
        return service.NewInvite(**self.model_dump())


class BulkInvites(Strict):
    invites: list[CreateInvite] = Field(min_length=1, max_length=MAX_BULK)


class InviteView(BaseModel):
    id: str
    address: str
    local_part: str
    domain: str
    domain_id: str
    name: str | None
    quota: int = Field(description="MB")
    storage_allocation_mb: int | None
    storage_mode: Literal["shared", "dedicated"]
    status: Literal["pending", "redeemed", "expired", "cancelled"] = Field(
        description="cancelled: its domain was deleted before it was redeemed"
    )
    expires_at: Timestamp
    created_at: Timestamp
    created_by: str | None = Field(description="Id of the token that made it")
    redeemed_at: Timestamp | None
    mailbox_id: str | None = Field(description="The mailbox it became, once redeemed")


class IssuedInviteView(InviteView):
    code: str = Field(description="The invite code (mri_...). Shown once; only its SHA-256 is stored.")
    redeem_path: Literal["/api/v1/auth/invites:redeem"] = Field(
        description="Where the invitee sends the code and a password of their choosing (no token needed)"
    )


class IssuedCount(BaseModel):
    created: int


class IssuedInvites(BaseModel):
    data: list[IssuedInviteView]
    meta: IssuedCount


def _issued_view(issued: service.IssuedInvite) -> dict[str, Any]:
    return {**service.invite_view(issued.invite), "code": issued.code, "redeem_path": REDEEM_PATH}


@router.post(
    "/mailboxes/invites",
    name="invite.create",
    status_code=201,
    response_model=One[IssuedInviteView],
    summary="Invite someone to a new mailbox",
    responses=errors(
        e409="address_taken: the address is a mailbox, alias or pending invite already", e422=LIMIT_ERRORS
    ),
)
async def create_invite(
    body: CreateInvite, request: Request, principal: Annotated[Principal, Depends(CREATE)]
) -> dict[str, Any]:
    """An invite code for a mailbox whose owner chooses the password: hand them the code; they
    redeem it at `redeem_path`. The code is returned once. An invite that could not become a
    mailbox now (a mailbox limit is reached) is refused."""
    audit_target(request, "invite", "-", local_part=body.local_part, domain=body.domain)
    issued = service.create_invite(Table(), principal.org_id, body.request(), created_by=principal.token_id)
    audit_target(request, "invite", issued.invite["id"], address=issued.invite["address"])
    return one(_issued_view(issued))


@router.post(
    "/mailboxes/invites:bulk",
    name="invite.bulk_create",
    status_code=201,
    response_model=IssuedInvites,
    summary=f"Create up to {MAX_BULK} invites: all of them or none",
    responses={
        **errors(e409="address_taken: an address was taken after validation (nothing created)"),
        **BULK_422,
    },
)
async def bulk_create(
    body: BulkInvites, request: Request, principal: Annotated[Principal, Depends(CREATE)]
) -> Any:
    """Every row is validated (as for one invite, plus duplicates within the batch); if any is bad,
    nothing is created and the 422 lists every row. Otherwise all invites are created in one
    transaction, with the limits and the storage pool checked for the batch as a whole."""
    addresses = [f"{row.local_part}@{row.domain}" for row in body.invites]
    audit_target(request, "invite_batch", f"{len(addresses)} rows", addresses=addresses)
    outcome = service.create_batch(
        Table(), principal.org_id, [row.request() for row in body.invites], created_by=principal.token_id
    )
    if outcome.issued is None:
        return bulk_invalid(request, outcome.rows, what="invite")
    return {"data": [_issued_view(i) for i in outcome.issued], "meta": {"created": len(outcome.issued)}}


@router.get(
    "/mailboxes/invites/{invite_id}",
    name="invite.get",
    response_model=One[InviteView],
    summary="An invite and its status",
    responses=errors(e404="not_found: no such invite in this organization"),
)
async def get_invite(
    invite_id: Annotated[str, Path(max_length=64, description="The invite's id (inv_...)")],
    principal: Annotated[Principal, Depends(require("mailboxes:read"))],
) -> dict[str, Any]:
    """Whether the invite is still pending, was redeemed (and into which mailbox) or expired. The
    code is never shown again."""
    return one(service.invite_view(service.load(Table(), principal.org_id, invite_id)))
