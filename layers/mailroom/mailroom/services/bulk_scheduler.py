"""The scheduler of bulk batches: a **tick** starts what may start now under the concurrency limits
and records the batch's state; the **sweep** ticks, every minute, the batches that may have work.
The use cases of ``/api/v1/migrations/bulk`` are services/bulk_migrations.py; the rules, pure, are
domain/bulk/batches.py; docs/migrations.md ("Bulk migrations") says what a user sees.

* A batch's jobs are ordinary migration jobs (services/migration_jobs.py), each *waiting* at first:
  ``pending`` without an execution, holding no slot.
* A tick reads the batch and its jobs, lets ``plan_tick`` choose the waiting jobs to start now, and
  starts each in a transaction that takes the organization's slot (at most
  ``migration_concurrency`` active jobs, single and bulk together) and the platform's (the global
  ``MAILROOM_MIGRATION_CAPACITY``), then its Step Functions execution; the job's workflow is the
  single migration's, unchanged. A job whose slot cannot be taken stays waiting.
* Ticks run when the batch starts, is resumed or retried; when one of its jobs ends (``job_ended``,
  called by whoever ended it outside a tick: services/migrations.py); and every minute from the
  sweep, for batches waiting on capacity freed elsewhere (found through a sharded index, never a
  Scan).
* A tick that finds the batch's last ``PAUSE_AFTER_HOST_FAILURES`` jobs on one host failed to
  connect or sign in pauses it (providers lock accounts that keep failing); resume continues.

This module depends on the job model only; the job model knows nothing of batches.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Sequence
from typing import Any

from mailroom import clock, errors
from mailroom.domain import migrations as rules
from mailroom.domain.bulk import batches as batch_rules
from mailroom.domain.bulk.batches import BatchStatus
from mailroom.domain.bulk.estimates import BatchLimits
from mailroom.domain.bulk.request import CONCURRENCY_LIMIT
from mailroom.errors import MailroomError
from mailroom.observability import logger, traced
from mailroom.services import bulk_views as views
from mailroom.services import migration_jobs as jobs
from mailroom.settings import get_settings
from mailroom.store import migration_batches as store
from mailroom.store import migrations as jobs_store
from mailroom.store import organizations, workflows
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected

TICK_ROUNDS = 3  # re-reads when a concurrent tick or action changed the batch meanwhile
ABORT_CREATING_AFTER_SECONDS = 600  # a start that died half-way is undone by the sweep after this
SWEEP_BUDGET_SECONDS = 240.0  # of the sweep function's 300 s
CANCEL_MESSAGE = "Cancelled through the API (bulk migration cancelled)."

# Set while a tick runs on this thread: a job ending inside it (a launch that failed, a job the
# tick cancels) must not start a nested tick of the same batch; the outer one reads again anyway.
_ticking: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk_migration_ticking", default=False)


# ----------------------------------------------------------------------------- the organization


def organization(table: Table, org_id: str) -> Item:
    org = organizations.get(table, org_id)
    if org is None:
        raise errors.not_found("Organization")
    return org


def org_limits(org: Item) -> dict[str, int]:
    from mailroom.services.mailbox_limits import org_limits as merged

    return merged(org)


def batch_limits(org: Item) -> BatchLimits:
    return BatchLimits.from_org_limits(org_limits(org), global_capacity=get_settings().migration_capacity)


def _capacity_left(table: Table, org_id: str, org_limit: int) -> int:
    org_active = int((jobs_store.slots(table, org_id) or {}).get("active", 0))
    platform_left = get_settings().migration_capacity - jobs_store.capacity_in_use(table)
    return max(0, min(org_limit - org_active, platform_left))


# ----------------------------------------------------------------------------- ticks


def tick(table: Table, org_id: str, batch_id: str, *, repair: bool = False) -> None:
    """Start what may start now and record the batch's state (see the module docstring).

    ``repair`` (the API's actions and the sweep, whose functions may stop and describe executions):
    also stop the running jobs of a cancelled batch and fail jobs whose execution ended without
    ending them. A tick inside a tick (a job ended by this one) does nothing; the outer one reads
    the batch again before it writes."""
    if _ticking.get():
        return
    token = _ticking.set(True)
    try:
        for _ in range(TICK_ROUNDS):
            if _tick_once(table, org_id, batch_id, repair=repair):
                return
        logger().warning("bulk migration kept changing during its tick", extra={"batch_id": batch_id})
    finally:
        _ticking.reset(token)


def job_ended(table: Table, job: Item) -> None:
    """A job reached a terminal status outside a tick: if it belongs to a batch, the batch starts
    its next job now. It never fails that transition: a tick that fails here is done by the sweep
    within a minute."""
    if not job.get("batch_id"):
        return
    try:
        tick(table, str(job["org_id"]), str(job["batch_id"]))
    except Exception:
        logger().exception(
            "bulk migration not ticked after a job ended",
            extra={"batch_id": job.get("batch_id"), "migration_id": job.get("id")},
        )


def _tick_once(table: Table, org_id: str, batch_id: str, *, repair: bool) -> bool:
    batch = store.get(table, org_id, batch_id)
    if batch is None or batch.get("creating"):
        return True
    items = store.jobs(table, batch)
    if batch.get("cancelled") and any(job["status"] in rules.ACTIVE for job in items):
        _cancel_jobs(table, items, running=repair)
        items = store.jobs(table, batch)
    elif repair:
        items = [reconciled(table, job) for job in items]

    org_limit = int(org_limits(organization(table, org_id))[CONCURRENCY_LIMIT])
    busy = {str(j["mailbox_id"]) for j in store.running_jobs(table, org_id) if j.get("batch_id") != batch_id}
    plan = batch_rules.plan_tick(
        views.batch_jobs(items),
        paused=bool(batch.get("paused")),
        cancelled=bool(batch.get("cancelled")),
        concurrency=org_limit,
        capacity_left=_capacity_left(table, org_id, org_limit),
        resumed_at=batch.get("resumed_at"),
        busy_mailboxes=busy,
    )
    flags: dict[str, Any] = {}
    if plan.paused_for_host is not None:
        flags = {
            "paused": True,
            "paused_host": plan.paused_for_host,
            "pause_reason": batch_rules.pause_message(plan.paused_for_host),
        }
        logger().info("bulk migration paused", extra={"batch_id": batch_id, "host": plan.paused_for_host})
    if plan.start:
        by_id = {str(job["id"]): job for job in items}
        for chosen in plan.start:
            if _start_job(table, by_id[chosen.id], org_limit=org_limit) == "full":
                break  # the organization's or the platform's slots are taken: wait for a job to end
        items = store.jobs(table, batch)
    return _save(table, batch, items, flags=flags)


def _save(table: Table, batch: Item, items: Sequence[Item], *, flags: dict[str, Any]) -> bool:
    current = views.status(batch, items, paused=bool(flags.get("paused", batch.get("paused"))))
    now = clock.now_iso()
    fields: dict[str, Any] = {"status": current.value, **views.summary(items)}
    if current in views.SETTLED and not batch.get("finished_at"):
        fields["finished_at"] = now
    running = any(views.is_running(job) for job in items)
    # Swept while it may have something to start (or a job to watch); a paused or settled batch
    # waits for its user, and an action puts it back.
    swept = current in (BatchStatus.PENDING, BatchStatus.PROCESSING) or running
    return store.save_state(table, batch, fields=fields, swept=swept, now=now, flags=flags)


def _start_job(table: Table, job: Item, *, org_limit: int) -> str:
    """``started``, ``lost`` (someone else moved the job), ``full`` (no slot) or ``failed`` (its
    execution could not be started: the job failed, its slots back)."""
    attempt = int(job.get("attempt", 1))
    arn = workflows.execution_arn(jobs.execution_name(str(job["id"]), attempt, 0))
    now = clock.now_iso()
    try:
        store.start_waiting(
            table,
            job,
            execution_arn=arn,
            now=now,
            org_limit=org_limit,
            capacity=get_settings().migration_capacity,
        )
    except Rejected as rejected:
        return "lost" if "job" in rejected.roles else "full"
    # It may have waited a while: its sealed password lives as long as a new job's from now on.
    jobs_store.keep_secret_until(table, job["org_id"], job["id"], jobs.secret_ttl())
    try:
        jobs.launch(table, {**job, "execution_arn": arn, "started_at": now}, attempt=attempt)
    except MailroomError:
        return "failed"
    return "started"


def _cancel_jobs(table: Table, items: Sequence[Item], *, running: bool) -> None:
    """Cancel the waiting jobs (they hold nothing) and, when ``running``, stop the running ones
    (slots back, execution stopped)."""
    by_id = {str(item["id"]): item for item in items}
    for job in batch_rules.jobs_to_cancel(views.batch_jobs(items)):
        item = by_id[job.id]
        if store.is_waiting(item):
            store.cancel_waiting(table, item, now=clock.now_iso(), message=CANCEL_MESSAGE)
        elif running:
            jobs.cancel_active(table, item, message=CANCEL_MESSAGE)  # False: it ended meanwhile


def reconciled(table: Table, job: Item) -> Item:
    """The job as it really is: one started by a tick that died before its StartExecution is
    launched now, one whose execution ended without ending it is failed (``migration_jobs.reconcile``).
    Inside a tick nothing else needs telling; elsewhere the caller tells the batch."""
    if not views.is_running(job):
        return job
    if job["status"] == rules.PENDING and _never_launched(job):
        # The name is the job's attempt's, so this cannot start a second execution.
        with contextlib.suppress(MailroomError):  # a failed launch failed the job (its slots back)
            jobs.launch(table, job, attempt=int(job.get("attempt", 1)))
        return jobs.reload(table, job)
    return jobs.reload(table, job) if jobs.reconcile(table, job) else job


def _never_launched(job: Item) -> bool:
    updated = clock.parse_iso(str(job.get("updated_at") or job["created_at"]))
    if (clock.utcnow() - updated).total_seconds() < jobs.RECONCILE_AFTER_SECONDS:
        return False
    return workflows.status(str(job["execution_arn"])) is None


def cancel_waiting_job(table: Table, job: Item, *, message: str) -> Item:
    """Cancel a batch's job that never started (it holds no slot, so the single cancel, which
    gives slots back, must not end it), then tick its batch. 409 if it moved meanwhile."""
    if not store.cancel_waiting(table, job, now=clock.now_iso(), message=message):
        raise errors.conflict("The migration changed meanwhile; read it and try again.")
    job_ended(table, job)
    return jobs.reload(table, job)


# ----------------------------------------------------------------------------- the sweep


@traced
def sweep(table: Table, *, budget_seconds: float = SWEEP_BUDGET_SECONDS) -> dict[str, int]:
    """Every minute: tick the batches that may have work (capacity freed by another organization
    or a single migration does not tick them otherwise), undo starts that died half-way, and
    finish deleting deleted batches' job partitions."""
    deadline = time.monotonic() + budget_seconds
    began = clock.now_iso()
    counts = {"ticked": 0, "skipped": 0, "aborted": 0, "purged": 0, "errors": 0}
    for shard in range(store.SWEEP_SHARDS):
        cursor = None
        while time.monotonic() < deadline:
            # Only entries not touched since the sweep began: a tick moves its batch to the end of
            # the index, and must not bring it round again in the same sweep.
            page = store.swept(table, shard, cursor=cursor, before=began)
            for item in page.items:
                if time.monotonic() >= deadline:
                    break
                try:
                    counts[_sweep_one(table, item, deadline)] += 1
                except Exception:
                    counts["errors"] += 1
                    logger().exception(
                        "bulk migration sweep failed on an item", extra={"key": item.get("SK")}
                    )
            cursor = page.next_cursor
            if cursor is None:
                break
    return counts


def _sweep_one(table: Table, item: Item, deadline: float) -> str:
    if item.get("type") == store.PURGE_TYPE:
        store.purge_partitions(table, item, deadline=deadline)
        return "purged"
    if item.get("creating"):
        age = (clock.utcnow() - clock.parse_iso(str(item["created_at"]))).total_seconds()
        if age >= ABORT_CREATING_AFTER_SECONDS:
            store.abort(table, item)
            return "aborted"
        return "skipped"  # still being written by its request
    tick(table, str(item["org_id"]), str(item["id"]), repair=True)
    return "ticked"
