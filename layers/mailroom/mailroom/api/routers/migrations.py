"""IMAP migrations (``/api/v1/migrations``, trekmail-migrations-api.txt): test a source connection,
start a job, list and read jobs with per-folder progress, cancel, retry, delete.

Writes also count against a bucket of their own (services/migration_writes.py), 10 per minute per
token besides the token's normal limit: 429 ``rate_limited`` with ``Retry-After`` and the
``X-Migration-RateLimit-*`` headers, which are this module's to add.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mailroom.api import pagination
from mailroom.api.migration_access import Writer
from mailroom.api.models import Day, ListOf, One, Strict, Timestamp, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.migrations import (
    CAPACITY,
    RATE_LIMITED,
    SOURCE_ERRORS,
    ErrorCode,
    ErrorReason,
    EstimateBasis,
    FolderName,
    FolderStrategy,
    JobStatus,
    Password,
    Provider,
    Security,
    documented,
)
from mailroom.domain.principal import Principal
from mailroom.services import migration_jobs as jobs
from mailroom.services import migrations as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["migrations"])
READ = require("migrations:read")

Reader = Annotated[Principal, Depends(READ)]
MigrationId = Annotated[
    str, Path(description="The migration's id (`mig_…`).", examples=["mig_01JQ3XD4R8T2W5Y7Z9A1B3C5D7"])
]


def _readable(principal: Reader, migration_id: MigrationId) -> Item:
    return jobs.load(Table(), principal.org_id, migration_id)


def _writable(request: Request, principal: Writer, migration_id: MigrationId) -> Item:
    audit_target(request, "migration", migration_id)  # also when it is not found
    return jobs.load(Table(), principal.org_id, migration_id)


ReadableMigration = Annotated[Item, Depends(_readable)]
WritableMigration = Annotated[Item, Depends(_writable)]


# ----------------------------------------------------------------------------- requests


class SourceFields(Strict):
    source_host: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="IMAP host name or IP address (e.g. imap.gmail.com). Required for generic_imap; a "
        "preset provider fills it. Private and loopback addresses are refused unless the deployment "
        "allows them.",
    )
    source_port: int | None = Field(
        default=None, ge=1, le=65535, description="Typically 993 (ssl). Required for generic_imap."
    )
    source_security: Security | None = Field(
        default=None,
        description="ssl: TLS from the first byte; tls: STARTTLS; none: plaintext. Required for "
        "generic_imap.",
    )
    source_email: str = Field(min_length=3, max_length=254, description="The address on the source server")
    source_username: str | None = Field(
        default=None, min_length=1, max_length=254, description="The login, if it is not source_email"
    )
    source_password: Password = Field(
        description="Password or app password, taken byte for byte; never returned or logged"
    )


class TestConnection(SourceFields):
    provider: Provider = Field(
        default="generic_imap",
        description="A preset (gmail, outlook, yahoo, icloud) fills host, port, security",
    )


class StartMigration(SourceFields):
    mailbox_id: str = Field(
        min_length=1, max_length=64, description="The target mailbox (`mbx_…`), active, in this organization"
    )
    provider: Provider = Field(
        description="A preset (gmail, outlook, yahoo, icloud) fills host, port, security"
    )
    target_password: Password = Field(description="The target mailbox's password (checked, never stored)")
    selected_folders: list[FolderName] | None = Field(
        default=None,
        max_length=1000,
        description="Source folder names as test-connection lists them (default: all, by folder_strategy). "
        "A name the source lacks is reported as a failed folder.",
    )
    folder_strategy: FolderStrategy = Field(
        default="all",
        description="all; standard: inbox, sent, drafts, trash, spam and archive; inbox_only",
    )
    import_since: date | None = Field(
        default=None, description="Only messages the source received on or after this day (YYYY-MM-DD)"
    )
    skip_duplicates: bool = Field(
        default=True,
        description="Skip a message the mailbox already has: the same Message-ID and the same content "
        "(Date, From, Subject and body); without a Message-ID, the same bytes. Distinct messages are "
        "never skipped.",
    )


class RetryMigration(Strict):
    source_password: Password | None = Field(
        default=None,
        description="A new source password; required when the stored one has expired (7 days after the job "
        "failed or was cancelled)",
    )


# ----------------------------------------------------------------------------- responses


class MigrationEstimate(BaseModel):
    """How long a migration takes and what it stores, and on what basis."""

    messages: int = Field(ge=0, description="Messages to import")
    bytes: int = Field(ge=0, description="Their size (what the mailbox will store)")
    estimated_seconds: int = Field(ge=0, description="From the start to the end of the migration")
    human: str = Field(description="e.g. 'about 2 hours 5 minutes'")
    messages_per_second: float = Field(ge=0, description="The import rate used")
    per_job_overhead_seconds: float = Field(ge=0, description="Log in, list and plan, used once per job")
    basis: EstimateBasis


class ConnectionTested(BaseModel):
    success: Literal[True]
    folders: dict[str, Annotated[int, Field(ge=0)]] = Field(
        description="Every selectable folder (decoded name) with its message count"
    )
    estimate: MigrationEstimate = Field(
        description="Importing every listed folder: their counts, their sizes read within bounds, at this "
        "deployment's recorded throughput"
    )


class FolderProgress(BaseModel):
    name: str = Field(description="The source folder (decoded name)")
    status: Literal["pending", "processing", "completed", "failed", "cancelled"] = Field(
        description="failed: not on the source, or renumbered by the server after planning; a folder the "
        "job did not reach takes the job's failed or cancelled"
    )
    expected: int = Field(ge=0)
    imported: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0, description="Duplicates skipped")
    target_folder: str | None = Field(description="Where its messages land in the mailbox")
    error: str | None = Field(description="A sample reason when messages failed, or a note")


class MigrationView(BaseModel):
    id: str = Field(description="`mig_…`")
    mailbox_id: str
    mailbox_email: str | None
    provider: Provider
    source_host: str
    source_port: int = Field(ge=1, le=65535)
    source_security: Security
    source_email: str = Field(description="Masked: j***e@gmail.com")
    status: JobStatus = Field(
        description="pending → validating → planning → processing → completed | failed | cancelled"
    )
    progress: int = Field(ge=0, le=100, description="Share of the planned messages handled")
    total_messages: int = Field(ge=0)
    imported_messages: int = Field(ge=0)
    failed_messages: int = Field(ge=0)
    skipped_duplicates: int = Field(ge=0)
    selected_folders: list[str] | None
    folder_strategy: FolderStrategy
    import_since: Day | None
    skip_duplicates: bool
    folders: list[FolderProgress] | None = Field(description="Per-folder progress (null in lists)")
    error_code: ErrorCode | None = Field(description="Why a failed job failed")
    error_reason: ErrorReason | None = Field(description="For connection_failed: what the source did")
    error_message: str | None = Field(
        description="Readable; names host, port and a masked username, never the password"
    )
    poll_hint_seconds: Literal[5, 10] | None = Field(
        description="Poll every 5 s while pending/validating/planning, 10 s while processing; null once over"
    )
    attempt: int = Field(ge=1, description="1, then one more per retry")
    batch_id: str | None = Field(
        description="The bulk batch (`bat_…`) it belongs to; null for a single migration"
    )
    estimate: MigrationEstimate | None = Field(
        default=None,
        description="How long the whole job takes and what it stores: once planned, from the source's "
        "counted messages and their sizes; before, the defaults (see basis). Null in lists",
    )
    started_at: Timestamp | None
    finished_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp | None


def _source(body: SourceFields, provider: str) -> jobs.Source:
    return jobs.Source(
        provider=provider,
        email=body.source_email,
        password=body.source_password,
        username=body.source_username,
        host=body.source_host,
        port=body.source_port,
        security=body.source_security,
    )


# ----------------------------------------------------------------------------- routes


@router.post(
    "/migrations/test-connection",
    name="migration_connection_tested",
    response_model=ConnectionTested,
    summary="Test a source IMAP connection and list its folders",
    description="Logs in to the source server and lists its folders with their message counts, without "
    "importing anything. Use it before starting a migration, to check the credentials and let the user "
    "choose `selected_folders`. Also sizes the folders within bounds (STATUS=SIZE where offered, else the "
    "RFC822.SIZE of at most 300 messages in 5 s) and answers an `estimate` of the whole import with its "
    "`basis`. Answers `{success, folders, estimate}` (not in a `data` envelope). Counts as a migration "
    "write (10 a minute per token).",
    responses=documented(
        e422="connection_failed: the source could not be reached, refused the login, failed TLS or did not "
        "answer in time (the message says which; check host, port, security and credentials); "
        + SOURCE_ERRORS,
        e429=RATE_LIMITED,
    ),
)
async def test_connection(body: TestConnection, request: Request, principal: Writer) -> dict[str, Any]:
    audit_target(request, "migration_source", body.source_host or body.provider, provider=body.provider)
    tested = await service.test_connection(Table(), _source(body, body.provider))
    return {"success": True, **tested}


@router.get(
    "/migrations",
    name="migration.list",
    response_model=ListOf[MigrationView],
    summary="List migrations",
    description="The organization's migration jobs, newest first, bulk batches' jobs included, each "
    "without its per-folder breakdown (`folders: null`; GET one has it). Filter by `status` or "
    "`mailbox_id`; `meta.total` is known when unfiltered.",
    responses=documented(
        e422="validation_error: a query parameter is not valid, or the cursor is not from this listing"
    ),
)
async def list_migrations(
    request: Request,
    principal: Reader,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    mailbox_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only jobs into this mailbox (`mbx_…`)")
    ] = None,
) -> dict[str, Any]:
    page, views, total = service.list_page(
        Table(),
        principal.org_id,
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        status=status,
        mailbox_id=mailbox_id,
    )
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=total)


@router.post(
    "/migrations",
    name="migration_started",
    status_code=201,
    response_model=One[MigrationView],
    summary="Start a migration",
    description="Starts importing a source IMAP account into a mailbox: every message with its `\\Seen` and "
    "`\\Flagged` flags and received date, into the matching folders. One migration can be active per "
    "organization at a time (bulk batches' jobs included). Poll GET /api/v1/migrations/{id} every "
    "`poll_hint_seconds` for progress. Counts as a migration write.",
    responses=documented(
        e409="conflict: another migration of the organization is active (cancel it or wait for it)",
        e422="validation_error: no such active mailbox, or target_password is not its password; "
        + SOURCE_ERRORS,
        e429=RATE_LIMITED,
        e503=CAPACITY,
    ),
)
async def start_migration(body: StartMigration, request: Request, principal: Writer) -> dict[str, Any]:
    started = service.start(
        Table(),
        principal.org_id,
        service.StartRequest(
            mailbox_id=body.mailbox_id,
            source=_source(body, body.provider),
            target_password=body.target_password,
            selected_folders=body.selected_folders,
            folder_strategy=body.folder_strategy,
            import_since=body.import_since,
            skip_duplicates=body.skip_duplicates,
        ),
    )
    audit_target(
        request, "migration", started["id"], mailbox_id=started["mailbox_id"], provider=started["provider"]
    )
    return one(started)


@router.get(
    "/migrations/{migration_id}",
    name="migration.get",
    response_model=One[MigrationView],
    summary="Get a migration with its per-folder progress",
    description="One migration job: status, progress and counts, per-folder progress, the error of a failed "
    "job, and `poll_hint_seconds` (how long to wait before polling again; null once it is over).",
    responses=documented(e404="not_found: no such migration in this organization"),
)
async def get_migration(job: ReadableMigration) -> dict[str, Any]:
    return one(service.view(Table(), job))


@router.delete(
    "/migrations/{migration_id}",
    name="migration_deleted",
    status_code=204,
    response_class=Response,
    summary="Delete a migration",
    description="Deletes a migration record that is not running (cancel it first), its stored source "
    "password and its working data. The imported messages stay in the mailbox. Counts as a migration write.",
    responses=documented(
        e404="not_found: no such migration in this organization",
        e409="conflict: the migration is still running (cancel it first), or was retried meanwhile",
        e429=RATE_LIMITED,
    ),
)
async def delete_migration(job: WritableMigration) -> Response:
    service.delete(Table(), job)
    return Response(status_code=204)


@router.post(
    "/migrations/{migration_id}:cancel",
    name="migration_cancelled",
    response_model=One[MigrationView],
    summary="Cancel an active migration",
    description="Cancels a pending, validating, planning or processing migration and stops its workflow. "
    "What it imported stays; retry it to continue later. Counts as a migration write.",
    responses=documented(
        e404="not_found: no such migration in this organization",
        e409="conflict: the migration is not active (completed, failed or cancelled)",
        e429=RATE_LIMITED,
    ),
)
async def cancel_migration(job: WritableMigration) -> dict[str, Any]:
    return one(service.cancel(Table(), job))


@router.post(
    "/migrations/{migration_id}:retry",
    name="migration_retried",
    response_model=One[MigrationView],
    summary="Retry a failed or cancelled migration",
    description="Runs a failed or cancelled migration again in its next attempt (progress back to 0): "
    "what earlier attempts imported is recognised and counted, not imported twice. The body is "
    "optional; send `source_password` when the stored one has expired. Counts as a migration write.",
    responses=documented(
        e404="not_found: no such migration in this organization",
        e409="conflict: the migration is not failed or cancelled, or another migration of the organization "
        "is active",
        e422="validation_error: the stored source password has expired; send source_password",
        e429=RATE_LIMITED,
        e503=CAPACITY,
    ),
)
async def retry_migration(job: WritableMigration, body: RetryMigration | None = None) -> dict[str, Any]:
    return one(service.retry(Table(), job, source_password=body.source_password if body else None))
