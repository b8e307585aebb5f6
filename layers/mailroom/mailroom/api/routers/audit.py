"""``GET /api/v1/audit-log``: newest first, filterable by action, actor and time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime, BaseModel

from mailroom import errors
from mailroom.api import pagination
from mailroom.api.models import ListOf
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.store import audit, organizations
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["audit"])


class AuditRecord(BaseModel):
    id: str
    action: str
    actor: dict[str, Any] | None
    target: dict[str, Any] | None
    request_id: str | None
    source_ip: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    outcome: dict[str, Any] | None
    time: str


@router.get(
    "/audit-log",
    name="audit.list",
    response_model=ListOf[AuditRecord],
    summary="The organization's audit log (total is null when filtered)",
)
async def list_audit_log(
    request: Request,
    principal: Annotated[Principal, Depends(require("audit:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    action: Annotated[str | None, Query(max_length=100, description="e.g. token.create")] = None,
    actor: Annotated[str | None, Query(max_length=64, description="Token id of the actor")] = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601, inclusive")] = None,
) -> dict[str, Any]:
    if action and actor:
        raise errors.validation("filter by action or by actor, not both", field="actor")
    if since and until and since > until:
        raise errors.validation("since must not be after until", field="since")
    table = Table()
    page = audit.list_page(
        table,
        principal.org_id,
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        action=action,
        actor=actor,
        since_ms=int(since.timestamp() * 1000) if since else None,
        until_ms=int(until.timestamp() * 1000) if until else None,
    )
    filtered = any(v is not None for v in (action, actor, since, until))
    total = (
        None if filtered else int((organizations.get(table, principal.org_id) or {}).get("audit_count", 0))
    )
    return pagination.envelope(
        request, page, [audit.public_view(i) for i in page.items], per_page=page_query.per_page, total=total
    )
