"""Usage, the AWS cost estimate and the monthly invoices (``/api/v1/billing``; docs/billing.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.api.schemas.billing import BillingStatus, Invoice
from mailroom.domain.principal import Principal
from mailroom.services import billing
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["billing"])
Reader = Annotated[Principal, Depends(require("billing:read"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
InvoiceId = Annotated[str, Path(description="The invoice's id (invc_...)", max_length=64)]
INVOICE_404 = "not_found: no such invoice in this organization"
INVOICE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The invoice: JSON (the default, `format=json`), or CSV with `format=csv` or "
        "`Accept: text/csv`; a `format` given makes it a download (Content-Disposition)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "headers": {
            "Content-Disposition": {
                "description": 'attachment; filename="invc_....csv" (or .json), when format is given',
                "schema": {"type": "string"},
            }
        },
    },
    **errors(e404=INVOICE_404),
}


@router.get(
    "/billing/status",
    name="billing.status",
    response_model=One[BillingStatus],
    summary="Usage this month against the plan, and its AWS cost estimate",
)
async def billing_status(principal: Reader) -> dict[str, Any]:
    """The organization's plan and price, this calendar month (UTC), what it used (messages
    received, sent and imported, verifications, API requests, storage at its peak and now), its
    limits with what is used of each, and an estimate of the AWS cost this usage caused so far,
    per service, from the price table of the stack's region (formula in docs/billing.md)."""
    return one(billing.status(Table(), principal.org_id))


@router.get(
    "/billing/invoices",
    name="billing.invoice_list",
    response_model=ListOf[Invoice],
    summary="List the monthly invoices",
    responses=errors(e422="invalid_cursor, validation_error"),
)
async def list_invoices(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The organization's closed months, newest first. A month is closed on the first of the next
    (00:15 UTC) with its usage, the plan's price then and the AWS cost estimate; the running month
    is in `GET /api/v1/billing/status`."""
    listing = billing.list_invoices(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(request, listing.page, listing.views, per_page=page_query.per_page, total=None)


@router.get(
    "/billing/invoices/{invoice_id}",
    name="billing.invoice_get",
    response_model=One[Invoice],
    summary="Get or download an invoice (JSON or CSV)",
    responses=INVOICE_RESPONSES,
)
async def get_invoice(
    request: Request,
    response: Response,
    principal: Reader,
    invoice_id: InvoiceId,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="json or csv: download the invoice as a file in that format"),
    ] = None,
) -> Any:
    """One monthly statement: usage, the plan and its price, the AWS cost estimate and the amount
    due. `format=csv` (or `Accept: text/csv`) answers it as CSV, one row per figure
    (section, item, quantity, unit, amount_usd); `format=json` as a JSON file download."""
    view = billing.get_invoice(Table(), principal.org_id, invoice_id)
    wants_csv = format == "csv" or (format is None and _prefers_csv(request.headers.get("accept", "")))
    if wants_csv:
        return Response(
            content=billing.invoice_csv(view),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{view["id"]}.csv"',
                "Cache-Control": "private, no-store",
            },
        )
    if format == "json":
        response.headers["Content-Disposition"] = f'attachment; filename="{view["id"]}.json"'
    return one(view)


def _prefers_csv(accept: str) -> bool:
    """``Accept`` naming text/csv before (or without) application/json."""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "text/csv" not in types:
        return False
    return "application/json" not in types or types.index("text/csv") < types.index("application/json")
