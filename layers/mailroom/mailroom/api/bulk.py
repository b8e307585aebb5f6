"""Batch endpoints (``domains:bulk-add``, ``mailboxes:bulk``, ``mailboxes/invites:bulk``): a batch is
validated as a whole, and when any row is bad nothing is created and the 422 names every row."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mailroom.api.models import ErrorBody


class RowError(BaseModel):
    code: str = Field(description="e.g. duplicate_row, address_taken, domain_taken, unknown_domain")
    message: str


class CheckedRow(BaseModel):
    """A row as validation saw it. Mailbox and invite rows name their ``address``, domain rows
    their ``domain``."""

    index: int = Field(ge=0, description="Position of the row in the request")
    status: Literal["valid", "invalid"]
    error: RowError | None
    address: str | None = None
    domain: str | None = None


class BulkErrorBody(ErrorBody):
    rows: list[CheckedRow] | None = Field(
        default=None, description="With bulk_validation_failed: every row, valid or not, in order."
    )


class BulkErrorEnvelope(BaseModel):
    """A batch's 422: ``bulk_validation_failed`` with ``rows``, or ``validation_error`` with ``fields``
    (a row does not match the schema) or a limit's code."""

    error: BulkErrorBody


BULK_422: dict[int | str, dict[str, Any]] = {
    422: {
        "model": BulkErrorEnvelope,
        "description": "bulk_validation_failed: at least one row is invalid (duplicate_row, taken, ...); "
        "`error.rows` lists every row and nothing was created. validation_error: the body does not match "
        "the schema (`error.fields`). A limit's code when the whole batch would exceed it.",
    }
}


def bulk_invalid(request: Request, rows: list[dict[str, Any]], *, what: str) -> JSONResponse:
    """422 naming every row; nothing was created."""
    invalid = [row for row in rows if row["status"] == "invalid"]
    request.state.error_code = "bulk_validation_failed"
    return JSONResponse(
        status_code=422,
        content={
            "error": {
                "code": "bulk_validation_failed",
                "message": f"{len(invalid)} of {len(rows)} rows are invalid; no {what} was created.",
                "hint": "Fix or remove the rows listed in 'rows' and send the batch again.",
                "request_id": request.state.request_id,
                "retryable": False,
                "rows": rows,
            }
        },
    )
