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

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from mailroom.api import pagination
from mailroom.api.migration_access import Writer
from mailroom.api.models import Day, ListOf, One, Strict, Timestamp, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.migrations import (
    RATE_LIMITED,
    ErrorCode,
    ErrorReason,
    EstimateBasis,
    FolderStrategy,
    JobStatus,
    Password,
    Provider,
    Security,
    documented,
)
from mailroom.domain.bulk.request import MAX_BATCH_NAME_LENGTH, MAX_DATA_CHARS
from mailroom.domain.principal import Principal
from mailroom.services import bulk_migrations as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1/migrations/bulk", tags=["migrations"])
READ = require("migrations:read")
Reader = Annotated[Principal, Depends(READ)]
BatchId = Annotated[
    str, Path(description="The batch's id (`bat_…`).", examples=["bat_01JQ3XD4R8T2W5Y7Z9A1B3C5D7"])
]
JobId = Annotated[
    str, Path(description="A job of the batch (`mig_…`).", examples=["mig_01JQ3XD4R8T2W5Y7Z9A1B3C5D7"])
]

# Byte for byte: a password cell at the start or end of a line must not lose its spaces.
Data = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=MAX_DATA_CHARS)]
RowCategoryName = Literal[
    "valid",
    "malformed_row",
    "wrong_column_count",
    "invalid_source_email",
    "missing_password",
    "invalid_destination",
    "invalid_server",
    "duplicate_row",
    "destination_busy",
]
BatchStatusName = Literal[
    "pending", "processing", "paused", "completed", "completed_with_errors", "failed", "cancelled"
]
NOT_FOUND = "not_found: no such bulk migration in this organization"
REQUEST_ERRORS = (
    "validation_error: a field is not valid (`fields` names it: data without rows, an unknown provider, "
    "generic_imap without source_host, a private host, ...); row_limit_exceeded: more rows than the "
    "organization's migration_batch_rows allows"
)


def _readable(principal: Reader, batch_id: BatchId) -> Item:
    return service.load(Table(), principal.org_id, batch_id)


def _writable(request: Request, principal: Writer, batch_id: BatchId) -> Item:
    audit_target(request, "bulk_migration", batch_id)  # also when it is not found
    return service.load(Table(), principal.org_id, batch_id)


ReadableBatch = Annotated[Item, Depends(_readable)]
WritableBatch = Annotated[Item, Depends(_writable)]


# ----------------------------------------------------------------------------- requests


class BulkData(Strict):
    data: Data = Field(
        description="CSV, one row per line: source_email,source_password,destination_email (with "
        "per_row_server: ...,source_host,source_port,source_security). A header row and blank lines are "
        'skipped; quote a password with a comma ("pa,ss", a quote inside doubled). destination_email '
        "must be an active mailbox of the organization."
    )
    provider: Provider | None = Field(
        default=None, description="A preset fills host, port, security; default generic_imap"
    )
    source_host: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="IMAP host of every row; required for generic_imap without per_row_server. Private and "
        "loopback addresses are refused unless the deployment allows them.",
    )
    source_port: int | None = Field(default=None, ge=1, le=65535, description="Default 993")
    source_security: Security | None = Field(default=None, description="Default ssl")
    per_row_server: bool = Field(
        default=False,
        description="Each row brings its own server (6 columns; blank port and security cells take the "
        "request's, then 993/ssl); provider must then be unset or generic_imap",
    )


class PreviewBulk(BulkData):
    measure_sources: bool = Field(
        default=True,
        description="Log in to some valid rows' sources (at most 10, spread over the data, 5 at a time, "
        "within 15 s) to count their messages and size them for the estimates; false answers at once "
        "with the recorded throughput and default mailbox sizes",
    )


class StartBulk(BulkData):
    name: str | None = Field(
        default=None,
        max_length=MAX_BATCH_NAME_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="No control characters; generated if empty ('Bulk migration <date> UTC (<n> accounts)')",
    )
    folder_strategy: FolderStrategy = Field(
        default="all", description="all; standard: inbox, sent, drafts, trash, spam, archive; inbox_only"
    )
    import_since: date | None = Field(
        default=None, description="Only messages received on or after this day (YYYY-MM-DD)"
    )
    skip_duplicates: bool = Field(
        default=True,
        description="Skip a message the mailbox already has (same Message-ID and content; without a "
        "Message-ID, the same bytes)",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Kept with the batch: the same value again answers with the batch it started (201, "
        "Idempotent-Replayed: true), whatever the Idempotency-Key header; with another request, 409",
    )


class JobPassword(Strict):
    source_password: Password = Field(description="The source account's password (never returned)")


# ----------------------------------------------------------------------------- responses


class RowCounts(BaseModel):
    """Rows per preview category, and ``total``."""

    valid: int = Field(ge=0)
    malformed_row: int = Field(ge=0)
    wrong_column_count: int = Field(ge=0)
    invalid_source_email: int = Field(ge=0)
    missing_password: int = Field(ge=0)
    invalid_destination: int = Field(ge=0)
    invalid_server: int = Field(ge=0)
    duplicate_row: int = Field(ge=0)
    destination_busy: int = Field(ge=0)
    total: int = Field(ge=0)


class PreviewRow(BaseModel):
    row: int = Field(ge=1, description="Line number in data")
    category: RowCategoryName = Field(description="The first check the row fails, or valid")
    source_email: str | None = Field(description="Masked (j***e@gmail.com); never a password")
    destination_email: str | None
    destination_mailbox_id: str | None
    source_host: str | None
    source_port: int | None
    source_security: Security | None
    message: str | None = Field(description="Why the row is not valid (never quotes a field)")
    source_size: RowSourceSize | None = Field(
        default=None,
        description="Preview only: what probing this row's source found; null when it was not probed (not "
        "chosen, not valid, or it could not be read in time)",
    )


class BatchLimits(BaseModel):
    max_rows_per_batch: int = Field(description="The organization's migration_batch_rows")
    concurrent_per_account: int = Field(
        description="Jobs of the organization at once (migration_concurrency)"
    )
    global_capacity: int = Field(description="Migrations at once on the whole platform, single and bulk")


class Assumptions(BaseModel):
    """The figures the estimates use; basis says which are measured."""

    average_mailbox_messages: int = Field(
        ge=0, description="For a row not probed: the probed rows' mean, else the default 5,000"
    )
    average_message_bytes: int = Field(
        ge=0, description="The probed sources' bytes per message, else the default 75,000"
    )
    messages_per_second: float = Field(ge=0, description="Per job: measured on completed jobs, else 10")
    per_job_overhead_seconds: float = Field(ge=0, description="Log in, list, plan: measured, else 30")


class RowSourceSize(BaseModel):
    """What the preview's probe found of a row's source."""

    messages: int = Field(ge=0, description="Messages in its selectable folders")
    bytes: int = Field(ge=0, description="Their size, counted, sampled or default (size_basis)")
    size_basis: Literal["counted", "sampled", "default"]
    sampled_messages: int = Field(ge=0, description="Messages whose RFC822.SIZE was read")


class TimeEstimate(BaseModel):
    estimated_seconds: int = Field(ge=0)
    human: str = Field(description="e.g. 'about 2 hours 5 minutes'")
    concurrency: int = Field(ge=1)
    waves: int = Field(ge=0)
    messages: int = Field(ge=0)
    rows_assumed: int = Field(ge=0, description="Rows whose message count is the assumed average")
    assumptions: Assumptions
    basis: EstimateBasis


class StorageEstimate(BaseModel):
    estimated_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)
    fits: bool
    basis: EstimateBasis


class PreviewResult(BaseModel):
    provider: Provider
    counts: RowCounts
    can_start: bool = Field(description="At least one row is valid")
    rows: list[PreviewRow]
    limits: BatchLimits
    time_estimate: TimeEstimate
    storage: StorageEstimate


class JobCounts(BaseModel):
    """Jobs per status, plus ``queued`` (waiting for a slot), ``running`` and ``total``."""

    pending: int = Field(ge=0)
    validating: int = Field(ge=0)
    planning: int = Field(ge=0)
    processing: int = Field(ge=0)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)
    queued: int = Field(ge=0)
    running: int = Field(ge=0)
    total: int = Field(ge=0)


class BatchJobView(BaseModel):
    id: str = Field(description="A migration id: GET /api/v1/migrations/{id} has its folders")
    row: int = Field(ge=1, description="Line number in the data")
    source_email: str = Field(description="Masked: j***e@gmail.com")
    destination_email: str | None
    mailbox_id: str
    source_host: str
    source_port: int = Field(ge=1, le=65535)
    source_security: Security
    status: JobStatus
    queued: bool = Field(description="Waiting for a slot (pending, not started yet)")
    progress: int = Field(ge=0, le=100)
    total_messages: int = Field(ge=0)
    imported_messages: int = Field(ge=0)
    failed_messages: int = Field(ge=0)
    skipped_duplicates: int = Field(ge=0)
    error_code: ErrorCode | None
    error_reason: ErrorReason | None
    error_message: str | None
    attempt: int = Field(ge=1)
    started_at: Timestamp | None
    finished_at: Timestamp | None
    updated_at: Timestamp | None


class BatchView(BaseModel):
    id: str = Field(description="`bat_…`")
    name: str
    status: BatchStatusName = Field(
        description="completed_with_errors: some jobs failed or were cancelled; failed: none completed; "
        "paused: repeated connection or sign-in failures on one host (see pause_reason; resume it)"
    )
    provider: Provider
    per_row_server: bool
    source_host: str | None = Field(description="null with per_row_server")
    source_port: int | None
    source_security: Security | None
    folder_strategy: FolderStrategy
    import_since: Day | None
    skip_duplicates: bool
    total_jobs: int = Field(ge=0)
    counts: JobCounts
    progress: int = Field(ge=0, le=100, description="The jobs' mean")
    total_messages: int = Field(ge=0)
    imported_messages: int = Field(ge=0)
    failed_messages: int = Field(ge=0)
    skipped_duplicates: int = Field(ge=0)
    rows: RowCounts = Field(description="The data's rows per preview category when it started")
    limits: BatchLimits
    paused: bool
    pause_reason: str | None
    allowed_actions: list[Literal["cancel", "delete", "resume", "retry"]]
    poll_hint_seconds: Literal[10, 30] | None = Field(
        description="10 while running, 30 paused, null once settled"
    )
    jobs: list[BatchJobView] | None = Field(description="Every job, in row order (null in lists)")
    skipped_rows: list[PreviewRow] | None = Field(
        default=None, description="On start only: the rows not started, and why"
    )
    created_at: Timestamp
    updated_at: Timestamp | None
    finished_at: Timestamp | None


def _request(body: BulkData) -> service.BulkRequest:
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


# ----------------------------------------------------------------------------- routes


@router.post(
    "/preview",
    name="bulk_migration_previewed",
    response_model=PreviewResult,
    summary="Preview bulk migration data",
    description="Validates CSV data without starting anything: every row's category (valid, or the first "
    "check it fails), the counts, the organization's limits, a time estimate and a storage estimate. "
    "The estimates use the throughput this deployment recorded on completed migrations and, unless "
    "`measure_sources` is false, the message counts and sizes of up to 10 valid rows' sources (probed "
    "within 15 s); each says its `basis`. "
    "Answers the preview itself (not in a `data` envelope). Use it before POST /api/v1/migrations/bulk. "
    "Counts as a migration write.",
    responses=documented(e422=REQUEST_ERRORS, e429=RATE_LIMITED),
)
async def preview_bulk(body: PreviewBulk, request: Request, principal: Writer) -> dict[str, Any]:
    audit_target(request, "bulk_migration_preview", body.provider or "generic_imap")
    return await service.preview(Table(), principal.org_id, _request(body), measure=body.measure_sources)


@router.post(
    "",
    name="bulk_migration_started",
    status_code=201,
    response_model=One[BatchView],
    summary="Start a bulk migration batch",
    description="Previews the data and starts one migration job per valid row; the others come back once "
    "in `skipped_rows`. Jobs run as slots free up, `concurrent_per_account` at a time and never two into "
    "one mailbox; poll GET /api/v1/migrations/bulk/{id}. With an `idempotency_key` used before, answers "
    "that batch (`Idempotent-Replayed: true`). Counts as a migration write.",
    responses=documented(
        e409="idempotency_key_reused: the idempotency_key (or the Idempotency-Key header) was used for a "
        "different request",
        e422=f"no_valid_rows: no row of the data is valid (preview it to see why); {REQUEST_ERRORS}",
        e429=RATE_LIMITED,
    ),
)
async def start_bulk(
    body: StartBulk, request: Request, response: Response, principal: Writer
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
    summary="List bulk migration batches",
    description="The organization's batches, newest first, each as of its last scheduling step "
    "(`jobs: null`; GET one has every job and up-to-date counts).",
    responses=documented(
        e422="validation_error: a query parameter is not valid, or the cursor is not from this listing"
    ),
)
async def list_bulk(
    request: Request,
    principal: Reader,
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
    summary="Get a bulk migration batch with every job",
    description="The batch with its status and counts computed from its jobs as they are now, every job's "
    "status, progress and error, `allowed_actions`, and `poll_hint_seconds`.",
    responses=documented(e404=NOT_FOUND),
)
async def get_bulk(batch: ReadableBatch) -> dict[str, Any]:
    return one(service.view(Table(), batch))


@router.delete(
    "/{batch_id}",
    name="bulk_migration_deleted",
    status_code=204,
    response_class=Response,
    summary="Delete a bulk migration batch",
    description="Deletes a settled batch (completed, completed_with_errors, failed or cancelled) and its "
    "jobs' records; imported messages stay. Cancel a running batch first. Counts as a migration write.",
    responses=documented(
        e404=NOT_FOUND,
        e409="conflict: the batch is not settled, or a job of it is still running or was retried meanwhile",
        e429=RATE_LIMITED,
    ),
)
async def delete_bulk(batch: WritableBatch) -> Response:
    service.delete(Table(), batch)
    return Response(status_code=204)


@router.post(
    "/{batch_id}:cancel",
    name="bulk_migration_cancelled",
    response_model=One[BatchView],
    summary="Cancel a bulk migration batch",
    description="Cancels a pending, processing or paused batch: waiting jobs are cancelled, running ones "
    "stopped. Retry it later to run the cancelled and failed jobs again. Counts as a migration write.",
    responses=documented(e404=NOT_FOUND, e409="conflict: the batch is already settled", e429=RATE_LIMITED),
)
async def cancel_bulk(batch: WritableBatch) -> dict[str, Any]:
    return one(service.cancel(Table(), batch))


@router.post(
    "/{batch_id}:retry",
    name="bulk_migration_retried",
    response_model=One[BatchView],
    summary="Retry a bulk migration batch's failed jobs",
    description="Puts a settled batch's failed jobs (and, for a cancelled batch, its cancelled ones) back "
    "in the queue, each in its next attempt; what they imported before is not imported again. Update a "
    "job's password first if it failed to sign in. Counts as a migration write.",
    responses=documented(
        e404=NOT_FOUND,
        e409="conflict: the batch is still running, or no job of it failed",
        e429=RATE_LIMITED,
    ),
)
async def retry_bulk(batch: WritableBatch) -> dict[str, Any]:
    return one(service.retry(Table(), batch))


@router.post(
    "/{batch_id}:resume",
    name="bulk_migration_resumed",
    response_model=One[BatchView],
    summary="Resume a paused bulk migration batch",
    description="Continues a batch paused after repeated connection or sign-in failures on one host "
    "(check the passwords first: providers lock accounts that keep failing). Counts as a migration write.",
    responses=documented(e404=NOT_FOUND, e409="conflict: the batch is not paused", e429=RATE_LIMITED),
)
async def resume_bulk(batch: WritableBatch) -> dict[str, Any]:
    return one(service.resume(Table(), batch))


@router.patch(
    "/{batch_id}/jobs/{job_id}/password",
    name="bulk_migration_job_password_updated",
    response_model=One[BatchJobView],
    summary="Update a failed job's source password",
    description="Replaces the stored source password of a failed job of the batch (e.g. with an app "
    "password); then retry the batch. Counts as a migration write.",
    responses=documented(
        e404="not_found: no such bulk migration, or no such job in it",
        e409="conflict: the job is not failed",
        e429=RATE_LIMITED,
    ),
)
async def update_job_password(
    batch: WritableBatch, job_id: JobId, body: JobPassword, request: Request
) -> dict[str, Any]:
    audit_target(request, "bulk_migration_job", job_id, batch_id=batch["id"])
    return one(service.update_job_password(Table(), batch, job_id, body.source_password))
