"""IMAP migrations (``/api/v1/migrations``, trekmail-migrations-api.txt): test a source connection,
start a job, list and read jobs with per-folder progress, cancel, retry, delete.

Writes also count against a bucket of their own, ``MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE``
(10) per token, besides the token's normal limit: 429 ``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from mailroom.api import pagination
from mailroom.api.errors import ApiError
from mailroom.api.models import ListOf, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain import migrations as rules
from mailroom.domain.principal import Principal
from mailroom.services import migrations as service
from mailroom.settings import get_settings
from mailroom.store import migrations as store
from mailroom.store import ratelimits
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["migrations"])
READ = require("migrations:read")
_WRITE_SCOPE = require("migrations:write")

# Passwords are taken byte for byte: the models' whitespace stripping must not apply to them.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]
Provider = Literal["gmail", "outlook", "yahoo", "icloud", "generic_imap"]
Security = Literal["ssl", "tls", "none"]
FolderName = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


def writer(request: Request) -> Principal:
    """``migrations:write``, and the migration write bucket: 10 per minute per token."""
    principal = _WRITE_SCOPE(request)
    limit = get_settings().migration_write_limit_per_minute
    now = time.time()
    window = ratelimits.hit(
        Table(), principal.org_id, f"migrations-write:{principal.token_id}", limit=limit, now=now
    )
    if window.exceeded:
        retry_after = max(1, window.resets_at - int(now))
        raise ApiError(
            429,
            "rate_limited",
            f"Migration write operations are limited to {limit} per minute per token.",
            hint=f"Retry after {retry_after} seconds.",
            retryable=True,
            headers={
                "Retry-After": str(retry_after),
                "X-Migration-RateLimit-Limit": str(limit),
                "X-Migration-RateLimit-Remaining": "0",
                "X-Migration-RateLimit-Reset": str(window.resets_at),
            },
        )
    return principal


WRITE = writer


class SourceFields(Strict):
    source_host: str | None = Field(default=None, min_length=1, max_length=253, description="IMAP host")
    source_port: int | None = Field(default=None, ge=1, le=65535, description="Typically 993 (ssl)")
    source_security: Security | None = Field(default=None, description="ssl, tls (STARTTLS) or none")
    source_email: str = Field(min_length=3, max_length=254, description="Address on the source server")
    source_username: str | None = Field(default=None, min_length=1, max_length=254)
    source_password: Password = Field(description="Password or app password (never returned)")


class TestConnection(SourceFields):
    provider: Provider = Field(default="generic_imap", description="A preset fills host, port, security")


class StartMigration(SourceFields):
    mailbox_id: str = Field(min_length=1, max_length=64, description="Target mailbox")
    provider: Provider
    target_password: Password = Field(description="The target mailbox's password")
    selected_folders: list[FolderName] | None = Field(
        default=None, max_length=1000, description="Source folder names (default: by folder_strategy)"
    )
    folder_strategy: Literal["all", "standard", "inbox_only"] = Field(default="all")
    import_since: date | None = Field(default=None, description="Only messages received on or after")
    skip_duplicates: bool = Field(default=True, description="By Message-ID, else by the message's bytes")


class RetryMigration(Strict):
    source_password: Password | None = Field(
        default=None, description="Required when the stored source password has expired"
    )


class ConnectionTested(BaseModel):
    success: bool
    folders: dict[str, int]


class FolderProgress(BaseModel):
    name: str
    status: str
    expected: int
    imported: int
    failed: int
    skipped: int
    target_folder: str | None
    error: str | None


class MigrationView(BaseModel):
    id: str
    mailbox_id: str
    mailbox_email: str | None
    provider: str
    source_host: str
    source_port: int
    source_security: str
    source_email: str = Field(description="Masked: j***e@gmail.com")
    status: str = Field(description=", ".join(rules.STATUSES))
    progress: int = Field(description="0-100")
    total_messages: int
    imported_messages: int
    failed_messages: int
    skipped_duplicates: int
    selected_folders: list[str] | None
    folder_strategy: str
    import_since: str | None
    skip_duplicates: bool
    folders: list[FolderProgress] | None = Field(description="Per-folder progress (null in lists)")
    error_code: str | None
    error_reason: str | None = Field(
        description="auth_failed, tls_failed, timeout, ... for connection_failed"
    )
    error_message: str | None
    poll_hint_seconds: int | None = Field(description="5 early, 10 while processing, null when over")
    attempt: int
    batch_id: str | None
    started_at: str | None
    finished_at: str | None
    created_at: str
    updated_at: str | None


def _source(body: SourceFields, provider: str) -> service.Source:
    return service.Source(
        provider=provider,
        email=body.source_email,
        password=body.source_password,
        username=body.source_username,
        host=body.source_host,
        port=body.source_port,
        security=body.source_security,
    )


@router.post(
    "/migrations/test-connection",
    name="migration_connection_tested",
    response_model=ConnectionTested,
    summary="Log in to a source IMAP server and list its folders with message counts",
)
async def test_connection(
    body: TestConnection, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "migration_source", body.source_host or body.provider, provider=body.provider)
    folders = await service.test_connection(_source(body, body.provider))
    return {"success": True, "folders": folders}


@router.get(
    "/migrations", name="migration.list", response_model=ListOf[MigrationView], summary="List migrations"
)
async def list_migrations(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    status: Annotated[
        Literal["pending", "validating", "planning", "processing", "completed", "failed", "cancelled"] | None,
        Query(description="Only jobs in this status"),
    ] = None,
    mailbox_id: Annotated[str | None, Query(max_length=64, description="Only jobs into this mailbox")] = None,
) -> dict[str, Any]:
    table = Table()
    page = store.list_page(
        table,
        principal.org_id,
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        status=status,
        mailbox_id=mailbox_id,
    )
    total = None
    if status is None and mailbox_id is None:
        total = max(0, int((store.slots(table, principal.org_id) or {}).get("count", 0)))
    return pagination.envelope(
        request,
        page,
        [service.job_view(j, None) for j in page.items],
        per_page=page_query.per_page,
        total=total,
    )


@router.post(
    "/migrations",
    name="migration_started",
    status_code=201,
    response_model=One[MigrationView],
    summary="Start a migration (one active per organization)",
)
async def start_migration(
    body: StartMigration, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    table = Table()
    job = service.start_job(
        table,
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
    audit_target(request, "migration", job["id"], mailbox_id=job["mailbox_id"], provider=job["provider"])
    return one(service.job_view(job, store.folders(table, principal.org_id, job["id"])))


@router.get(
    "/migrations/{migration_id}",
    name="migration.get",
    response_model=One[MigrationView],
    summary="A migration with its per-folder progress",
)
async def get_migration(migration_id: str, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    return one(service.get_view(Table(), principal.org_id, migration_id))


@router.delete(
    "/migrations/{migration_id}",
    name="migration_deleted",
    status_code=204,
    summary="Delete a migration that is not running",
)
async def delete_migration(
    migration_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    audit_target(request, "migration", migration_id)
    service.delete_job(Table(), principal.org_id, migration_id)
    return Response(status_code=204)


@router.post(
    "/migrations/{migration_id}:cancel",
    name="migration_cancelled",
    response_model=One[MigrationView],
    summary="Cancel an active migration",
)
async def cancel_migration(
    migration_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    audit_target(request, "migration", migration_id)
    table = Table()
    job = service.cancel_job(table, principal.org_id, migration_id)
    return one(service.job_view(job, store.folders(table, principal.org_id, migration_id)))


@router.post(
    "/migrations/{migration_id}:retry",
    name="migration_retried",
    response_model=One[MigrationView],
    summary="Retry a failed or cancelled migration (what it imported is not imported again)",
)
async def retry_migration(
    migration_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(WRITE)],
    body: RetryMigration | None = None,
) -> dict[str, Any]:
    audit_target(request, "migration", migration_id)
    table = Table()
    job = service.retry_job(
        table, principal.org_id, migration_id, source_password=body.source_password if body else None
    )
    return one(service.job_view(job, store.folders(table, principal.org_id, migration_id)))
