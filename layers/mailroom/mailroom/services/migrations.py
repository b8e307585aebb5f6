"""IMAP migrations: the use cases of ``/api/v1/migrations`` (test a connection, start, list, read,
cancel, retry, delete) and the ends of a job as the state machine's steps reach them. The job model
is services/migration_jobs.py; the import itself runs in the migration state machine
(services/migration_steps.py).

* Starting (or retrying) a job takes a slot of its organization (a single migration: no other
  active job, bulk jobs included) and one of the platform in the transaction that writes it: 409
  ``conflict`` or 503 ``migration_capacity_reached`` when either is taken, never a read-then-write.
* A job that ends outside a bulk tick (completed, failed, cancelled, reconciled) lets its batch, if
  it has one, start the next job (``bulk_scheduler.job_ended``): the dependency points one way,
  from here to the batches, and the job model knows neither.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import migrations as rules
from mailroom.domain import passwords
from mailroom.domain.migration_estimates import SourceSize, Throughput, estimate_migration
from mailroom.errors import Invalid, MailroomError, Unavailable
from mailroom.services import bulk_scheduler
from mailroom.services import migration_jobs as jobs
from mailroom.services.migration_jobs import Source
from mailroom.settings import get_settings
from mailroom.store import mailboxes, workflows
from mailroom.store import migrations as store
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Rejected

DELETE_BUDGET_SECONDS = 5.0  # of partition deletion within a DELETE request (the rest has a TTL)
TEST_CONNECTION_SECONDS = 25.0  # the API function's timeout is 29 s
CANCEL_MESSAGE = "Cancelled through the API."


@dataclass(frozen=True, slots=True)
class StartRequest:
    mailbox_id: str
    source: Source
    target_password: str
    selected_folders: list[str] | None = None
    folder_strategy: str = "all"
    import_since: date | None = None
    skip_duplicates: bool = True


# ----------------------------------------------------------------------------- test a connection


async def test_connection(table: Table, source: Source) -> dict[str, Any]:
    """Log in and list the folders with their message counts (decoded names), then size them
    within bounds (services/migration_probe.py): ``{folders, estimate}``, the estimate from those
    counts and sizes at the deployment's recorded throughput. 422 ``connection_failed`` with a
    readable message when the source cannot be used."""
    from mailroom.imap.source import SourceError, open_session
    from mailroom.services import migration_probe as probe

    server = jobs.resolve_server(source)

    async def listing() -> tuple[list[Any], SourceSize]:
        async with open_session(jobs.source_account(source, server)) as session:
            folders = list(await session.folders())
            return folders, await probe.measure(session, probe.listed_targets(folders))

    try:
        # Each IMAP step is bounded; the whole must also end before the API's own timeout.
        found, size = await asyncio.wait_for(listing(), timeout=TEST_CONNECTION_SECONDS)
    except TimeoutError:
        raise Invalid(
            "connection_failed",
            "The source server did not list its folders in time.",
            hint="Check the host and port; a server with very many folders may need the migration itself.",
        ) from None
    except SourceError as exc:
        raise Invalid(
            "connection_failed",
            jobs.readable(exc),
            hint="Check source_host, source_port, source_security and the credentials, then try again.",
        ) from exc
    folders = {f.name: int(f.messages or 0) for f in found if f.selectable}
    return {"folders": folders, "estimate": estimate_migration(size, throughput(table)).as_dict()}


def throughput(table: Table) -> Throughput:
    """What this deployment's completed jobs recorded (the defaults before the first)."""
    return Throughput.of(store.throughput(table))


def job_estimate(job: Item, deployment: Throughput) -> dict[str, Any]:
    """A job's estimate: once planned, from its source's counted messages and their sizes (the
    plan step's probe); before, the defaults."""
    size = None
    if job.get("size_basis"):
        size = SourceSize(
            int(job.get("total_messages", 0)), int(job.get("source_bytes", 0)), job["size_basis"]
        )
    return estimate_migration(size, deployment).as_dict()


# ----------------------------------------------------------------------------- reading


def list_page(
    table: Table,
    org_id: str,
    *,
    per_page: int,
    cursor: str | None,
    status: str | None = None,
    mailbox_id: str | None = None,
) -> tuple[Page, list[dict[str, Any]], int | None]:
    """A page of the organization's jobs, newest first, without their folders; the total when
    unfiltered (a maintained count), else None."""
    page = store.list_page(
        table, org_id, per_page=per_page, cursor=cursor, status=status, mailbox_id=mailbox_id
    )
    total = None
    if status is None and mailbox_id is None:
        total = max(0, int((store.slots(table, org_id) or {}).get("count", 0)))
    return page, [jobs.job_view(job, None) for job in page.items], total


def view(table: Table, job: Item) -> dict[str, Any]:
    """The job with its per-folder progress. An active job whose execution ended without ending it
    is failed first (see ``migration_jobs.reconcile``)."""
    if jobs.reconcile(table, job):
        job = jobs.reload(table, job)
        bulk_scheduler.job_ended(table, job)
    return _with_folders(table, job)


def _with_folders(table: Table, job: Item) -> dict[str, Any]:
    view = jobs.job_view(job, store.folders(table, job["org_id"], job["id"]))
    return {**view, "estimate": job_estimate(job, throughput(table))}


# ----------------------------------------------------------------------------- starting


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


def _check_target(table: Table, org_id: str, mailbox_id: str, target_password: str) -> Item:
    mailbox = mailboxes.get(table, org_id, mailbox_id) if mailbox_id else None
    if mailbox is None:
        raise errors.validation("No mailbox with this id in the organization.", field="mailbox_id")
    if not mailbox.get("active", True):
        raise errors.validation("The target mailbox is deactivated.", field="mailbox_id")
    if not passwords.verify_password(target_password, mailbox.get("password_hash")):
        raise errors.validation(
            "target_password is not the target mailbox's password.", field="target_password"
        )
    return mailbox


def start(table: Table, org_id: str, request: StartRequest) -> dict[str, Any]:
    """Check, write and launch a job (201). 422 for the request or the target mailbox, 409 when
    another job of the organization is active, 503 ``migration_capacity_reached`` at the cap."""
    settings = get_settings()
    if request.folder_strategy not in rules.FOLDER_STRATEGIES:
        raise errors.validation(
            f"folder_strategy is one of {', '.join(rules.FOLDER_STRATEGIES)}", field="folder_strategy"
        )
    mailbox = _check_target(table, org_id, request.mailbox_id, request.target_password)
    server = jobs.resolve_server(request.source)
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
        "batch_id": None,
        "status": rules.PENDING,
        "attempt": 1,
        **store.reset_counters(),
        "batches_total": 0,
        "batches_done": 0,
        "execution_arn": workflows.execution_arn(jobs.execution_name(job_id, 1, 0)),
        "executions": 1,
        "started_at": now,
        "created_at": now,
        "updated_at": now,
    }
    ciphertext = jobs.seal(org_id, job_id, request.source.password)
    try:
        store.start(
            table,
            job,
            ciphertext=ciphertext,
            secret_ttl=jobs.secret_ttl(),
            org_limit=1,  # a single migration: nothing else of the organization may be active
            capacity=settings.migration_capacity,
        )
    except Rejected as rejected:
        raise _refused(rejected) from rejected
    jobs.launch(table, job, attempt=1)
    return _with_folders(table, jobs.reload(table, job))


# ----------------------------------------------------------------------------- actions


def cancel(table: Table, job: Item) -> dict[str, Any]:
    """Cancel an active job: its slots back at once, its execution stopped (a batch's job still
    waiting for a slot is cancelled as it is). 409 unless it is active."""
    if job.get("batch_id") and job["status"] == rules.PENDING and not job.get("execution_arn"):
        return _with_folders(table, bulk_scheduler.cancel_waiting_job(table, job, message=CANCEL_MESSAGE))
    if job["status"] not in rules.ACTIVE:
        raise errors.conflict(
            f"The migration is {job['status']}; only an active migration can be cancelled.",
            hint="Retry a failed or cancelled migration with POST …:retry.",
        )
    if not jobs.cancel_active(table, job, message=CANCEL_MESSAGE):
        current = jobs.load(table, job["org_id"], job["id"])
        raise errors.conflict(f"The migration is {current['status']}; it is no longer active.")
    bulk_scheduler.job_ended(table, job)
    return _with_folders(table, jobs.load(table, job["org_id"], job["id"]))


def retry(table: Table, job: Item, *, source_password: str | None = None) -> dict[str, Any]:
    """A failed or cancelled job again, same id, next attempt, counters at zero; what it imported
    before is recognised (not fetched or stored again, counted as imported). 409 if it is not
    retryable or another job is active, 503 at the cap, 422 when its password is gone and none given."""
    settings = get_settings()
    org_id, job_id = str(job["org_id"]), str(job["id"])
    if job["status"] not in rules.RETRYABLE:
        raise errors.conflict(
            f"The migration is {job['status']}; only a failed or cancelled migration can be retried."
        )
    ciphertext = jobs.seal(org_id, job_id, source_password) if source_password else None
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
        "execution_arn": workflows.execution_arn(jobs.execution_name(job_id, attempt, 0)),
        "executions": 1,
    }
    try:
        store.restart(
            table,
            job,
            fields,
            ciphertext=ciphertext,
            secret_ttl=jobs.secret_ttl(),
            org_limit=1,  # as a start: nothing else of the organization may be active
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
    try:
        jobs.launch(table, job, attempt=attempt)
    except MailroomError:
        bulk_scheduler.job_ended(table, job)  # it failed at once: a batch's job lets the next one go
        raise
    return _with_folders(table, jobs.load(table, org_id, job_id))


def delete(table: Table, job: Item) -> None:
    """Delete a job that is not running (409 otherwise), its sealed password and its partition."""
    if job["status"] in rules.ACTIVE:
        raise errors.conflict(
            "The migration is still running; cancel it first.", hint="POST /api/v1/migrations/{id}:cancel"
        )
    try:
        store.remove(table, job)
    except Rejected as rejected:
        raise errors.conflict("The migration changed meanwhile (retried?); read it again.") from rejected
    store.delete_partition(table, job["org_id"], job["id"], deadline=time.monotonic() + DELETE_BUDGET_SECONDS)


# ----------------------------------------------------------------------------- the workflow's ends


def complete(table: Table, job: Item, *, attempt: int) -> bool:
    """Finalize: the job completed (``migration_jobs.complete``); False if it was not active in
    ``attempt``. Its batch, if any, starts its next job."""
    done = jobs.complete(table, job, attempt=attempt)
    if done:
        bulk_scheduler.job_ended(table, job)
    return done


def fail(
    table: Table, job: Item, *, code: str, message: str, attempt: int | None, reason: str | None = None
) -> bool:
    """The workflow's failure handler: the job failed (``migration_jobs.fail``); False if it was
    not active in ``attempt``. Its batch, if any, starts its next job."""
    done = jobs.fail(table, job, code=code, message=message, attempt=attempt, reason=reason)
    if done:
        bulk_scheduler.job_ended(table, job)
    return done
