"""Ops tokens: ``POST/GET /api/v1/tokens``, ``DELETE /api/v1/tokens/{id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from mailroom import clock, errors
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import OPS_SCOPES, invalid_scopes
from mailroom.errors import Forbidden
from mailroom.services.tokens import issue_ops_token
from mailroom.store import organizations, tokens
from mailroom.store.table import Table

router = api_router("/api/v1/tokens", tags=["tokens"])
MANAGE = require("tokens:manage")


class CreateToken(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=len(OPS_SCOPES))
    expires_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with a time zone.")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)

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
    type: str
    prefix: str
    last_four: str
    scopes: list[str]
    mailbox_id: str | None
    rate_limit_per_minute: int | None
    expires_at: str | None
    used_at: str | None
    created_at: str
    created_by: str | None


class NewTokenView(TokenView):
    token: str = Field(description="The token itself. Shown once; only its SHA-256 is stored.")


@router.post(
    "",
    name="token.create",
    status_code=201,
    response_model=One[NewTokenView],
    summary="Create an ops token (the plaintext is returned once)",
)
async def create_token(
    body: CreateToken, request: Request, principal: Annotated[Principal, Depends(MANAGE)]
) -> dict[str, Any]:
    escalated = sorted(set(body.scopes) - principal.scopes)
    if escalated:
        raise Forbidden(
            "scope_escalation",
            f"A token cannot grant scopes it does not hold: {', '.join(escalated)}.",
            hint="Create the token with a token that holds those scopes.",
        )
    if body.expires_at is not None and body.expires_at <= clock.utcnow():
        raise errors.validation("expires_at must be in the future", field="expires_at")
    new = issue_ops_token(
        Table(),
        org_id=principal.org_id,
        name=body.name,
        scopes=body.scopes,
        created_by=principal.token_id,
        expires_at=body.expires_at if isinstance(body.expires_at, datetime) else None,
        rate_limit_per_minute=body.rate_limit_per_minute,
    )
    audit_target(request, "token", new.item["id"], name=body.name)
    return one({**tokens.public_view(new.item), "token": new.plaintext})


@router.get(
    "", name="token.list", response_model=ListOf[TokenView], summary="List ops tokens (never the secret)"
)
async def list_tokens(
    request: Request,
    principal: Annotated[Principal, Depends(MANAGE)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    page = tokens.list_page(table, principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor)
    org = organizations.get(table, principal.org_id) or {}
    return pagination.envelope(
        request,
        page,
        [tokens.public_view(i) for i in page.items],
        per_page=page_query.per_page,
        total=int(org.get("token_count", 0)),
    )


@router.delete("/{token_id}", name="token.revoke", status_code=204, summary="Revoke a token")
async def revoke_token(
    token_id: str, request: Request, principal: Annotated[Principal, Depends(MANAGE)]
) -> Response:
    audit_target(request, "token", token_id)
    if not tokens.delete(Table(), principal.org_id, token_id):
        raise errors.not_found("Token")
    return Response(status_code=204)
