"""Ops tokens: ``POST/GET /api/v1/tokens``, ``DELETE /api/v1/tokens/{id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import OPS_SCOPES, invalid_scopes
from mailroom.services import tokens as service
from mailroom.store.table import Table

router = api_router("/api/v1/tokens", tags=["tokens"])
MANAGE = require("tokens:manage")

OpsScope = Annotated[str, Field(json_schema_extra={"enum": sorted(OPS_SCOPES)})]


class CreateToken(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[OpsScope] = Field(
        min_length=1,
        max_length=len(OPS_SCOPES),
        description="Ops scopes, at least one; only scopes the calling token holds "
        "(else 403 scope_escalation)",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 with a time zone, in the future; omit for a token that does not expire",
    )
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=100_000, description="Requests per minute; omit for the stack's default"
    )

    @field_validator("scopes")
    @classmethod
    def known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = invalid_scopes(scopes, OPS_SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
        return scopes


class TokenView(BaseModel):
    id: str
    name: str
    type: Literal["ops"]
    prefix: str = Field(description="The token's first characters, to recognize it")
    last_four: str
    scopes: list[str]
    mailbox_id: None = Field(description="Always null for an ops token")
    rate_limit_per_minute: int | None
    expires_at: Timestamp | None
    used_at: Timestamp | None = Field(
        description="Last use, as seen by the authorizer (cached a few minutes)"
    )
    created_at: Timestamp
    created_by: str | None = Field(description="Id of the token that made it; null for the first admin token")


class NewTokenView(TokenView):
    token: str = Field(description="The token itself (mr_live_...). Shown once; only its SHA-256 is stored.")


@router.post(
    "",
    name="token.create",
    status_code=201,
    response_model=One[NewTokenView],
    summary="Create an ops token",
    responses=errors(
        e403="insufficient_scope, wrong_token_type; scope_escalation: a scope the caller lacks; "
        "token_scope_blocked_by_plan: a scope the organization's plan excludes"
    ),
)
async def create_token(
    body: CreateToken, request: Request, principal: Annotated[Principal, Depends(MANAGE)]
) -> dict[str, Any]:
    """A new ops token (mr_live_...) with some of the caller's scopes, for an automation or an agent.
    The plaintext is returned once; keep it secret."""
    new = service.create_token(
        Table(),
        principal,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at if isinstance(body.expires_at, datetime) else None,
        rate_limit_per_minute=body.rate_limit_per_minute,
    )
    audit_target(request, "token", new.item["id"], name=body.name)
    return one({**service.token_view(new.item), "token": new.plaintext})


@router.get("", name="token.list", response_model=ListOf[TokenView], summary="List ops tokens")
async def list_tokens(
    request: Request,
    principal: Annotated[Principal, Depends(MANAGE)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The organization's ops tokens (never their secret), oldest first."""
    page, total = service.list_tokens(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.token_view(i) for i in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.delete(
    "/{token_id}",
    name="token.revoke",
    status_code=204,
    summary="Revoke a token",
    responses=errors(e404="not_found: no such ops token in this organization"),
)
async def revoke_token(
    token_id: Annotated[str, Path(max_length=64, description="The token's id (tok_...)")],
    request: Request,
    principal: Annotated[Principal, Depends(MANAGE)],
) -> Response:
    """Revoke a token at once; requests with it get 401 (within the authorizer's cache time)."""
    audit_target(request, "token", token_id)
    service.revoke_token(Table(), principal.org_id, token_id)
    return Response(status_code=204)
