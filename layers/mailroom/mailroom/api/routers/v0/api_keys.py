"""``/api/v0/api-keys``: the organization's ``inai_`` API keys (agentmail-v0-api.txt;
services/v0_api_keys.py).

A key is organization-wide: it holds every ops scope (api/principal.py), so it reaches every
``/api/v0`` and ``/api/v1`` endpoint an ops token can. Managing keys needs ``tokens:manage``; since
a key carries every scope, only a caller that holds every scope (another key, or an ops token made
with all of them) may create one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field

from mailroom.api.models import Strict, Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.services import v0_api_keys as service
from mailroom.store.table import Table

router = api_router("/api/v0/api-keys", tags=["v0 api keys"])
Pages = Annotated[PageParams, Depends(page_params)]
Manager = Annotated[Principal, Depends(require("tokens:manage"))]
KeyId = Annotated[str, Path(alias="keyId", description="A key_id of the organization (key_...)")]


class V0CreateApiKey(Strict):
    name: str = Field(
        min_length=1, max_length=100, description="Yours, to tell keys apart (surrounding spaces trimmed)"
    )


class V0ApiKey(BaseModel):
    key_id: str = Field(examples=["key_01JABCDEF0123456789ABCDEFG"])
    name: str
    prefix: str = Field(
        description="inai_xxxx_...: enough to tell keys apart, never the key", examples=["inai_AbC1_..."]
    )
    used_at: Timestamp | None = Field(
        description="Last use, to within the authorizer's cache time (30 s); null if never"
    )
    created_at: Timestamp


class V0NewApiKey(V0ApiKey):
    key: str = Field(
        description="The key itself, for `Authorization: Bearer`. Shown once: only its SHA-256 is stored."
    )


@router.post(
    "",
    name="v0.api_key.create",
    response_model=V0NewApiKey,
    summary="Create an API key",
    responses=errors(
        e403="insufficient_scope, wrong_token_type, or scope_escalation: a key holds every scope, so "
        "only a caller holding every scope (an API key, or an ops token with all of them) may create one"
    ),
)
async def create_api_key(body: V0CreateApiKey, request: Request, principal: Manager) -> dict[str, Any]:
    """A new organization-wide API key. The full `key` is in this response only: store it
    securely. It works at once on every `/api/v0` endpoint and every `/api/v1` ops endpoint."""
    new = service.create_api_key(Table(), principal, body.name)
    audit_target(request, "api_key", new.item["id"], name=body.name)
    return {**service.api_key_view(new.item), "key": new.plaintext}


@router.get("", name="v0.api_key.list", response_model=PageOf[V0ApiKey], summary="List API keys")
async def list_api_keys(principal: Manager, params: Pages) -> dict[str, Any]:
    """The organization's API keys in creation order, a numbered page at a time. Only each key's
    prefix is shown, never the key."""
    data, total = service.list_api_keys(
        Table(), principal.org_id, offset=params.offset, limit=params.page_size
    )
    return page_body(data, total=total, params=params)


@router.delete(
    "/{keyId}",
    name="v0.api_key.revoke",
    status_code=204,
    response_class=Response,
    summary="Revoke and delete an API key",
    responses=errors(e404="not_found: no such API key in this organization"),
)
async def delete_api_key(key_id: KeyId, request: Request, principal: Manager) -> Response:
    """Revoke the key for good: it is refused within the authorizer's cache time (30 s). A key may
    revoke itself. Returns 204 No Content."""
    audit_target(request, "api_key", key_id)
    service.revoke_api_key(Table(), principal.org_id, key_id)
    return Response(status_code=204)
