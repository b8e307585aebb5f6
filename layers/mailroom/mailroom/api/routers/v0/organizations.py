"""``GET /api/v0/organizations``: the caller's organization with its counts and limits
(agentmail-v0-api.txt; services/v0_organizations.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field

from mailroom.api.models import Timestamp, errors
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import v0_organizations as service
from mailroom.store.table import Table

router = api_router("/api/v0/organizations", tags=["v0 organizations"])


class V0Organization(BaseModel):
    org_id: str = Field(examples=["org_01JABCDEF0123456789ABCDEFG"])
    name: str
    inbox_count: int = Field(
        ge=0, description="Inboxes (mailboxes) the organization has, whatever API made them"
    )
    inbox_limit: int = Field(ge=0, description="How many inboxes it may have")
    domain_count: int = Field(ge=0, description="Its own domains (the shared platform domain is not one)")
    domain_limit: int = Field(ge=0, description="How many domains it may add")
    created_at: Timestamp
    updated_at: Timestamp


@router.get(
    "",
    name="v0.organization.get",
    response_model=V0Organization,
    summary="Get the current organization",
    responses=errors(e404="not_found: the token's organization no longer exists"),
)
async def get_organization(
    principal: Annotated[Principal, Depends(require("account:read"))],
) -> dict[str, Any]:
    """The organization the API key belongs to, with how many inboxes and domains it has and may
    have. Use it to check room before creating inboxes or domains."""
    return service.get_organization(Table(), principal.org_id)
