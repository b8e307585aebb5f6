"""``GET /api/v1/me`` and ``GET /api/v1/account``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel

from mailroom import errors
from mailroom.api.models import One, one
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.store import organizations
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["account"])


class OrganizationRef(BaseModel):
    id: str
    name: str


class Me(BaseModel):
    id: str
    name: str
    type: str
    scopes: list[str]
    mailbox_id: str | None
    organization: OrganizationRef


class Usage(BaseModel):
    mailboxes: int
    domains: int
    aliases: int
    tokens: int
    storage_used_bytes: int


class Account(BaseModel):
    id: str
    name: str
    usage: Usage
    limits: dict[str, int]
    created_at: str
    updated_at: str


def _organization(principal: Principal) -> dict[str, Any]:
    item = organizations.get(Table(), principal.org_id)
    if item is None:
        raise errors.not_found("Organization")
    return item


@router.get("/me", name="me.get", response_model=One[Me], summary="The calling token")
async def get_me(principal: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    org = _organization(principal)
    return one(
        {
            "id": principal.token_id,
            "name": principal.token_name,
            "type": principal.token_type.value,
            "scopes": sorted(principal.scopes),
            "mailbox_id": principal.mailbox_id,
            "organization": {"id": org["id"], "name": org["name"]},
        }
    )


@router.get(
    "/account", name="account.get", response_model=One[Account], summary="Organization, usage and limits"
)
async def get_account(principal: Annotated[Principal, Depends(require("account:read"))]) -> dict[str, Any]:
    org = _organization(principal)
    return one(
        {
            "id": org["id"],
            "name": org["name"],
            "usage": {
                "mailboxes": org.get("mailbox_count", 0),
                "domains": org.get("domain_count", 0),
                "aliases": org.get("alias_count", 0),
                "tokens": org.get("token_count", 0),
                "storage_used_bytes": org.get("storage_used_bytes", 0),
            },
            "limits": org.get("limits", {}),
            "created_at": org["created_at"],
            "updated_at": org["updated_at"],
        }
    )
