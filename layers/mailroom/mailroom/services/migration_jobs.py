"""A migration job: its model and its transitions, knowing nothing of the API or of bulk batches
(both build on it). The single migration's use cases are services/migrations.py; a bulk batch's
scheduler is services/bulk_scheduler.py; the state machine's steps are services/migration_steps.py.

Choices, documented in docs/migrations.md:

* A job holds a slot of its organization and one of the platform (``MAILROOM_MIGRATION_CAPACITY``)
  while it is active; the transition that ends it gives both back in its own transaction,
  conditional on the job being active, so a slot is released exactly once (store/migrations.py).
* The source password is sealed with KMS (encryption context: organization, job) in its own item.
  It is removed when the job completes or is deleted; a failed or cancelled job keeps it for
  ``MAILROOM_MIGRATION_SECRET_RETENTION_DAYS`` (TTL) so a retry works without asking again.
* The execution name is ``<job id>-a<attempt>-s<segment>``: its ARN is known before it starts (the
  job points at it in the same transaction that makes the job active), and a retried start with
  the same name cannot start a second execution.
* The functions that end a job (``fail``, ``complete``, ``cancel_active``, ``reconcile``) say
  whether they did; a job of a batch that ended lets its batch start the next one, which is the
  caller's to do (services/migrations.py's ``ended``), so this module needs no batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailroom import clock, errors
from mailroom.domain import migrations as rules
from mailroom.domain.migration_estimates import job_record
from mailroom.errors import Unavailable
from mailroom.observability import logger
from mailroom.settings import get_settings
from mailroom.store import events, kms, workflows
from mailroom.store import migrations as store
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.imap.source import SourceAccount, SourceError

RECONCILE_AFTER_SECONDS = 120  # an active job untouched this long has its execution checked


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
class Server:
    host: str
    port: int
    security: str


# ----------------------------------------------------------------------------- sources


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
    """The organization's job (404 for an unknown id, or another organization's)."""
    job = store.get(table, org_id, job_id) if job_id.startswith("mig_") else None
    if job is None:
        raise errors.not_found("Migration")
    return job


def reload(table: Table, job: Item) -> Item:
    """The job as it is now (as it was, if it has been deleted meanwhile)."""
    return store.get(table, job["org_id"], job["id"]) or job


# ----------------------------------------------------------------------------- secrets and executions


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


def launch(table: Table, job: Item, *, attempt: int) -> None:
    """Start the job's execution. If Step Functions refuses, the job fails at once (its slots
    back) and the caller gets a retryable 503 ``workflow_unavailable``."""
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


# ----------------------------------------------------------------------------- endings


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
    return done


def complete(table: Table, job: Item, *, attempt: int) -> bool:
    """End an active job as completed with ``migration.completed``; its sealed password goes in the
    same transaction, and what it measured (messages and bytes moved, time spent) joins the
    deployment's throughput there too, so a job counts once. ``job`` is as read after its last
    batch was counted. False if it was not active in ``attempt``."""
    now = clock.now_iso()
    fields = {"finished_at": now, "updated_at": now, "error_code": None, "error_message": None}
    ended = {**job, **fields, "status": rules.COMPLETED}
    event = events.new_event(job["org_id"], "migration.completed", event_data(ended))
    record = job_record(job, now)
    return store.finish(
        table,
        job,
        status=rules.COMPLETED,
        fields=fields,
        attempt=attempt,
        event=event,
        remove_secret=True,
        throughput=record.as_dict() if record else None,
    )


def cancel_active(table: Table, job: Item, *, message: str) -> bool:
    """Cancel an active job (its slots back at once), then stop its execution; the sealed password
    stays for a retry. False if it was not active any more."""
    now = clock.now_iso()
    ended = store.finish(
        table,
        job,
        status=rules.CANCELLED,
        fields={"finished_at": now, "updated_at": now, "error_message": message},
        remove_secret=False,
    )
    if not ended:
        return False
    store.keep_secret_until(table, job["org_id"], job["id"], secret_ttl())
    if job.get("execution_arn"):
        workflows.stop(str(job["execution_arn"]), error="MigrationCancelled", cause=message)
    return True


def reconcile(table: Table, job: Item) -> bool:
    """Fail an active job whose execution ended without ending it (stopped by hand, timed out, a
    step that failed even its failure handler), so it never stays active forever; True if it did.
    Only checked for jobs untouched for a while: an import updates its job at every batch."""
    if job["status"] not in rules.ACTIVE or not job.get("execution_arn"):
        return False
    updated = clock.parse_iso(str(job.get("updated_at") or job["created_at"]))
    if (clock.utcnow() - updated).total_seconds() < RECONCILE_AFTER_SECONDS:
        return False
    state = workflows.status(str(job["execution_arn"]))
    if state not in ("FAILED", "TIMED_OUT", "ABORTED"):
        return False
    code = "timeout" if state == "TIMED_OUT" else rules.INTERNAL_ERROR
    message = f"The migration workflow ended ({state.lower().replace('_', ' ')}) before the job finished."
    return fail(table, job, code=code, message=message, attempt=int(job.get("attempt", 1)))
