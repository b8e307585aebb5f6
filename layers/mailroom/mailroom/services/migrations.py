"""IMAP migrations: the use cases of ``/api/v1/migrations`` (test a connection, start, read, cancel,
retry, delete). The import itself runs in the migration state machine (services/migration_steps.py).

Choices, documented in docs/migrations.md:

* A job takes a slot of its organization (a single migration: no other active job) and one of the
  platform (``MAILROOM_MIGRATION_CAPACITY``) in the transaction that writes it; the transition that
  ends it gives both back in its own transaction, conditional on the job being active, so a slot
  is released exactly once. ``start_job``/``retry_job`` take ``org_limit`` and ``batch_id`` so bulk
  batches reuse the same job model with their own per-organization concurrency.
* The source password is sealed with KMS (encryption context: organization, job) in its own item.
  It is removed when the job completes or is deleted; a failed or cancelled job keeps it for
  ``MAILROOM_MIGRATION_SECRET_RETENTION_DAYS`` (TTL) so ``:retry`` works without asking again;
  ``:retry`` takes a new ``source_password`` (required once the old one expired). Never returned.
* The execution name is ``<job id>-a<attempt>-s<segment>``: its ARN is known before it starts (the
  job points at it in the same transaction that makes the job active), and a retried start with
  the same name cannot start a second execution.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from mailroom import clock, errors, ids
from mailroom.domain import migrations as rules
from mailroom.domain import passwords
from mailroom.errors import Invalid, MailroomError, Unavailable
from mailroom.observability import logger
from mailroom.settings import get_settings
from mailroom.store import events, kms, mailboxes, workflows
from mailroom.store import migrations as store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected

if TYPE_CHECKING:
    from mailroom.imap.source import SourceAccount, SourceError

RECONCILE_AFTER_SECONDS = 120  # an active job untouched this long has its execution checked
DELETE_BUDGET_SECONDS = 5.0  # of partition deletion within a DELETE request (the rest has a TTL)
TEST_CONNECTION_SECONDS = 25.0  # the API function's timeout is 29 s


@dataclass(frozen=True, slots=True)
class Source:
    """Where to import from, as the request gave it (presets fill host, port and security)."""

    provider: str
    email: str
    password: str
    username: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None


@dataclass(frozen=True, slots=True)
class StartRequest:
    mailbox_id: str
    source: Source
    target_password: str
    selected_folders: list[str] | None = None
    folder_strategy: str = "all"
    import_since: date | None = None
    skip_duplicates: bool = True
    batch_id: str | None = None  # bulk batches (null for a single migration)
    extra: dict[str, Any] = field(default_factory=dict)  # more job fields a caller keeps (bulk)


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    security: str


def resolve_server(source: Source) -> Server:
    """Host, port and security of the source: the provider's preset, or the request's for
    ``generic_imap``. 422 naming the field otherwise."""
    from mailroom.imap import presets

    try:
        resolved = presets.resolve(source.provider, source.host, source.port, source.security)
    except ValueError as exc:
        message = str(exc)
        field_name = next(
            (f for f in ("source_host", "source_port", "source_security") if f.split("_")[1] in message),
            "provider",
        )
        raise errors.validation(message, field=field_name) from exc
    return Server(host=resolved.host, port=int(resolved.port), security=str(resolved.security))


def source_account(source: Source, server: Server, *, password: str | None = None) -> SourceAccount:
    from mailroom.imap.source import SourceAccount

    return SourceAccount(
        server.host,
        server.port,
        server.security,
        source.username or source.email,
        source.password if password is None else password,
        timeout_seconds=float(get_settings().imap_timeout_seconds),
    )


def readable(error: SourceError) -> str:
    """A source problem as a person reads it: the client's sentences name host, port and a masked
    username, never the password."""
    return str(error).strip() or "The source IMAP server could not be used."


async def test_connection(source: Source) -> dict[str, int]:
    """Log in and list the folders with their message counts (decoded names). 422
    ``connection_failed`` with a readable message when the source cannot be used."""
    from mailroom.imap.source import SourceError, open_session

    server = resolve_server(source)

    async def listing() -> list[Any]:
        async with open_session(source_account(source, server)) as session:
            return list(await session.folders())

    try:
        # Each IMAP step is bounded; the whole must also end before the API's own timeout.
        found = await asyncio.wait_for(listing(), timeout=TEST_CONNECTION_SECONDS)
    except TimeoutError:
        raise Invalid(
            "connection_failed",
            "The source server did not list its folders in time.",
            hint="Check the host and port; a server with very many folders may need the migration itself.",
        ) from None
    except SourceError as exc:
        raise Invalid(
            "connection_failed",
            readable(exc),
            hint="Check source_host, source_port, source_security and the credentials, then try again.",
        ) from exc
    return {f.name: int(f.messages or 0) for f in found if f.selectable}


# ----------------------------------------------------------------------------- views


def folder_view(folder: Item, job: Item) -> dict[str, Any]:
    expected = int(folder.get("expected", 0))
    done, batches = int(folder.get("batches_done", 0)), int(folder.get("batches", 0))
    handled = int(folder.get("imported", 0)) + int(folder.get("failed", 0)) + int(folder.get("skipped", 0))
    if folder.get("state") == "missing":
        status = "failed"
    elif done >= batches and (job["status"] not in rules.ACTIVE or handled >= expected):
        status = "failed" if folder.get("folder_failed") else "completed"
        if job["status"] in (rules.FAILED, rules.CANCELLED) and handled < expected:
            status = job["status"]
    elif job["status"] in (rules.FAILED, rules.CANCELLED):
        status = job["status"]
    elif done > 0 or (handled > 0 and handled < expected):
        status = "processing"
    else:
        status = "pending"
    return {
        "name": folder["name"],
        "status": status,
        "expected": expected,
        "imported": int(folder.get("imported", 0)),
        "failed": int(folder.get("failed", 0)),
        "skipped": int(folder.get("skipped", 0)),
        "target_folder": folder.get("target_path"),
        "error": folder.get("error"),
    }


def job_view(job: Item, folders: list[Item] | None) -> dict[str, Any]:
    """The API representation (trekmail-migrations-api.txt's fields, plus Mailroom's own).
    ``folders`` None: a list entry (the breakdown is on GET one)."""
    status = str(job["status"])
    counters = {
        "total": int(job.get("total_messages", 0)),
        "imported": int(job.get("imported_messages", 0)),
        "failed": int(job.get("failed_messages", 0)),
        "skipped": int(job.get("skipped_duplicates", 0)),
    }
    return {
        "id": job["id"],
        "mailbox_id": job["mailbox_id"],
        "mailbox_email": job.get("mailbox_email"),
        "provider": job["provider"],
        "source_host": job["source_host"],
        "source_port": int(job["source_port"]),
        "source_security": job["source_security"],
        "source_email": rules.mask_email(str(job["source_email"])),
        "status": status,
        "progress": rules.progress(status=status, **counters),
        "total_messages": counters["total"],
        "imported_messages": counters["imported"],
        "failed_messages": counters["failed"],
        "skipped_duplicates": counters["skipped"],
        "selected_folders": job.get("selected_folders"),
        "folder_strategy": job.get("folder_strategy", "all"),
        "import_since": job.get("import_since"),
        "skip_duplicates": bool(job.get("skip_duplicates", True)),
        "folders": None if folders is None else [folder_view(f, job) for f in folders],
        "error_code": job.get("error_code"),
        "error_reason": job.get("error_reason"),
        "error_message": job.get("error_message"),
        "poll_hint_seconds": rules.poll_hint(status),
        "attempt": int(job.get("attempt", 1)),
        "batch_id": job.get("batch_id"),
        "started_at": job.get("started_at"),
        "finished_at": job.get("finished_at"),
        "created_at": job["created_at"],
        "updated_at": job.get("updated_at"),
    }


def event_data(job: Item) -> dict[str, Any]:
    """What ``migration.completed``/``migration.failed`` carry: the job as the API lists it."""
    return job_view(job, None)


# ----------------------------------------------------------------------------- reading


def load(table: Table, org_id: str, job_id: str) -> Item:
    job = store.get(table, org_id, job_id) if job_id.startswith("mig_") else None
    if job is None:
        raise errors.not_found("Migration")
    return job


def reconcile(table: Table, job: Item) -> Item:
    """An active job whose execution ended without ending it (stopped by hand, timed out, a step
    that failed even its failure handler) is failed here, so it never stays active forever. Only
    checked for jobs untouched for a while: an import updates its job at every batch."""
    if job["status"] not in rules.ACTIVE or not job.get("execution_arn"):
        return job
    updated = clock.parse_iso(str(job.get("updated_at") or job["created_at"]))
    if (clock.utcnow() - updated).total_seconds() < RECONCILE_AFTER_SECONDS:
        return job
    state = workflows.status(str(job["execution_arn"]))
    if state not in ("FAILED", "TIMED_OUT", "ABORTED"):
        return job
    code = "timeout" if state == "TIMED_OUT" else rules.INTERNAL_ERROR
    message = f"The migration workflow ended ({state.lower().replace('_', ' ')}) before the job finished."
    fail(table, job, code=code, message=message, attempt=int(job.get("attempt", 1)))
    return store.get(table, job["org_id"], job["id"]) or job


def get_view(table: Table, org_id: str, job_id: str) -> dict[str, Any]:
    job = reconcile(table, load(table, org_id, job_id))
    return job_view(job, store.folders(table, org_id, job_id))


# ----------------------------------------------------------------------------- lifecycle


def seal(org_id: str, job_id: str, password: str) -> bytes:
    return kms.encrypt(password.encode(), secret_context(org_id, job_id))


def secret_context(org_id: str, job_id: str) -> dict[str, str]:
    return {"org_id": org_id, "migration_id": job_id, "purpose": "migration-source-password"}


def secret_ttl() -> int:
    return int(time.time()) + get_settings().migration_secret_retention_days * 86400


def execution_name(job_id: str, attempt: int, segment: int) -> str:
    return f"{job_id}-a{attempt}-s{segment}"


def execution_input(job: Item, attempt: int, *, segment: int = 0) -> dict[str, Any]:
    return {"org_id": job["org_id"], "job_id": job["id"], "attempt": attempt, "segment": segment}


def _refused(rejected: Rejected) -> MailroomError:
    if "org" in rejected.roles:
        return errors.conflict(
            "An active migration is already running on this account.",
            hint="Cancel it or wait for it to finish, then start again.",
        )
    if "capacity" in rejected.roles:
        return Unavailable(
            "migration_capacity_reached",
            "The server is running as many migrations as it allows.",
            hint="Retry in a few minutes.",
            retryable=True,
        )
    raise rejected


def _check_target(table: Table, org_id: str, mailbox_id: str, target_password: str | None) -> Item:
    mailbox = mailboxes.get(table, org_id, mailbox_id) if mailbox_id else None
    if mailbox is None:
        raise errors.validation("No mailbox with this id in the organization.", field="mailbox_id")
    if not mailbox.get("active", True):
        raise errors.validation("The target mailbox is deactivated.", field="mailbox_id")
    if target_password is not None and not passwords.verify_password(
        target_password, mailbox.get("password_hash")
    ):
        raise errors.validation(
            "target_password is not the target mailbox's password.", field="target_password"
        )
    return mailbox


def start_job(
    table: Table,
    org_id: str,
    request: StartRequest,
    *,
    org_limit: int = 1,
    check_target_password: bool = True,
) -> Item:
    """Check, write and launch a job (201). 422 for the request or the target mailbox, 409 when the
    organization has ``org_limit`` active jobs, 503 ``migration_capacity_reached`` at the cap.

    ``org_limit``: 1 for a single migration (no other active job); a bulk batch passes its plan's
    concurrency. ``check_target_password`` False: a caller that authorized the target otherwise."""
    settings = get_settings()
    if request.folder_strategy not in rules.FOLDER_STRATEGIES:
        raise errors.validation(
            f"folder_strategy is one of {', '.join(rules.FOLDER_STRATEGIES)}", field="folder_strategy"
        )
    mailbox = _check_target(
        table, org_id, request.mailbox_id, request.target_password if check_target_password else None
    )
    server = resolve_server(request.source)
    job_id = ids.new_id("mig")
    now = clock.now_iso()
    job: Item = {
        "id": job_id,
        "org_id": org_id,
        "mailbox_id": mailbox["id"],
        "mailbox_email": mailbox.get("address"),
        "provider": request.source.provider,
        "source_host": server.host,
        "source_port": server.port,
        "source_security": server.security,
        "source_email": request.source.email,
        "source_username": request.source.username,
        "selected_folders": request.selected_folders,
        "folder_strategy": request.folder_strategy,
        "import_since": request.import_since.isoformat() if request.import_since else None,
        "skip_duplicates": request.skip_duplicates,
        "batch_id": request.batch_id,
        "status": rules.PENDING,
        "attempt": 1,
        **store.reset_counters(),
        "batches_total": 0,
        "batches_done": 0,
        "execution_arn": workflows.execution_arn(execution_name(job_id, 1, 0)),
        "executions": 1,
        "started_at": now,
        "created_at": now,
        "updated_at": now,
        **request.extra,
    }
    ciphertext = seal(org_id, job_id, request.source.password)
    try:
        store.start(
            table,
            job,
            ciphertext=ciphertext,
            secret_ttl=secret_ttl(),
            org_limit=org_limit,
            capacity=settings.migration_capacity,
        )
    except Rejected as rejected:
        raise _refused(rejected) from rejected
    launch(table, job, attempt=1)
    return store.get(table, org_id, job_id) or job


def launch(table: Table, job: Item, *, attempt: int) -> None:
    """Start the job's execution; if Step Functions refuses, the job fails at once (its slots back)
    and the caller gets a retryable 503."""
    try:
        workflows.start(execution_name(job["id"], attempt, 0), execution_input(job, attempt))
    except Exception as exc:
        logger().exception("migration execution not started", extra={"migration_id": job["id"]})
        fail(
            table,
            {**job, "attempt": attempt},
            code=rules.INTERNAL_ERROR,
            message="The migration workflow could not be started.",
            attempt=attempt,
        )
        raise Unavailable(
            "workflow_unavailable",
            "The migration could not be started right now.",
            hint="Retry the migration (POST …:retry) in a moment.",
            retryable=True,
        ) from exc


def cancel_job(table: Table, org_id: str, job_id: str) -> Item:
    """Cancel an active job (its slots back at once), then stop its execution. 409 otherwise."""
    job = load(table, org_id, job_id)
    if job.get("batch_id") and job["status"] == rules.PENDING and not job.get("execution_arn"):
        from mailroom.services import bulk_migrations  # a batch's job still waiting: it holds no slot

        return bulk_migrations.cancel_waiting_job(table, job)
    if job["status"] not in rules.ACTIVE:
        raise errors.conflict(
            f"The migration is {job['status']}; only an active migration can be cancelled.",
            hint="Retry a failed or cancelled migration with POST …:retry.",
        )
    now = clock.now_iso()
    ended = store.finish(
        table,
        job,
        status=rules.CANCELLED,
        fields={"finished_at": now, "updated_at": now, "error_message": "Cancelled through the API."},
        remove_secret=False,
    )
    if not ended:
        current = load(table, org_id, job_id)
        raise errors.conflict(f"The migration is {current['status']}; it is no longer active.")
    store.keep_secret_until(table, org_id, job_id, secret_ttl())
    if job.get("execution_arn"):
        workflows.stop(
            str(job["execution_arn"]), error="MigrationCancelled", cause="Cancelled through the API."
        )
    if job.get("batch_id"):
        from mailroom.services import bulk_migrations  # the batch starts its next job

        bulk_migrations.job_ended(table, job)
    return load(table, org_id, job_id)


def retry_job(
    table: Table, org_id: str, job_id: str, *, source_password: str | None = None, org_limit: int = 1
) -> Item:
    """A failed or cancelled job again, same id, next attempt, counters at zero; what it imported
    before is recognised (not fetched or stored again, counted as imported). 409 if it is not
    retryable or another job is active, 503 at the cap, 422 when its password is gone and none given."""
    settings = get_settings()
    job = load(table, org_id, job_id)
    if job["status"] not in rules.RETRYABLE:
        raise errors.conflict(
            f"The migration is {job['status']}; only a failed or cancelled migration can be retried."
        )
    ciphertext = seal(org_id, job_id, source_password) if source_password else None
    if ciphertext is None and store.get_secret(table, org_id, job_id) is None:
        raise errors.validation(
            "The stored source password has expired; send source_password to retry.",
            field="source_password",
        )
    attempt = int(job.get("attempt", 1)) + 1
    now = clock.now_iso()
    fields: dict[str, Any] = {
        "status": rules.PENDING,
        "attempt": attempt,
        **store.reset_counters(),
        "batches_total": 0,
        "batches_done": 0,
        "error_code": None,
        "error_reason": None,
        "error_message": None,
        "finished_at": None,
        "started_at": now,
        "updated_at": now,
        "execution_arn": workflows.execution_arn(execution_name(job_id, attempt, 0)),
        "executions": 1,
    }
    try:
        store.restart(
            table,
            job,
            fields,
            ciphertext=ciphertext,
            secret_ttl=secret_ttl(),
            org_limit=org_limit,
            capacity=settings.migration_capacity,
        )
    except Rejected as rejected:
        if "job" in rejected.roles:
            raise errors.conflict("The migration changed meanwhile; read it and try again.") from rejected
        if "secret" in rejected.roles:
            raise errors.validation(
                "The stored source password has expired; send source_password to retry.",
                field="source_password",
            ) from rejected
        raise _refused(rejected) from rejected
    launch(table, job, attempt=attempt)
    return load(table, org_id, job_id)


def delete_job(table: Table, org_id: str, job_id: str) -> None:
    """Delete a job that is not running (409 otherwise), its sealed password and its partition."""
    job = load(table, org_id, job_id)
    if job["status"] in rules.ACTIVE:
        raise errors.conflict(
            "The migration is still running; cancel it first.", hint="POST /api/v1/migrations/{id}:cancel"
        )
    try:
        store.remove(table, job)
    except Rejected as rejected:
        raise errors.conflict("The migration changed meanwhile (retried?); read it again.") from rejected
    store.delete_partition(table, org_id, job_id, deadline=time.monotonic() + DELETE_BUDGET_SECONDS)


def fail(
    table: Table, job: Item, *, code: str, message: str, attempt: int | None, reason: str | None = None
) -> bool:
    """End an active job as failed with a readable error and ``migration.failed``; False if it was
    not active (in ``attempt``)."""
    now = clock.now_iso()
    fields = {
        "error_code": code,
        "error_reason": reason,
        "error_message": message[:1000],
        "finished_at": now,
        "updated_at": now,
    }
    ended = {**job, **fields, "status": rules.FAILED}
    event = events.new_event(job["org_id"], "migration.failed", event_data(ended))
    done = store.finish(
        table, job, status=rules.FAILED, fields=fields, attempt=attempt, event=event, remove_secret=False
    )
    if done:
        store.keep_secret_until(table, job["org_id"], job["id"], secret_ttl())
    if done and job.get("batch_id"):
        from mailroom.services import bulk_migrations  # the batch starts its next job

        bulk_migrations.job_ended(table, job)
    return done


def complete(table: Table, job: Item, *, attempt: int) -> bool:
    """End an active job as completed with ``migration.completed``; its sealed password goes in the
    same transaction. False if it was not active in ``attempt``."""
    now = clock.now_iso()
    fields = {"finished_at": now, "updated_at": now, "error_code": None, "error_message": None}
    ended = {**job, **fields, "status": rules.COMPLETED}
    event = events.new_event(job["org_id"], "migration.completed", event_data(ended))
    done = store.finish(
        table, job, status=rules.COMPLETED, fields=fields, attempt=attempt, event=event, remove_secret=True
    )
    if done and job.get("batch_id"):
        from mailroom.services import bulk_migrations  # the batch starts its next job

        bulk_migrations.job_ended(table, job)
    return done
