"""Bulk IMAP migrations: the use cases of ``/api/v1/migrations/bulk`` (preview, start, list, read,
cancel, retry, resume, delete, a failed job's new password) and the scheduler that runs a batch's
jobs under the concurrency limits. The rules are domain/bulk_migrations.py; docs/migrations.md
("Bulk migrations") says what a user sees.

How a batch runs:

* Starting it writes one ordinary migration job per valid row (services/migrations.py's job, with
  ``batch_id`` and ``row``; its source password sealed with KMS exactly as a single job's), each
  *waiting*: ``pending`` without an execution, holding no slot.
* A **tick** (``tick``) reads the batch and its jobs, lets ``plan_tick`` choose the waiting jobs
  to start now, and starts each in a transaction that takes the organization's slot (at most
  ``migration_concurrency`` active jobs, single and bulk together) and the platform's (the global
  ``MAILROOM_MIGRATION_CAPACITY``), then its Step Functions execution; the job's workflow is the
  single migration's, unchanged. A job whose slot cannot be taken stays waiting.
* Ticks run when the batch starts, is resumed or retried; when one of its jobs ends (the hook in
  services/migrations.py's ``complete``/``fail``/``cancel_job``); and every minute from the sweep,
  for batches waiting on capacity freed elsewhere (found through a sharded index, never a Scan).
* A tick that finds the batch's last ``PAUSE_AFTER_HOST_FAILURES`` jobs on one host failed to
  connect or sign in pauses it (providers lock accounts that keep failing); resume continues.

A single migration keeps its rule (one active migration per organization: it starts only when
nothing else is active); a batch's jobs share the organization's slots with it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses
from mailroom.domain import bulk_migrations as bulk
from mailroom.domain import migrations as rules
from mailroom.errors import Conflict, LimitReached, MailroomError
from mailroom.observability import logger, traced
from mailroom.services import migrations as jobs
from mailroom.settings import get_settings
from mailroom.store import keys, organizations, workflows
from mailroom.store import migration_batches as store
from mailroom.store import migrations as jobs_store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected

TICK_ROUNDS = 3  # re-reads when a concurrent tick or action changed the batch meanwhile
ABORT_CREATING_AFTER_SECONDS = 600  # a start that died half-way is undone by the sweep after this
DELETE_BUDGET_SECONDS = 8.0  # of job partition deletion within a DELETE request (the sweep finishes)
SWEEP_BUDGET_SECONDS = 240.0  # of the sweep function's 300 s
CANCEL_MESSAGE = "Cancelled through the API (bulk migration cancelled)."

# Set while a tick runs on this thread: a job ending inside it (a launch that failed, a job the
# tick cancels) must not start a nested tick of the same batch; the outer one reads again anyway.
_ticking: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk_migration_ticking", default=False)


@dataclass(frozen=True, slots=True)
class BulkRequest:
    """What ``POST /migrations/bulk/preview`` and ``POST /migrations/bulk`` receive."""

    data: str
    provider: str | None = None
    source_host: str | None = None
    source_port: int | None = None
    source_security: str | None = None
    per_row_server: bool = False
    name: str | None = None
    folder_strategy: str = "all"
    import_since: date | None = None
    skip_duplicates: bool = True
    idempotency_key: str | None = None

    def server(self) -> bulk.ServerRequest:
        return bulk.ServerRequest(
            provider=self.provider,
            source_host=self.source_host,
            source_port=self.source_port,
            source_security=self.source_security,
            per_row_server=self.per_row_server,
        )

    def fingerprint(self) -> str:
        """What a repeated ``idempotency_key`` must come with to be the same request."""
        fields = {k: v for k, v in asdict(self).items() if k != "idempotency_key"}
        canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    view: dict[str, Any]
    replayed: bool  # an earlier start with the same idempotency_key: its batch, nothing new


# ----------------------------------------------------------------------------- limits and lookups


def _org(table: Table, org_id: str) -> Item:
    org = organizations.get(table, org_id)
    if org is None:
        raise errors.not_found("Organization")
    return org


def org_limits(org: Item) -> dict[str, int]:
    from mailroom.services.mailboxes import org_limits as merged

    return merged(org)


def batch_limits(org: Item) -> bulk.BatchLimits:
    return bulk.BatchLimits.from_org_limits(
        org_limits(org), global_capacity=get_settings().migration_capacity
    )


def _available_storage_bytes(org: Item) -> int:
    pool = int(org_limits(org).get("storage_mb", 0)) * 1024 * 1024
    return max(0, pool - int(org.get("storage_used_bytes", 0)))


def _destinations(data: str, max_rows: int) -> set[str]:
    """The destination addresses the data names, normalized as the preview will ask for them, to
    look them all up at once (one BatchGetItem per 100, not one read per row)."""
    try:
        lines = bulk.parse_data(data)
    except bulk.InvalidBulkRequest:
        return set()  # the preview says why
    if len(lines) > max_rows:
        return set()  # refused before any lookup
    found = set()
    for line in lines:
        if len(line.fields) >= len(bulk.BASIC_COLUMNS):
            try:
                found.add(addresses.normalize_hosted(line.fields[2].strip()))
            except addresses.InvalidAddress:
                continue
    return found


def _lookups(
    table: Table, org_id: str, data: str, max_rows: int
) -> tuple[Callable[[str], str | None], Callable[[str], bool]]:
    """``mailbox_id_for`` (an active mailbox of the organization with this address) and
    ``destination_busy`` (the mailbox is importing right now) for the preview."""
    wanted = sorted(_destinations(data, max_rows))
    entries = table.batch_get([(keys.org_pk(org_id), keys.address_sk(a)) for a in wanted])
    # Addresses are unique per organization case-insensitively (keys.address_sk lower-cases).
    owners = {str(e["address"]).lower(): str(e["id"]) for e in entries if e.get("kind") == "mailbox"}
    mailboxes = table.batch_get(
        [(keys.org_pk(org_id), keys.mailbox_sk(m)) for m in sorted(set(owners.values()))]
    )
    active = {str(m["id"]) for m in mailboxes if m.get("active", True)}
    busy = {str(j["mailbox_id"]) for j in store.running_jobs(table, org_id)}

    def mailbox_id_for(address: str) -> str | None:
        mailbox_id = owners.get(address.lower())
        return mailbox_id if mailbox_id in active else None

    return mailbox_id_for, busy.__contains__


def _preview(table: Table, org: Item, request: BulkRequest, limits: bulk.BatchLimits) -> bulk.Preview:
    from mailroom.imap import presets

    mailbox_id_for, destination_busy = _lookups(table, org["id"], request.data, limits.max_rows_per_batch)
    try:
        return bulk.preview(
            request.data,
            request=request.server(),
            limits=limits,
            resolve_preset=presets.resolve,
            mailbox_id_for=mailbox_id_for,
            destination_busy=destination_busy,
            available_storage_bytes=_available_storage_bytes(org),
            allow_private_hosts=get_settings().imap_allow_private,
        )
    except bulk.RowLimitExceeded as exc:
        raise LimitReached(
            "row_limit_exceeded",
            str(exc),
            fields=[{"field": exc.field, "message": str(exc)}],
            hint=f"Send at most {exc.limit} rows per batch ({exc.limit_name}).",
        ) from exc
    except bulk.InvalidBulkRequest as exc:
        raise errors.validation(str(exc), field=exc.field) from exc


def preview(table: Table, org_id: str, request: BulkRequest) -> dict[str, Any]:
    org = _org(table, org_id)
    return _preview(table, org, request, batch_limits(org)).as_dict()


# ----------------------------------------------------------------------------- views


def _batch_job(job: Item) -> bulk.BatchJob:
    return bulk.BatchJob(
        id=str(job["id"]),
        row=int(job.get("row", 0)),
        status=str(job["status"]),
        destination_mailbox_id=str(job["mailbox_id"]),
        source_host=str(job["source_host"]),
        started=not store.is_waiting(job),
        error_code=job.get("error_reason") or job.get("error_code"),
        finished_at=job.get("finished_at"),
    )


def job_summary(job: Item) -> dict[str, Any]:
    """One job as the batch shows it: the single migration's fields that matter per row (source
    email masked), its row, and ``queued`` (waiting for a slot)."""
    view = jobs.job_view(job, None)
    return {
        "id": view["id"],
        "row": int(job.get("row", 0)),
        "source_email": view["source_email"],
        "destination_email": view["mailbox_email"],
        "mailbox_id": view["mailbox_id"],
        "source_host": view["source_host"],
        "source_port": view["source_port"],
        "source_security": view["source_security"],
        "status": view["status"],
        "queued": store.is_waiting(job),
        "progress": view["progress"],
        "total_messages": view["total_messages"],
        "imported_messages": view["imported_messages"],
        "failed_messages": view["failed_messages"],
        "skipped_duplicates": view["skipped_duplicates"],
        "error_code": view["error_code"],
        "error_reason": view["error_reason"],
        "error_message": view["error_message"],
        "attempt": view["attempt"],
        "started_at": view["started_at"],
        "finished_at": view["finished_at"],
        "updated_at": view["updated_at"],
    }


def _summary(items: Sequence[Item]) -> dict[str, Any]:
    """Counts by status (plus queued: waiting for a slot, and running), message totals, progress:
    what the batch item keeps as of its last tick and GET one computes from the jobs it reads."""
    by_status = Counter(str(job["status"]) for job in items)
    counts = {status: by_status.get(status, 0) for status in rules.STATUSES}
    queued = sum(1 for job in items if store.is_waiting(job))
    counts |= {
        "queued": queued,
        "running": sum(by_status.get(s, 0) for s in rules.ACTIVE) - queued,
        "total": len(items),
    }
    progress = [
        rules.progress(
            status=str(job["status"]),
            total=int(job.get("total_messages", 0)),
            imported=int(job.get("imported_messages", 0)),
            failed=int(job.get("failed_messages", 0)),
            skipped=int(job.get("skipped_duplicates", 0)),
        )
        for job in items
    ]
    return {
        "counts": counts,
        "progress": sum(progress) // len(progress) if progress else 0,
        "total_messages": sum(int(job.get("total_messages", 0)) for job in items),
        "imported_messages": sum(int(job.get("imported_messages", 0)) for job in items),
        "failed_messages": sum(int(job.get("failed_messages", 0)) for job in items),
        "skipped_duplicates": sum(int(job.get("skipped_duplicates", 0)) for job in items),
    }


def _status(batch: Item, items: Sequence[Item]) -> bulk.BatchStatus:
    return bulk.derive_batch_status(
        [_batch_job(job) for job in items],
        paused=bool(batch.get("paused")),
        cancelled=bool(batch.get("cancelled")),
    )


def _poll_hint(status: bulk.BatchStatus) -> int | None:
    if status in bulk.TERMINAL_BATCH_STATUSES:
        return None
    return 30 if status is bulk.BatchStatus.PAUSED else 10


def batch_view(batch: Item, items: Sequence[Item] | None) -> dict[str, Any]:
    """The API representation. ``items`` None: a list entry, from the batch's last tick; otherwise
    status and counts are computed from the jobs as read now, and every job is listed."""
    if items is None:
        status = bulk.BatchStatus(str(batch.get("status", bulk.BatchStatus.PENDING)))
        summary = {key: batch.get(key) or empty for key, empty in _summary([]).items()}
    else:
        status = _status(batch, items)
        summary = _summary(items)
    server = batch.get("server") or {}
    return {
        "id": batch["id"],
        "name": batch["name"],
        "status": status.value,
        "provider": batch["provider"],
        "per_row_server": bool(batch.get("per_row_server")),
        "source_host": server.get("source_host"),
        "source_port": server.get("source_port"),
        "source_security": server.get("source_security"),
        "folder_strategy": batch.get("folder_strategy", "all"),
        "import_since": batch.get("import_since"),
        "skip_duplicates": bool(batch.get("skip_duplicates", True)),
        "total_jobs": len(batch.get("job_ids", [])),
        **summary,
        "rows": batch.get("row_counts") or {},
        "limits": batch.get("limits") or {},
        "paused": status is bulk.BatchStatus.PAUSED,
        "pause_reason": batch.get("pause_reason") if status is bulk.BatchStatus.PAUSED else None,
        "allowed_actions": bulk.allowed_actions(status),
        "poll_hint_seconds": _poll_hint(status),
        "jobs": None if items is None else [job_summary(job) for job in items],
        "created_at": batch["created_at"],
        "updated_at": batch.get("updated_at"),
        "finished_at": batch.get("finished_at") if status in bulk.TERMINAL_BATCH_STATUSES else None,
    }


def load(table: Table, org_id: str, batch_id: str) -> Item:
    batch = store.get(table, org_id, batch_id) if batch_id.startswith("bat_") else None
    if batch is None or batch.get("creating"):
        raise errors.not_found("Bulk migration")
    return batch


def get_view(table: Table, org_id: str, batch_id: str) -> dict[str, Any]:
    batch = load(table, org_id, batch_id)
    items = store.jobs(table, batch)
    if any(not store.is_waiting(job) and job["status"] in rules.ACTIVE for job in items):
        # An execution that ended without ending its job (stopped by hand, timed out) fails it here,
        # as GET of a single migration does; that job's end then ticks the batch.
        items = [_reconciled(table, job) for job in items]
    return batch_view(batch, items)


def _reconciled(table: Table, job: Item) -> Item:
    if store.is_waiting(job) or job["status"] not in rules.ACTIVE:
        return job
    if job["status"] == rules.PENDING and _never_launched(job):
        # Started (slots taken) by a tick that died before its StartExecution: start it now. The
        # name is the job's attempt's, so this cannot start a second execution.
        with contextlib.suppress(MailroomError):  # a failed launch failed the job (its slots back)
            jobs.launch(table, job, attempt=int(job.get("attempt", 1)))
        return jobs_store.get(table, job["org_id"], str(job["id"])) or job
    return jobs.reconcile(table, job)


def _never_launched(job: Item) -> bool:
    updated = clock.parse_iso(str(job.get("updated_at") or job["created_at"]))
    if (clock.utcnow() - updated).total_seconds() < jobs.RECONCILE_AFTER_SECONDS:
        return False
    return workflows.status(str(job["execution_arn"])) is None


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Any, list[Any], int]:
    page = store.list_page(table, org_id, per_page=per_page, cursor=cursor)
    visible = [batch for batch in page.items if not batch.get("creating")]
    return page, [batch_view(batch, None) for batch in visible], store.batch_count(table, org_id)


# ----------------------------------------------------------------------------- starting


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _replay(table: Table, org_id: str, claim: Item, fingerprint: str) -> Started:
    if claim.get("fingerprint") != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "This idempotency_key was already used to start a different bulk migration.",
            hint="Use a new idempotency_key for a new batch.",
        )
    return Started(get_view(table, org_id, str(claim["batch_id"])), replayed=True)


def _new_job(
    org_id: str, batch_id: str, job_id: str, row: bulk.BulkRow, request: BulkRequest, provider: str, now: str
) -> Item:
    server = row.server
    if server is None or row.destination_mailbox_id is None:
        raise ValueError(f"row {row.row} is not a valid row")  # valid rows have both
    return {
        "id": job_id,
        "org_id": org_id,
        "mailbox_id": row.destination_mailbox_id,
        "mailbox_email": row.destination_email,
        "provider": provider,
        "source_host": server.host,
        "source_port": server.port,
        "source_security": server.security,
        "source_email": row.source_email,
        "selected_folders": None,
        "folder_strategy": request.folder_strategy,
        "import_since": request.import_since.isoformat() if request.import_since else None,
        "skip_duplicates": request.skip_duplicates,
        "batch_id": batch_id,
        "row": row.row,
        "status": rules.PENDING,
        "attempt": 1,
        **jobs_store.reset_counters(),
        "batches_total": 0,
        "batches_done": 0,
        "executions": 0,
        "created_at": now,
        "updated_at": now,
    }


def start(table: Table, org_id: str, request: BulkRequest) -> Started:
    """Preview the data, then create one waiting job per valid row and tick the batch (201).
    422 for the request or when no row is valid; with an ``idempotency_key`` used before, the
    batch it started (``replayed``) or 409 ``idempotency_key_reused`` for another request."""
    if request.folder_strategy not in rules.FOLDER_STRATEGIES:
        raise errors.validation(
            f"folder_strategy is one of {', '.join(rules.FOLDER_STRATEGIES)}", field="folder_strategy"
        )
    fingerprint = request.fingerprint()
    key_hash = _key_hash(request.idempotency_key) if request.idempotency_key else None
    if key_hash:
        claim = store.get_key_claim(table, org_id, key_hash)
        if claim is not None:
            return _replay(table, org_id, claim, fingerprint)
    org = _org(table, org_id)
    limits = batch_limits(org)
    result = _preview(table, org, request, limits)
    valid = result.valid_rows
    if not valid:
        raise errors.validation(
            "No row of data is valid, so there is nothing to start. Preview the data to see each row's "
            "problem.",
            field="data",
            code="no_valid_rows",
        )
    moment = clock.utcnow()
    now = clock.isoformat(moment)
    try:
        name = bulk.batch_name(request.name, now=moment, accounts=len(valid))
    except bulk.InvalidBulkRequest as exc:
        raise errors.validation(str(exc), field=exc.field) from exc

    batch_id = ids.new_id("bat")
    job_ids = [ids.new_id("mig") for _ in valid]
    ttl = jobs.secret_ttl()
    # Sealed before anything is written: a KMS failure leaves nothing behind.
    secrets = [
        jobs_store.secret_item(org_id, job_id, jobs.seal(org_id, job_id, row.password or ""), ttl)
        for job_id, row in zip(job_ids, valid, strict=True)
    ]
    job_items = [
        store.job_item(_new_job(org_id, batch_id, job_id, row, request, result.provider, now))
        for job_id, row in zip(job_ids, valid, strict=True)
    ]
    server = bulk.resolve_request_server(
        request.server(),
        resolve_preset=_resolve_preset(),
        allow_private_hosts=get_settings().imap_allow_private,
    )
    batch: Item = {
        "id": batch_id,
        "org_id": org_id,
        "name": name,
        "provider": result.provider,
        "per_row_server": request.per_row_server,
        "server": server.as_dict() if server else None,
        "folder_strategy": request.folder_strategy,
        "import_since": request.import_since.isoformat() if request.import_since else None,
        "skip_duplicates": request.skip_duplicates,
        "job_ids": job_ids,
        "row_counts": result.counts,
        "limits": limits.as_dict(),
        "status": bulk.BatchStatus.PENDING.value,
        **_summary([]),
        "paused": False,
        "cancelled": False,
        "key_hash": key_hash,
        "creating": True,
        "version": 0,
        "created_at": now,
        "updated_at": now,
    }
    claim = {"key_hash": key_hash, "batch_id": batch_id, "fingerprint": fingerprint, "created_at": now}
    try:
        store.create(table, batch, key_claim=claim if key_hash else None)
    except Rejected as rejected:
        if "key" in rejected.roles and key_hash:
            existing = store.get_key_claim(table, org_id, key_hash)
            if existing is not None:
                return _replay(table, org_id, existing, fingerprint)
        raise
    try:
        store.write_jobs(table, job_items, secrets)
    except Exception:
        logger().exception("bulk migration jobs not written; undoing the batch", extra={"batch_id": batch_id})
        store.abort(table, batch)
        raise
    store.created(table, org_id, batch_id)
    try:
        tick(table, org_id, batch_id)
    except Exception:
        # The batch exists and is valid: answering 5xx would make a retry start a second one. What
        # this tick did not start, the sweep does (and launches a job it took slots for).
        logger().exception("bulk migration not ticked after its start", extra={"batch_id": batch_id})
    view = get_view(table, org_id, batch_id)
    view["skipped_rows"] = [row.as_dict() for row in result.rows if not row.is_valid]
    return Started(view, replayed=False)


def _resolve_preset() -> bulk.PresetResolver:
    from mailroom.imap import presets

    return presets.resolve


# ----------------------------------------------------------------------------- scheduling


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


def _capacity_left(table: Table, org_id: str, org_limit: int) -> int:
    org_active = int((jobs_store.slots(table, org_id) or {}).get("active", 0))
    platform_left = get_settings().migration_capacity - jobs_store.capacity_in_use(table)
    return max(0, min(org_limit - org_active, platform_left))


def _tick_once(table: Table, org_id: str, batch_id: str, *, repair: bool) -> bool:
    batch = store.get(table, org_id, batch_id)
    if batch is None or batch.get("creating"):
        return True
    items = store.jobs(table, batch)
    if batch.get("cancelled") and any(job["status"] in rules.ACTIVE for job in items):
        _cancel_jobs(table, items, running=repair)
        items = store.jobs(table, batch)
    elif repair:
        items = [_reconciled(table, job) for job in items]

    org_limit = int(org_limits(_org(table, org_id))[bulk.CONCURRENCY_LIMIT])
    busy = {str(j["mailbox_id"]) for j in store.running_jobs(table, org_id) if j.get("batch_id") != batch_id}
    plan = bulk.plan_tick(
        [_batch_job(job) for job in items],
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
            "pause_reason": bulk.pause_message(plan.paused_for_host),
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
    status = bulk.derive_batch_status(
        [_batch_job(job) for job in items],
        paused=bool(flags.get("paused", batch.get("paused"))),
        cancelled=bool(batch.get("cancelled")),
    )
    now = clock.now_iso()
    fields: dict[str, Any] = {"status": status.value, **_summary(items)}
    if status in bulk.TERMINAL_BATCH_STATUSES and not batch.get("finished_at"):
        fields["finished_at"] = now
    running = any(not store.is_waiting(job) and job["status"] in rules.ACTIVE for job in items)
    # Swept while it may have something to start (or a job to watch); a paused or settled batch
    # waits for its user, and an action puts it back.
    swept = status in (bulk.BatchStatus.PENDING, bulk.BatchStatus.PROCESSING) or running
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


def _cancel_jobs(table: Table, items: Iterable[Item], *, running: bool) -> None:
    """Cancel the waiting jobs (they hold nothing) and, when ``running``, stop the running ones
    through the single migration's cancel (slots back, execution stopped)."""
    for job in bulk.jobs_to_cancel([_batch_job(job) for job in items]):
        item = next(i for i in items if i["id"] == job.id)
        if store.is_waiting(item):
            store.cancel_waiting(table, item, now=clock.now_iso(), message=CANCEL_MESSAGE)
        elif running:
            try:
                jobs.cancel_job(table, item["org_id"], str(item["id"]))
            except MailroomError:
                continue  # it ended meanwhile


def job_ended(table: Table, job: Item) -> None:
    """The hook services/migrations.py calls when a job of a batch reaches a terminal status. It
    never fails that transition: a tick that fails here is done by the sweep within a minute."""
    try:
        tick(table, str(job["org_id"]), str(job["batch_id"]))
    except Exception:
        logger().exception(
            "bulk migration not ticked after a job ended",
            extra={"batch_id": job.get("batch_id"), "migration_id": job.get("id")},
        )


def cancel_waiting_job(table: Table, job: Item) -> Item:
    """``POST /migrations/{id}:cancel`` of a batch's job that never started (it holds no slot, so
    the single cancel, which gives slots back, must not end it)."""
    if not store.cancel_waiting(table, job, now=clock.now_iso(), message="Cancelled through the API."):
        raise errors.conflict("The migration changed meanwhile; read it and try again.")
    job_ended(table, job)
    return jobs.load(table, job["org_id"], str(job["id"]))


# ----------------------------------------------------------------------------- actions


def _act(
    table: Table,
    org_id: str,
    batch_id: str,
    action: bulk.BatchAction,
    change: Callable[[Item, list[Item]], dict[str, Any]],
) -> None:
    """Check ``action`` against the batch as read and write ``change(batch, jobs)``'s flags if the
    batch is still as read; read again when a tick got there first."""
    for _ in range(TICK_ROUNDS):
        batch = load(table, org_id, batch_id)
        items = store.jobs(table, batch)
        status = _status(batch, items)
        try:
            bulk.check_action(action, status)
        except bulk.ActionNotAllowed as exc:
            raise errors.conflict(str(exc), hint=_hint(status)) from exc
        flags = change(batch, items)
        if store.save_state(
            table, batch, fields={"status": status.value}, swept=True, now=clock.now_iso(), flags=flags
        ):
            return
    raise errors.conflict("The bulk migration kept changing; read it and try again.")


def _hint(status: bulk.BatchStatus) -> str | None:
    actions = bulk.allowed_actions(status)
    return f"Allowed now: {', '.join(actions)}." if actions else None


def cancel(table: Table, org_id: str, batch_id: str) -> dict[str, Any]:
    """Cancel the batch: waiting jobs are cancelled, running ones stopped (409 once it settled)."""
    _act(table, org_id, batch_id, bulk.BatchAction.CANCEL, lambda batch, items: {"cancelled": True})
    tick(table, org_id, batch_id, repair=True)
    return get_view(table, org_id, batch_id)


def retry(table: Table, org_id: str, batch_id: str) -> dict[str, Any]:
    """Put the failed jobs (and, for a cancelled batch, the cancelled ones) back in the queue and
    tick. 409 while the batch is running, or when there is nothing to retry."""
    chosen: list[Item] = []

    def change(batch: Item, items: list[Item]) -> dict[str, Any]:
        again = {
            job.id
            for job in bulk.jobs_to_retry(
                [_batch_job(j) for j in items], batch_cancelled=bool(batch.get("cancelled"))
            )
        }
        if not again:
            raise errors.conflict("No failed job in this batch to retry.")
        chosen[:] = [job for job in items if job["id"] in again]
        return _resumed(cancelled=False)

    _act(table, org_id, batch_id, bulk.BatchAction.RETRY, change)
    now = clock.now_iso()
    for job in chosen:
        # A job moved meanwhile (retried or deleted through the single endpoint) is left as it is.
        store.requeue(table, job, now=now)
    tick(table, org_id, batch_id, repair=True)
    return get_view(table, org_id, batch_id)


def _resumed(**extra: Any) -> dict[str, Any]:
    # resumed_at: host failures before it no longer count towards pausing again.
    return {
        "paused": False,
        "paused_host": None,
        "pause_reason": None,
        "finished_at": None,
        "resumed_at": clock.now_iso(),
        **extra,
    }


def resume(table: Table, org_id: str, batch_id: str) -> dict[str, Any]:
    """Continue a paused batch (409 otherwise)."""
    _act(table, org_id, batch_id, bulk.BatchAction.RESUME, lambda batch, items: _resumed())
    tick(table, org_id, batch_id, repair=True)
    return get_view(table, org_id, batch_id)


def delete(table: Table, org_id: str, batch_id: str) -> None:
    """Delete a settled batch with its jobs' records (409 while any job is active)."""
    batch = load(table, org_id, batch_id)
    items = store.jobs(table, batch)
    status = _status(batch, items)
    try:
        bulk.check_action(bulk.BatchAction.DELETE, status)
    except bulk.ActionNotAllowed as exc:
        raise errors.conflict(str(exc), hint="Cancel it first, then delete it.") from exc
    if any(job["status"] in rules.ACTIVE for job in items):
        raise errors.conflict("A job of this batch is still running; cancel the batch first.")
    try:
        store.remove(table, batch, items, now=clock.now_iso())
    except Rejected as rejected:
        raise errors.conflict(
            "The bulk migration changed meanwhile (a job retried?); read it again."
        ) from rejected
    purge = {"org_id": org_id, "batch_id": batch_id, "job_ids": [job["id"] for job in items]}
    if purge["job_ids"]:
        store.purge_partitions(table, purge, deadline=time.monotonic() + DELETE_BUDGET_SECONDS)


def update_job_password(
    table: Table, org_id: str, batch_id: str, job_id: str, password: str
) -> dict[str, Any]:
    """A new source password for a failed job of the batch (then retry the batch). 404 for a job
    of another batch, 409 unless the job failed."""
    batch = load(table, org_id, batch_id)
    job = jobs_store.get(table, org_id, job_id) if job_id in batch.get("job_ids", []) else None
    if job is None:
        raise errors.not_found("Migration job")
    if not bulk.can_update_job_password(_batch_job(job)):
        raise errors.conflict(
            f"The job is {job['status']}; only a failed job's source password can be updated.",
            hint="Wait for the batch to settle; then update the failed jobs' passwords and retry it.",
        )
    ciphertext = jobs.seal(org_id, job_id, password)
    try:
        store.replace_secret(table, job, ciphertext=ciphertext, ttl=jobs.secret_ttl())
    except Rejected as rejected:
        raise errors.conflict("The job changed meanwhile; read the batch again.") from rejected
    return job_summary(jobs_store.get(table, org_id, job_id) or job)


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
