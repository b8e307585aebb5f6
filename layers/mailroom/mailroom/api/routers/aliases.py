"""Aliases (``/api/v1/aliases``): an address on a hosted domain → mailboxes or external addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import aliases as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1/aliases", tags=["aliases"])
WRITE = "mailboxes:write"
READ = "mailboxes:read"

Target = Annotated[str, StringConstraints(max_length=320)]
GOTO_RULES = (
    "Where the alias's mail goes: mailboxes, aliases or external addresses (at most "
    f"{service.MAX_TARGETS}). A target on one of the organization's domains must be a mailbox or alias "
    "of it (422 unknown_target); the alias itself is refused (alias_loop)."
)


class CreateAlias(Strict):
    address: str = Field(
        min_length=3,
        max_length=320,
        json_schema_extra={"pattern": r"^[a-zA-Z0-9._%+-]{1,64}@[^\s@]+\.[^\s@]+$"},
        description="local-part@a-domain-of-this-organization (local part as for a mailbox: 422 "
        "invalid_address, unknown_domain)",
    )
    goto: list[Target] = Field(min_length=1, max_length=service.MAX_TARGETS, description=GOTO_RULES)
    active: bool = True
    description: str | None = Field(default=None, max_length=500)


class UpdateAlias(Strict):
    """Only the fields sent change; ``goto`` and ``active`` cannot be null, ``description: null``
    clears it."""

    goto: list[Target] | None = Field(
        default=None, min_length=1, max_length=service.MAX_TARGETS, description=GOTO_RULES
    )
    active: bool | None = None
    description: str | None = Field(default=None, max_length=500)

    @field_validator("goto", "active")
    @classmethod
    def not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields sent (defaults are not validated): an explicit null is refused.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value

    def fields(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in ("goto", "active", "description")
            if name in self.model_fields_set
        }


class ReplaceAlias(Strict):
    """mailcow's alias update (PUT): ``goto`` and ``active`` must be sent; ``description`` left out
    is cleared; ``address``, when sent, must be the alias's own (an alias keeps its address)."""

    address: str | None = Field(default=None, max_length=320, description="The alias's address, if sent")
    goto: list[Target] = Field(min_length=1, max_length=service.MAX_TARGETS, description=GOTO_RULES)
    active: bool
    description: str | None = Field(default=None, max_length=500, description="Left out or null: none")

    def fields(self) -> dict[str, Any]:
        return {"goto": self.goto, "active": self.active, "description": self.description}


class AliasView(BaseModel):
    id: str
    address: str
    local_part: str
    domain: str
    domain_id: str
    goto: list[str]
    active: bool
    description: str | None
    created_at: Timestamp
    updated_at: Timestamp


# --- loading an alias -------------------------------------------------------------------------------

AliasId = Annotated[str, Path(max_length=64, description="The alias's id (als_...)")]
NOT_FOUND = errors(e404="not_found: no such alias in this organization")
TARGET_ERRORS = "invalid_alias_target, unknown_target, alias_loop, too_many_targets, validation_error"


@dataclass(frozen=True, slots=True)
class LoadedAlias:
    principal: Principal
    item: Item


def _alias_with(scope: str) -> Callable[[Request, str], LoadedAlias]:
    authorized = require(scope)

    def load(request: Request, alias_id: AliasId) -> LoadedAlias:
        principal = authorized(request)
        return LoadedAlias(principal, service.load(Table(), principal.org_id, alias_id))

    return load


ReadableAlias = Annotated[LoadedAlias, Depends(_alias_with(READ))]
WritableAlias = Annotated[LoadedAlias, Depends(_alias_with(WRITE))]


# --- routes -----------------------------------------------------------------------------------------


@router.get(
    "",
    name="alias.list",
    response_model=ListOf[AliasView],
    summary="List aliases",
    responses=errors(e404="not_found: domain_id names no domain of this organization"),
)
async def list_aliases(
    request: Request,
    principal: Annotated[Principal, Depends(require(READ))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    domain_id: Annotated[
        str | None, Query(max_length=64, description="Only the aliases of this domain (dom_...)")
    ] = None,
) -> dict[str, Any]:
    """The organization's aliases (or one domain's), a page at a time; `meta.total` counts them."""
    page, total = service.list_aliases(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor, domain_id=domain_id
    )
    data = [service.alias_view(a) for a in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.post(
    "",
    name="alias.create",
    status_code=201,
    response_model=One[AliasView],
    summary="Create an alias",
    responses=errors(
        e409="address_taken: the address is a mailbox, alias or pending invite already",
        e422=f"invalid_address, unknown_domain, {TARGET_ERRORS}; alias_limit_reached, "
        "domain_alias_limit_reached: a limit would be exceeded",
    ),
)
async def create_alias(
    body: CreateAlias, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """An address on one of the organization's domains that delivers to the `goto` targets, counted
    against the domain's and the organization's alias limits."""
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


@router.get(
    "/{alias_id}",
    name="alias.get",
    response_model=One[AliasView],
    summary="Get an alias",
    responses=NOT_FOUND,
)
async def get_alias(alias: ReadableAlias) -> dict[str, Any]:
    """An alias and its targets."""
    return one(service.alias_view(alias.item))


@router.patch(
    "/{alias_id}",
    name="alias.update",
    response_model=One[AliasView],
    summary="Change targets, active, description",
    responses={**NOT_FOUND, **errors(e422=TARGET_ERRORS)},
)
async def update_alias(body: UpdateAlias, request: Request, alias: WritableAlias) -> dict[str, Any]:
    """Change the fields sent; `goto` replaces every target."""
    audit_target(request, "alias", alias.item["id"], address=alias.item["address"])
    return one(service.alias_view(service.update_alias(Table(), alias.item, body.fields())))


@router.put(
    "/{alias_id}",
    name="alias.replace",
    response_model=One[AliasView],
    summary="Replace targets, active, description (mailcow's full update)",
    responses={
        **NOT_FOUND,
        **errors(e422=f"{TARGET_ERRORS}; a required field is missing or address names another alias"),
    },
)
async def replace_alias(body: ReplaceAlias, request: Request, alias: WritableAlias) -> dict[str, Any]:
    """mailcow's `PUT /aliases/{id}`: the alias as a whole. `goto` and `active` are required;
    `description` left out is cleared."""
    audit_target(request, "alias", alias.item["id"], address=alias.item["address"])
    service.check_same_address(alias.item, body.address)
    return one(service.alias_view(service.update_alias(Table(), alias.item, body.fields())))


@router.delete(
    "/{alias_id}", name="alias.delete", status_code=204, summary="Delete an alias", responses=NOT_FOUND
)
async def delete_alias(request: Request, alias: WritableAlias) -> Response:
    """Delete the alias; its address is free again."""
    audit_target(request, "alias", alias.item["id"], address=alias.item["address"])
    service.delete_alias(Table(), alias.item)
    return Response(status_code=204)
