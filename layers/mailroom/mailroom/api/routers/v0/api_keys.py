"""``/api/v0/api-keys``: the organization's ``inai_`` API keys (agentmail-v0-api.txt).

A key is organization-wide: it holds every ops scope (api/principal.py), so it reaches every
``/api/v0`` and ``/api/v1`` endpoint an ops token can. Managing keys needs ``tokens:manage``; since
a key carries every scope, only a caller that holds every scope (another key, or an ops token made
with all of them) may create one: v1's rule that a token cannot grant what it does not hold.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field

from mailroom import errors
from mailroom.api.models import Strict
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.domain.tokens import TokenType
from mailroom.errors import Forbidden
from mailroom.services.tokens import issue_api_key
from mailroom.store import organizations, tokens
from mailroom.store.table import Item, Table

router = api_router("/api/v0/api-keys", tags=["v0 api keys"])
Pages = Annotated[PageParams, Depends(page_params)]
Manager = Annotated[Principal, Depends(require("tokens:manage"))]
KeyId = Annotated[str, Path(alias="keyId")]
MAX_ID_LENGTH = 64  # longer is no id of ours: 404 like any unknown id, without asking DynamoDB


class CreateApiKey(Strict):
    name: str = Field(min_length=1, max_length=100)


class ApiKey(BaseModel):
    key_id: str
    name: str
    prefix: str = Field(description="inai_xxxx_...: enough to tell keys apart, never the key")
    used_at: str | None = Field(description="Last use, to within the authorizer's cache time")
    created_at: str


class NewApiKey(ApiKey):
    key: str = Field(description="The key itself. Shown once; only its SHA-256 is stored.")


def api_key_view(item: Item) -> dict[str, Any]:
    return {
        "key_id": item["id"],
        "name": item["name"],
        "prefix": item["prefix"],
        "used_at": item.get("used_at"),
        "created_at": item["created_at"],
    }


@router.post("", name="v0.api_key.create", response_model=NewApiKey, summary="Create an API key")
async def create_api_key(body: CreateApiKey, request: Request, principal: Manager) -> dict[str, Any]:
    missing = sorted(OPS_SCOPES - principal.scopes)
    if missing:
        raise Forbidden(
            "scope_escalation",
            f"An API key holds every scope; this token lacks: {', '.join(missing)}.",
            hint="Create API keys with an API key or with an ops token that holds every scope.",
        )
    new = issue_api_key(Table(), org_id=principal.org_id, name=body.name, created_by=principal.token_id)
    audit_target(request, "api_key", new.item["id"], name=body.name)
    return {**api_key_view(new.item), "key": new.plaintext}


@router.get("", name="v0.api_key.list", response_model=PageOf[ApiKey], summary="List API keys (prefix only)")
async def list_api_keys(principal: Manager, params: Pages) -> dict[str, Any]:
    table = Table()
    items = tokens.window(
        table, principal.org_id, offset=params.offset, limit=params.page_size, token_type=TokenType.API_KEY
    )
    org = organizations.get(table, principal.org_id) or {}
    return page_body([api_key_view(i) for i in items], total=int(org.get("api_key_count", 0)), params=params)


@router.delete("/{keyId}", name="v0.api_key.revoke", status_code=204, summary="Revoke and delete an API key")
async def delete_api_key(key_id: KeyId, request: Request, principal: Manager) -> Response:
    audit_target(request, "api_key", key_id)
    if len(key_id) > MAX_ID_LENGTH or not tokens.delete(
        Table(), principal.org_id, key_id, token_type=TokenType.API_KEY
    ):
        raise errors.not_found("API key")
    return Response(status_code=204)
