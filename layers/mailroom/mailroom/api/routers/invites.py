"""Mailbox invites (``/api/v1/mailboxes/invites``, ``/api/v1/mailboxes/invites:bulk``): the invitee
redeems the code with ``POST /api/v1/auth/invites:redeem``, choosing their password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from mailroom import errors
from mailroom.api.models import DisplayName, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.routers.mailboxes import StorageAllocation, bulk_invalid
from mailroom.domain.principal import Principal
from mailroom.errors import MailroomError
from mailroom.services import invites as service
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import invites as store
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["invites"])
MAX_BULK = 25
REDEEM_PATH = "/api/v1/auth/invites:redeem"


class CreateInvite(Strict):
    local_part: str = Field(min_length=1, max_length=64, description="a-zA-Z0-9._%+-")
    domain: str = Field(min_length=1, max_length=300)
    name: DisplayName | None = Field(default=None, max_length=255)
    quota: int | None = Field(default=None, ge=1, le=10_000_000, description="MB; defaults as for a mailbox")
    storage_allocation_mb: StorageAllocation = None
    expires_in_hours: int = Field(default=service.DEFAULT_EXPIRY_HOURS, ge=1, le=720)

    def request(self) -> service.NewInvite:
        return service.NewInvite(**self.model_dump())


class BulkInvites(Strict):
    invites: list[CreateInvite] = Field(min_length=1, max_length=MAX_BULK)


def _issued_view(issued: service.IssuedInvite) -> dict[str, Any]:
    return {**service.invite_view(issued.invite), "code": issued.code, "redeem_path": REDEEM_PATH}


@router.post(
    "/mailboxes/invites",
    name="invite.create",
    status_code=201,
    summary="Invite someone to a new mailbox (the code is returned once)",
)
async def create_invite(
    body: CreateInvite,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:invites:create"))],
) -> dict[str, Any]:
    audit_target(request, "invite", "-", local_part=body.local_part, domain=body.domain)
    issued = service.create_invite(Table(), principal.org_id, body.request(), created_by=principal.token_id)
    audit_target(request, "invite", issued.invite["id"], address=issued.invite["address"])
    return one(_issued_view(issued))


@router.post(
    "/mailboxes/invites:bulk",
    name="invite.bulk_create",
    status_code=201,
    summary=f"Create up to {MAX_BULK} invites: all of them or none",
)
async def bulk_create(
    body: BulkInvites,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:invites:create"))],
) -> JSONResponse:
    table = Table()
    results = service.prepare_many(
        table, principal.org_id, [row.request() for row in body.invites], created_by=principal.token_id
    )
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, (row, result) in enumerate(zip(body.invites, results, strict=True)):
        error: dict[str, str] | None = None
        address = f"{row.local_part}@{row.domain}"
        if isinstance(result, MailroomError):
            error = {"code": result.code, "message": result.message}
        else:
            address = result[0].address
            if address in seen:
                error = {"code": "duplicate_row", "message": f"{address} appears more than once in the batch"}
            elif mailbox_service.address_owner(table, principal.org_id, address) is not None:
                error = {"code": "address_taken", "message": f"{address} is already in use"}
            seen.add(address)
        rows.append(
            {"index": index, "address": address, "status": "invalid" if error else "valid", "error": error}
        )
    audit_target(request, "invite_batch", f"{len(rows)} rows", addresses=[r["address"] for r in rows])
    invalid = [r for r in rows if r["error"]]
    if invalid:
        return bulk_invalid(request, rows, invalid, what="invite")
    ready = [r for r in results if not isinstance(r, MailroomError)]
    issued = service.write_invites(table, mailbox_service.load_org(table, principal.org_id), ready)
    return JSONResponse(
        status_code=201, content={"data": [_issued_view(i) for i in issued], "meta": {"created": len(issued)}}
    )


@router.get(
    "/mailboxes/invites/{invite_id}", name="invite.get", summary="An invite and its status (never its code)"
)
async def get_invite(
    invite_id: str, principal: Annotated[Principal, Depends(require("mailboxes:read"))]
) -> dict[str, Any]:
    invite = store.get(Table(), principal.org_id, invite_id)
    if invite is None:
        raise errors.not_found("Invite")
    return one(service.invite_view(invite))
