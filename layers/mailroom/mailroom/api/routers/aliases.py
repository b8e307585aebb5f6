"""Aliases (``/api/v1/aliases``): an address on a hosted domain → mailboxes or external addresses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from mailroom import errors
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import aliases as service
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import aliases as store
from mailroom.store import domains
from mailroom.store.table import Table

router = api_router("/api/v1/aliases", tags=["aliases"])
WRITE = require("mailboxes:write")
READ = require("mailboxes:read")


class CreateAlias(Strict):
    address: str = Field(min_length=3, max_length=320, description="local-part@a-domain-of-this-organization")
    goto: list[str] = Field(
        min_length=1, max_length=service.MAX_TARGETS, description="Mailboxes, aliases or external addresses"
    )
    active: bool = True
    description: str | None = Field(default=None, max_length=500)


class UpdateAlias(Strict):
    goto: list[str] | None = Field(default=None, min_length=1, max_length=service.MAX_TARGETS)
    active: bool | None = None
    description: str | None = Field(default=None, max_length=500)


class AliasView(BaseModel):
    id: str
    address: str
    local_part: str
    domain: str
    domain_id: str
    goto: list[str]
    active: bool
    description: str | None
    created_at: str
    updated_at: str


@router.get("", name="alias.list", response_model=ListOf[AliasView], summary="List aliases")
async def list_aliases(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    domain_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    table = Table()
    if domain_id is not None:
        domain = domains.get(table, principal.org_id, domain_id)
        if domain is None:
            raise errors.not_found("Domain")
        total = int(domain.get("alias_count", 0))
    else:
        total = int(mailbox_service.load_org(table, principal.org_id).get("alias_count", 0))
    page = store.list_page(
        table,
        principal.org_id,
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        domain_id=domain_id,
    )
    return pagination.envelope(
        request, page, [service.alias_view(a) for a in page.items], per_page=page_query.per_page, total=total
    )


@router.post(
    "", name="alias.create", status_code=201, response_model=One[AliasView], summary="Create an alias"
)
async def create_alias(
    body: CreateAlias, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "alias", "-", address=body.address)
    alias = service.create_alias(
        Table(),
        principal.org_id,
        service.NewAlias(
            address=body.address, goto=body.goto, active=body.active, description=body.description
        ),
    )
    audit_target(request, "alias", alias["id"], address=alias["address"])
    return one(service.alias_view(alias))


@router.get("/{alias_id}", name="alias.get", response_model=One[AliasView], summary="Get an alias")
async def get_alias(alias_id: str, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    return one(service.alias_view(service.load(Table(), principal.org_id, alias_id)))


@router.patch(
    "/{alias_id}",
    name="alias.update",
    response_model=One[AliasView],
    summary="Change targets, active, description",
)
async def update_alias(
    alias_id: str, body: UpdateAlias, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    table = Table()
    alias = service.load(table, principal.org_id, alias_id)
    audit_target(request, "alias", alias_id, address=alias["address"])
    fields: dict[str, Any] = {}
    for name in ("goto", "active"):
        if name in body.model_fields_set:
            if getattr(body, name) is None:
                raise errors.validation(f"{name} cannot be null", field=name)
            fields[name] = getattr(body, name)
    if "description" in body.model_fields_set:
        fields["description"] = body.description
    return one(service.alias_view(service.update_alias(table, alias, fields)))


@router.delete("/{alias_id}", name="alias.delete", status_code=204, summary="Delete an alias")
async def delete_alias(
    alias_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    table = Table()
    alias = service.load(table, principal.org_id, alias_id)
    audit_target(request, "alias", alias_id, address=alias["address"])
    service.delete_alias(table, alias)
    return Response(status_code=204)
