"""The organization's suppression list (``/api/v1/suppressions``): addresses that hard-bounced or
complained, which no mailbox of the organization may send to. Entries are added by SES delivery
events; an operator lists them and removes one that is known to accept mail again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from mailroom import errors
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import suppressions as store
from mailroom.store.table import Item, Table

router = api_router("/api/v1/suppressions", tags=["suppressions"])
READ = require("mailboxes:read")
WRITE = require("mailboxes:write")


class SuppressionView(BaseModel):
    address: str
    reason: str
    source: dict[str, Any]
    event_at: str | None
    created_at: str


def suppression_view(item: Item) -> dict[str, Any]:
    return {
        "address": item["address"],
        "reason": item["reason"],
        "source": item.get("source") or {},
        "event_at": item.get("event_at"),
        "created_at": item["created_at"],
    }


@router.get(
    "",
    name="suppression.list",
    response_model=ListOf[SuppressionView],
    summary="List suppressed addresses (by address)",
)
async def list_suppressions(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    total = int(mailbox_service.load_org(table, principal.org_id).get("suppression_count", 0))
    page = store.list_page(table, principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor)
    return pagination.envelope(
        request,
        page,
        [suppression_view(item) for item in page.items],
        per_page=page_query.per_page,
        total=max(0, total),
    )


@router.get(
    "/{address}",
    name="suppression.get",
    response_model=One[SuppressionView],
    summary="Whether an address is suppressed, and why",
)
async def get_suppression(address: str, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    item = store.get(Table(), principal.org_id, address.strip())
    if item is None:
        raise errors.not_found("Suppression")
    return one(suppression_view(item))


@router.delete(
    "/{address}",
    name="suppression.delete",
    status_code=204,
    summary="Allow sending to an address again",
)
async def delete_suppression(
    address: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    address = address.strip().lower()
    audit_target(request, "suppression", address)
    if not store.remove(Table(), principal.org_id, address):
        raise errors.not_found("Suppression")
    return Response(status_code=204)
