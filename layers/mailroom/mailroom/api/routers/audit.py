"""``GET /api/v1/audit-log``: newest first, filterable by action, actor and time."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailroom.api import pagination
from mailroom.api.models import Links, Meta, Timestamp, errors
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import audit as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["audit"])


class Actor(BaseModel):
    token_id: str = Field(description="The token's id, or the mailbox's or invite's for a token-less request")
    type: Literal["ops", "message", "api_key", "mailbox", "invite", "operator"] = Field(
        description="The token's type; mailbox (a sign-in), invite (a redeem) or operator (the signed "
        "support API) for token-less requests"
    )
    name: str


class Target(BaseModel):
    """What the request acted on, with details that depend on the action (address, domain, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="e.g. domain, mailbox, token, invite, alias, delete_intent")
    id: str = Field(description='Its id; "-" when the request failed before there was one')


class Outcome(BaseModel):
    status: int = Field(description="The HTTP status answered")
    result: Literal["success", "failure"]
    error_code: str | None
    replayed: bool = Field(description="An Idempotency-Key replay of an earlier request")


class AuditRecord(BaseModel):
    id: str
    action: str = Field(description="The route's name, e.g. domain.create, mailbox.sign_in")
    actor: Actor | None
    target: Target | None = Field(description="null when the request was refused before reaching a resource")
    request_id: str | None
    source_ip: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    outcome: Outcome | None
    time: Timestamp


class AuditMeta(Meta):
    total: int | None = Field(description="Records in the log; null when a filter is applied")
    last_page: int | None = Field(description="null when a filter is applied")


class AuditPage(BaseModel):
    data: list[AuditRecord]
    links: Links
    meta: AuditMeta


@router.get(
    "/audit-log",
    name="audit.list",
    response_model=AuditPage,
    summary="The organization's audit log",
    responses=errors(
        e422="validation_error: both action and actor given, since after until, or a bad cursor"
    ),
)
async def list_audit_log(
    request: Request,
    principal: Annotated[Principal, Depends(require("audit:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    action: Annotated[
        str | None, Query(max_length=100, description="Only this action, e.g. token.create (not with actor)")
    ] = None,
    actor: Annotated[
        str | None,
        Query(max_length=64, description="Only this actor's records: a token id (not with action)"),
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with a time zone, inclusive")] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="ISO 8601 with a time zone, inclusive; not before since")
    ] = None,
) -> dict[str, Any]:
    """Every mutating request of the organization (successes and failures), newest first: who did
    what, to what, with which outcome. Filter by action or by actor, and by time. Records are kept
    for the stack's audit retention."""
    page, total = service.list_records(
        Table(),
        principal.org_id,
        service.Filters(action=action, actor=actor, since=since, until=until),
        per_page=page_query.per_page,
        cursor=page_query.cursor,
    )
    data = [service.record_view(i) for i in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)
