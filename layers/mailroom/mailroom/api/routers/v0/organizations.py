"""``GET /api/v0/organizations``: the caller's organization with its counts and limits
(agentmail-v0-api.txt). Counts are the organization item's maintained counters: an inbox is a
mailbox, so ``inbox_count`` is ``mailbox_count``; the platform domain is not one of the
organization's domains and is not in ``domain_count``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel

from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import mailboxes
from mailroom.store.table import Table

router = api_router("/api/v0/organizations", tags=["v0 organizations"])


class Organization(BaseModel):
    org_id: str
    name: str
    inbox_count: int
    inbox_limit: int
    domain_count: int
    domain_limit: int
    created_at: str
    updated_at: str


@router.get(
    "",
    name="v0.organization.get",
    response_model=Organization,
    summary="The current organization: usage counts and limits",
)
async def get_organization(
    principal: Annotated[Principal, Depends(require("account:read"))],
) -> dict[str, Any]:
    org = mailboxes.load_org(Table(), principal.org_id)
    limits = mailboxes.org_limits(org)
    return {
        "org_id": org["id"],
        "name": org["name"],
        "inbox_count": int(org.get("mailbox_count", 0)),
        "inbox_limit": limits["mailboxes"],
        "domain_count": int(org.get("domain_count", 0)),
        "domain_limit": limits["domains"],
        "created_at": org["created_at"],
        "updated_at": org["updated_at"],
    }
