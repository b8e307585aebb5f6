"""Bulk IMAP migrations (``/api/v1/migrations/bulk``, trekmail-migrations-api.txt's "Bulk Migration
API"): preview CSV-style data, start a batch, list and read batches with per-job status, cancel,
retry, resume, delete, and a failed job's new source password.

Writes count against the migration write bucket (10 per minute per token) like single migrations.
``POST /migrations/bulk`` needs the ``Idempotency-Key`` header as every POST does, and honours the
spec's ``idempotency_key`` body field besides: a second start with the same value (whatever its
header) answers with the batch the first one started instead of starting another.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.routers.migrations import WRITE, Password, Provider, Security
from mailroom.domain import bulk_migrations as bulk
from mailroom.domain.principal import Principal
from mailroom.services import bulk_migrations as service
from mailroom.store.table import Table

router = api_router("/api/v1/migrations/bulk", tags=["migrations"])
READ = require("migrations:read")

# Byte for byte: a password cell at the start or end of a line must not lose its spaces.
Data = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=bulk.MAX_DATA_CHARS)]


class PreviewBulk(Strict):
    data: Data = Field(
        description="One row per line: source_email,source_password,destination_email (with per_row_server: "
        "...,source_host,source_port,source_security). A header row is skipped."
    )
    provider: Provider | None = Field(default=None, description="A preset fills host, port, security")
    source_host: str | None = Field(default=None, min_length=1, max_length=253)
    source_port: int | None = Field(default=None, ge=1, le=65535, description="Default 993")
    source_security: Security | None = Field(default=None, description="Default ssl")
    per_row_server: bool = Field(default=False, description="Each row has its own server (6 columns)")


class StartBulk(PreviewBulk):
    name: str | None = Field(
        default=None, max_length=bulk.MAX_BATCH_NAME_LENGTH, description="Generated if empty"
    )
    folder_strategy: Literal["all", "standard", "inbox_only"] = Field(default="all")
    import_since: date | None = Field(default=None, description="Only messages received on or after")
    skip_duplicates: bool = Field(default=True)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The same value again returns the batch it started instead of a second batch",
    )


class JobPassword(Strict):
    source_password: Password = Field(description="The source account's password (never returned)")


class PreviewRow(BaseModel):
    row: int = Field(description="Line number in data")
    category: str = Field(description=", ".join(c.value for c in bulk.RowCategory))
    source_email: str | None = Field(description="Masked")
    destination_email: str | None
    destination_mailbox_id: str | None
    source_host: str | None
    source_port: int | None
    source_security: str | None
    message: str | None


class Limits(BaseModel):
    max_rows_per_batch: int
    concurrent_per_account: int
    global_capacity: int


class TimeEstimate(BaseModel):
    estimated_seconds: int
    human: str
    concurrency: int
    waves: int
    messages: int
    rows_assumed: int
    assumptions: dict[str, Any]


class StorageEstimate(BaseModel):
    estimated_bytes: int
    available_bytes: int
    fits: bool


class PreviewResult(BaseModel):
    provider: str
    counts: dict[str, int] = Field(description="Rows per category, and total")
    can_start: bool
    rows: list[PreviewRow]
    limits: Limits
    time_estimate: TimeEstimate
    storage: StorageEstimate


class BatchJobView(BaseModel):
    id: str = Field(description="A migration id: GET /api/v1/migrations/{id} has its folders")
    row: int
    source_email: str = Field(description="Masked: j***e@gmail.com")
    destination_email: str | None
    mailbox_id: str
    source_host: str
    source_port: int
    source_security: str
    status: str
    queued: bool = Field(description="Waiting for a slot (pending, not started yet)")
    progress: int
    total_messages: int
    imported_messages: int
    failed_messages: int
    skipped_duplicates: int
    error_code: str | None
    error_reason: str | None
    error_message: str | None
    attempt: int
    started_at: str | None
    finished_at: str | None
    updated_at: str | None


class BatchView(BaseModel):
    id: str
    name: str
    status: str = Field(description=", ".join(s.value for s in bulk.BatchStatus))
    provider: str
    per_row_server: bool
    source_host: str | None
    source_port: int | None
    source_security: str | None
    folder_strategy: str
    import_since: str | None
    skip_duplicates: bool
    total_jobs: int
    counts: dict[str, int] = Field(description="Jobs per status, plus queued, running and total")
    progress: int = Field(description="0-100, the jobs' mean")
    total_messages: int
    imported_messages: int
    failed_messages: int
    skipped_duplicates: int
    rows: dict[str, int] = Field(description="The data's rows per preview category when it started")
    limits: dict[str, int]
    paused: bool
    pause_reason: str | None
    allowed_actions: list[str]
    poll_hint_seconds: int | None
    jobs: list[BatchJobView] | None = Field(description="Every job (null in lists)")
    skipped_rows: list[PreviewRow] | None = Field(
        default=None, description="On start only: the rows not started, and why"
    )
    created_at: str
    updated_at: str | None
    finished_at: str | None


def _request(body: PreviewBulk) -> service.BulkRequest:
    extra: dict[str, Any] = {}
    if isinstance(body, StartBulk):
        extra = {
            "name": body.name,
            "folder_strategy": body.folder_strategy,
            "import_since": body.import_since,
            "skip_duplicates": body.skip_duplicates,
            "idempotency_key": body.idempotency_key,
        }
    return service.BulkRequest(
        data=body.data,
        provider=body.provider,
        source_host=body.source_host,
        source_port=body.source_port,
        source_security=body.source_security,
        per_row_server=body.per_row_server,
        **extra,
    )


@router.post(
    "/preview",
    name="bulk_migration_previewed",
    response_model=PreviewResult,
    summary="Validate bulk migration data: every row's category, limits, time and storage estimates",
)
async def preview_bulk(
    body: PreviewBulk, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "bulk_migration_preview", body.provider or "generic_imap")
    return service.preview(Table(), principal.org_id, _request(body))


@router.post(
    "",
    name="bulk_migration_started",
    status_code=201,
    response_model=One[BatchView],
    summary="Start a bulk migration batch (its jobs run under the concurrency limits)",
)
async def start_bulk(
    body: StartBulk, request: Request, response: Response, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    started = service.start(Table(), principal.org_id, _request(body))
    if started.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    audit_target(
        request,
        "bulk_migration",
        started.view["id"],
        jobs=started.view["total_jobs"],
        replayed=started.replayed,
    )
    return one(started.view)


@router.get(
    "",
    name="bulk_migration.list",
    response_model=ListOf[BatchView],
    summary="List bulk migration batches, newest first",
)
async def list_bulk(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    page, views, total = service.list_page(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=total)


@router.get(
    "/{batch_id}",
    name="bulk_migration.get",
    response_model=One[BatchView],
    summary="A batch with every job's status, progress and error",
)
async def get_bulk(batch_id: str, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    return one(service.get_view(Table(), principal.org_id, batch_id))


@router.delete(
    "/{batch_id}",
    name="bulk_migration_deleted",
    status_code=204,
    summary="Delete a settled batch and its jobs' records",
)
async def delete_bulk(
    batch_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    audit_target(request, "bulk_migration", batch_id)
    service.delete(Table(), principal.org_id, batch_id)
    return Response(status_code=204)


@router.post(
    "/{batch_id}:cancel",
    name="bulk_migration_cancelled",
    response_model=One[BatchView],
    summary="Cancel a batch: waiting jobs are cancelled, running ones stopped",
)
async def cancel_bulk(
    batch_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "bulk_migration", batch_id)
    return one(service.cancel(Table(), principal.org_id, batch_id))


@router.post(
    "/{batch_id}:retry",
    name="bulk_migration_retried",
    response_model=One[BatchView],
    summary="Retry a settled batch's failed jobs (and a cancelled batch's cancelled ones)",
)
async def retry_bulk(
    batch_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "bulk_migration", batch_id)
    return one(service.retry(Table(), principal.org_id, batch_id))


@router.post(
    "/{batch_id}:resume",
    name="bulk_migration_resumed",
    response_model=One[BatchView],
    summary="Resume a batch paused after repeated connection or sign-in failures",
)
async def resume_bulk(
    batch_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "bulk_migration", batch_id)
    return one(service.resume(Table(), principal.org_id, batch_id))


@router.patch(
    "/{batch_id}/jobs/{job_id}/password",
    name="bulk_migration_job_password_updated",
    response_model=One[BatchJobView],
    summary="Replace the source password of a failed job (then retry the batch)",
)
async def update_job_password(
    batch_id: str,
    job_id: str,
    body: JobPassword,
    request: Request,
    principal: Annotated[Principal, Depends(WRITE)],
) -> dict[str, Any]:
    audit_target(request, "bulk_migration_job", job_id, batch_id=batch_id)
    return one(service.update_job_password(Table(), principal.org_id, batch_id, job_id, body.source_password))
