"""The organization's suppression list (``/api/v1/suppressions``): addresses that hard-bounced or
complained, which no mailbox of the organization may send to. Entries are added by SES delivery
events; an operator lists them and removes one that is known to accept mail again."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import suppressions as service
from mailroom.store.table import Table

router = api_router("/api/v1/suppressions", tags=["suppressions"])
READ = require("mailboxes:read")
WRITE = require("mailboxes:write")
Address = Annotated[str, Path(max_length=320, description="The suppressed address (case is ignored)")]
NOT_FOUND = errors(e404="not_found: the address is not suppressed")


class Source(BaseModel):
    """The message whose delivery event suppressed the address, and what SES reported."""

    model_config = ConfigDict(extra="allow")

    message_id: str | None = None
    mailbox_id: str | None = None
    ses_message_id: str | None = None
    bounce_type: str | None = None
    bounce_sub_type: str | None = None
    smtp_status: str | None = None
    diagnostic_code: str | None = None
    complaint_feedback_type: str | None = None


class SuppressionView(BaseModel):
    address: str
    reason: Literal["hard_bounce", "complaint"]
    source: Source
    event_at: Timestamp | None = Field(description="When SES reported the bounce or complaint")
    created_at: Timestamp


@router.get(
    "",
    name="suppression.list",
    response_model=ListOf[SuppressionView],
    response_model_exclude_unset=True,
    summary="List suppressed addresses",
)
async def list_suppressions(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """Addresses no mailbox of the organization may send to (sending answers 422
    recipient_suppressed), in address order, with why and since when."""
    page, total = service.list_suppressions(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.suppression_view(item) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.get(
    "/{address}",
    name="suppression.get",
    response_model=One[SuppressionView],
    response_model_exclude_unset=True,
    summary="Whether an address is suppressed, and why",
    responses=NOT_FOUND,
)
async def get_suppression(address: Address, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    """The suppression of one address (404 when mail may be sent to it)."""
    return one(service.suppression_view(service.load(Table(), principal.org_id, address)))


@router.delete(
    "/{address}",
    name="suppression.delete",
    status_code=204,
    summary="Allow sending to an address again",
    responses=NOT_FOUND,
)
async def delete_suppression(
    address: Address, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    """Lift the suppression of an address known to accept mail again; a new hard bounce or complaint
    suppresses it again."""
    audit_target(request, "suppression", address.strip().lower())
    service.lift(Table(), principal.org_id, address)
    return Response(status_code=204)
