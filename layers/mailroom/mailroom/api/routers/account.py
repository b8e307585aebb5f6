"""``GET /api/v1/me`` and ``GET /api/v1/account``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import BaseModel, Field

from mailroom.api.models import One, Timestamp, one
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import account as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["account"])


class OrganizationRef(BaseModel):
    id: str
    name: str


class Me(BaseModel):
    id: str = Field(description="The token's id")
    name: str
    type: Literal["ops", "api_key"]
    scopes: list[str]
    mailbox_id: None = Field(description="Always null: only ops tokens and API keys call it")
    organization: OrganizationRef


class Usage(BaseModel):
    mailboxes: int
    domains: int
    aliases: int
    tokens: int = Field(description="Ops tokens")
    storage_used_bytes: int


class AccountLimits(BaseModel):
    mailboxes: int
    domains: int
    aliases: int
    storage_mb: int = Field(description="The storage pool mailbox quotas and allocations draw on")
    migration_batch_rows: int = Field(description="Rows per bulk migration")
    migration_concurrency: int = Field(description="Migrations running at once")
    message_tokens: int = Field(description="Managed message tokens per mailbox")
    rate_limit_per_minute: int = Field(
        description="Requests per minute per token (a token may have a lower one)"
    )


class Account(BaseModel):
    id: str
    name: str
    plan: str | None = Field(
        description="The plan (its scopes and limits: docs/plans.md); null for an organization made "
        "before plans, which every scope reaches"
    )
    usage: Usage
    limits: AccountLimits
    created_at: Timestamp
    updated_at: Timestamp


@router.get("/me", name="me.get", response_model=One[Me], summary="The calling token")
async def get_me(principal: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    """Who is calling: the token's id, name, type and scopes, and its organization. Any valid
    token may call it; use it to check a token."""
    return one(service.me_view(principal, service.organization(Table(), principal.org_id)))


@router.get(
    "/account", name="account.get", response_model=One[Account], summary="Organization, usage and limits"
)
async def get_account(principal: Annotated[Principal, Depends(require("account:read"))]) -> dict[str, Any]:
    """The organization: its plan, how many mailboxes, domains, aliases and tokens it has and how much
    storage it uses, against its limits (the plan's, with any the operator set for it alone)."""
    return one(service.account_view(service.organization(Table(), principal.org_id)))
