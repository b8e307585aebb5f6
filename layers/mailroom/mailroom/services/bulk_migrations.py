"""Bulk IMAP migrations: the use cases of ``/api/v1/migrations/bulk`` (preview, start, list, read,
cancel, retry, resume, delete, a failed job's new password). How a batch's jobs run is
services/bulk_scheduler.py; the rules, pure, are domain/bulk/; docs/migrations.md ("Bulk
migrations") says what a user sees.

Starting a batch writes one ordinary migration job per valid row (services/migration_jobs.py's
job, with ``batch_id`` and ``row``; its source password sealed with KMS exactly as a single job's),
each *waiting*, then ticks the batch. A single migration keeps its rule (one active migration per
organization: it starts only when nothing else is active); a batch's jobs share the
organization's slots with it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses
from mailroom.domain import migrations as rules
from mailroom.domain.bulk import batches as batch_rules
from mailroom.domain.bulk.batches import BatchAction, BatchStatus
from mailroom.domain.bulk.data import parse_data
from mailroom.domain.bulk.estimates import BatchLimits
from mailroom.domain.bulk.preview import Preview, batch_name
from mailroom.domain.bulk.preview import preview as preview_rows
from mailroom.domain.bulk.request import BASIC_COLUMNS, InvalidBulkRequest, RowLimitExceeded, ServerRequest
from mailroom.domain.bulk.rows import BulkRow
from mailroom.domain.bulk.servers import PresetResolver, resolve_request_server
from mailroom.domain.migration_estimates import SourceSize, Throughput, spread
from mailroom.errors import Conflict, LimitReached
from mailroom.imap.models import SourceAccount
from mailroom.observability import logger
from mailroom.services import bulk_scheduler as scheduler
from mailroom.services import bulk_views as views
from mailroom.services import migration_jobs as jobs
from mailroom.services import migration_probe as probe
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store import migration_batches as store
from mailroom.store import migrations as jobs_store
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Rejected

DELETE_BUDGET_SECONDS = 8.0  # of job partition deletion within a DELETE request (the sweep finishes)


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

    def server(self) -> ServerRequest:
        return ServerRequest(
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


# ----------------------------------------------------------------------------- the preview


def _available_storage_bytes(org: Item) -> int:
    pool = int(scheduler.org_limits(org).get("storage_mb", 0)) * 1024 * 1024
    return max(0, pool - int(org.get("storage_used_bytes", 0)))


def _destinations(data: str, max_rows: int) -> set[str]:
    """The destination addresses the data names, normalized as the preview will ask for them, to
    look them all up at once (one BatchGetItem per 100, not one read per row)."""
    try:
        lines = parse_data(data)
    except InvalidBulkRequest:
        return set()  # the preview says why
    if len(lines) > max_rows:
        return set()  # refused before any lookup
    found = set()
    for line in lines:
        if len(line.fields) >= len(BASIC_COLUMNS):
            try:
                found.add(addresses.normalize_hosted(line.fields[2].strip()))
            except addresses.InvalidAddress:
                continue
    return found


Lookups = tuple[Callable[[str], str | None], Callable[[str], bool]]


def _lookups(table: Table, org_id: str, data: str, max_rows: int) -> Lookups:
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


def _resolve_preset() -> PresetResolver:
    from mailroom.imap import presets

    return presets.resolve


def _preview(
    table: Table,
    org: Item,
    request: BulkRequest,
    limits: BatchLimits,
    *,
    throughput: Throughput | None = None,
    sources: Mapping[int, SourceSize] | None = None,
    lookups: Lookups | None = None,
) -> Preview:
    """The preview; ``lookups`` when an earlier call made them (a preview again with probed sizes)."""
    mailbox_id_for, destination_busy = lookups or _lookups(
        table, org["id"], request.data, limits.max_rows_per_batch
    )
    try:
        return preview_rows(
            request.data,
            request=request.server(),
            limits=limits,
            resolve_preset=_resolve_preset(),
            mailbox_id_for=mailbox_id_for,
            destination_busy=destination_busy,
            available_storage_bytes=_available_storage_bytes(org),
            allow_private_hosts=get_settings().imap_allow_private,
            throughput=throughput,
            sources=sources,
        )
    except RowLimitExceeded as exc:
        raise LimitReached(
            "row_limit_exceeded",
            str(exc),
            fields=[{"field": exc.field, "message": str(exc)}],
            hint=f"Send at most {exc.limit} rows per batch ({exc.limit_name}).",
        ) from exc
    except InvalidBulkRequest as exc:
        raise errors.validation(str(exc), field=exc.field) from exc


async def preview(table: Table, org_id: str, request: BulkRequest, *, measure: bool = True) -> dict[str, Any]:
    """Every row's category, the limits, time and storage estimates. The estimates use the
    deployment's recorded throughput and, with ``measure``, what a bounded probe of some valid
    rows' sources found (services/migration_probe.py). 422 for the request as a whole
    (``validation_error``, ``row_limit_exceeded``)."""
    org = scheduler.organization(table, org_id)
    limits = scheduler.batch_limits(org)
    deployment = Throughput.of(jobs_store.throughput(table))
    lookups = _lookups(table, org_id, request.data, limits.max_rows_per_batch)
    result = _preview(table, org, request, limits, throughput=deployment, lookups=lookups)
    if not measure or not result.valid_rows:
        return result.as_dict()
    sources = await _probe(result.valid_rows)
    return _preview(
        table, org, request, limits, throughput=deployment, sources=sources, lookups=lookups
    ).as_dict()


async def _probe(valid: Sequence[BulkRow]) -> dict[int, SourceSize]:
    """Probe up to ``PREVIEW_ROWS`` of the valid rows, spread over the data (row → size)."""
    chosen = [valid[p - 1] for p in spread(len(valid), probe.PREVIEW_ROWS)]
    timeout = float(get_settings().imap_timeout_seconds)
    accounts = []
    for row in chosen:
        server = row.server
        if server is None:
            continue  # a valid row has its server
        accounts.append(
            (
                row.row,
                SourceAccount(
                    server.host,
                    server.port,
                    server.security,
                    row.source_email or "",
                    row.password or "",
                    timeout_seconds=timeout,
                ),
            )
        )
    found = await probe.probe_accounts([account for _, account in accounts])
    return {number: size for (number, _), size in zip(accounts, found, strict=True) if size is not None}


# ----------------------------------------------------------------------------- reading


def load(table: Table, org_id: str, batch_id: str) -> Item:
    """The organization's batch (404 for an unknown id, another organization's, or one whose
    start is still being written)."""
    batch = store.get(table, org_id, batch_id) if batch_id.startswith("bat_") else None
    if batch is None or batch.get("creating"):
        raise errors.not_found("Bulk migration")
    return batch


def view(table: Table, batch: Item) -> dict[str, Any]:
    """The batch with every job as it is now. A job whose execution ended without ending it
    (stopped by hand, timed out) is failed here, as GET of a single migration does, and its batch
    then starts the next job."""
    items = store.jobs(table, batch)
    if any(views.is_running(job) for job in items):
        reconciled = [scheduler.reconciled(table, job) for job in items]
        for before, after in zip(items, reconciled, strict=True):
            if before["status"] in rules.ACTIVE and after["status"] not in rules.ACTIVE:
                scheduler.job_ended(table, after)
        items = reconciled
    return views.batch_view(batch, items)


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Page, list[Any], int]:
    """A page of the organization's batches, newest first, each as of its last tick; the total."""
    page = store.list_page(table, org_id, per_page=per_page, cursor=cursor)
    visible = [batch for batch in page.items if not batch.get("creating")]
    return page, [views.batch_view(batch, None) for batch in visible], store.batch_count(table, org_id)


def job_of(table: Table, batch: Item, job_id: str) -> Item:
    """One job of the batch (404 for a job of another batch, or none)."""
    job = jobs_store.get(table, batch["org_id"], job_id) if job_id in batch.get("job_ids", []) else None
    if job is None:
        raise errors.not_found("Migration job")
    return job


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
    return Started(view(table, load(table, org_id, str(claim["batch_id"]))), replayed=True)


def _new_job(
    org_id: str, batch_id: str, job_id: str, row: BulkRow, request: BulkRequest, provider: str, now: str
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
    org = scheduler.organization(table, org_id)
    limits = scheduler.batch_limits(org)
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
        name = batch_name(request.name, now=moment, accounts=len(valid))
    except InvalidBulkRequest as exc:
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
    server = resolve_request_server(
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
        "status": BatchStatus.PENDING.value,
        **views.summary([]),
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
        scheduler.tick(table, org_id, batch_id)
    except Exception:
        # The batch exists and is valid: answering 5xx would make a retry start a second one. What
        # this tick did not start, the sweep does (and launches a job it took slots for).
        logger().exception("bulk migration not ticked after its start", extra={"batch_id": batch_id})
    started = view(table, load(table, org_id, batch_id))
    started["skipped_rows"] = [row.as_dict() for row in result.rows if not row.is_valid]
    return Started(started, replayed=False)


# ----------------------------------------------------------------------------- actions


def _act(
    table: Table,
    batch: Item,
    action: BatchAction,
    change: Callable[[Item, list[Item]], dict[str, Any]],
) -> None:
    """Check ``action`` against the batch as read and write ``change(batch, jobs)``'s flags if the
    batch is still as read; read again when a tick got there first."""
    org_id, batch_id = str(batch["org_id"]), str(batch["id"])
    for _ in range(scheduler.TICK_ROUNDS):
        items = store.jobs(table, batch)
        current = views.status(batch, items)
        try:
            batch_rules.check_action(action, current)
        except batch_rules.ActionNotAllowed as exc:
            raise errors.conflict(str(exc), hint=_hint(current)) from exc
        flags = change(batch, items)
        if store.save_state(
            table, batch, fields={"status": current.value}, swept=True, now=clock.now_iso(), flags=flags
        ):
            return
        batch = load(table, org_id, batch_id)
    raise errors.conflict("The bulk migration kept changing; read it and try again.")


def _hint(status: BatchStatus) -> str | None:
    actions = batch_rules.allowed_actions(status)
    return f"Allowed now: {', '.join(actions)}." if actions else None


def _after(table: Table, batch: Item) -> dict[str, Any]:
    """Tick the batch as an action does (repairing what it finds), then show it."""
    scheduler.tick(table, str(batch["org_id"]), str(batch["id"]), repair=True)
    return view(table, load(table, str(batch["org_id"]), str(batch["id"])))


def cancel(table: Table, batch: Item) -> dict[str, Any]:
    """Cancel the batch: waiting jobs are cancelled, running ones stopped (409 once it settled)."""
    _act(table, batch, BatchAction.CANCEL, lambda current, items: {"cancelled": True})
    return _after(table, batch)


def retry(table: Table, batch: Item) -> dict[str, Any]:
    """Put the failed jobs (and, for a cancelled batch, the cancelled ones) back in the queue and
    tick. 409 while the batch is running, or when there is nothing to retry."""
    chosen: list[Item] = []

    def change(current: Item, items: list[Item]) -> dict[str, Any]:
        again = {
            job.id
            for job in batch_rules.jobs_to_retry(
                views.batch_jobs(items), batch_cancelled=bool(current.get("cancelled"))
            )
        }
        if not again:
            raise errors.conflict("No failed job in this batch to retry.")
        chosen[:] = [job for job in items if job["id"] in again]
        return _resumed(cancelled=False)

    _act(table, batch, BatchAction.RETRY, change)
    now = clock.now_iso()
    for job in chosen:
        # A job moved meanwhile (retried or deleted through the single endpoint) is left as it is.
        store.requeue(table, job, now=now)
    return _after(table, batch)


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


def resume(table: Table, batch: Item) -> dict[str, Any]:
    """Continue a paused batch (409 otherwise)."""
    _act(table, batch, BatchAction.RESUME, lambda current, items: _resumed())
    return _after(table, batch)


def delete(table: Table, batch: Item) -> None:
    """Delete a settled batch with its jobs' records (409 while any job is active)."""
    items = store.jobs(table, batch)
    try:
        batch_rules.check_action(BatchAction.DELETE, views.status(batch, items))
    except batch_rules.ActionNotAllowed as exc:
        raise errors.conflict(str(exc), hint="Cancel it first, then delete it.") from exc
    if any(job["status"] in rules.ACTIVE for job in items):
        raise errors.conflict("A job of this batch is still running; cancel the batch first.")
    try:
        store.remove(table, batch, items, now=clock.now_iso())
    except Rejected as rejected:
        raise errors.conflict(
            "The bulk migration changed meanwhile (a job retried?); read it again."
        ) from rejected
    purge = {"org_id": batch["org_id"], "batch_id": batch["id"], "job_ids": [job["id"] for job in items]}
    if purge["job_ids"]:
        store.purge_partitions(table, purge, deadline=time.monotonic() + DELETE_BUDGET_SECONDS)


def update_job_password(table: Table, batch: Item, job_id: str, password: str) -> dict[str, Any]:
    """A new source password for a failed job of the batch (then retry the batch). 404 for a job
    of another batch, 409 unless the job failed."""
    job = job_of(table, batch, job_id)
    if not batch_rules.can_update_job_password(views.batch_job(job)):
        raise errors.conflict(
            f"The job is {job['status']}; only a failed job's source password can be updated.",
            hint="Wait for the batch to settle; then update the failed jobs' passwords and retry it.",
        )
    ciphertext = jobs.seal(job["org_id"], job_id, password)
    try:
        store.replace_secret(table, job, ciphertext=ciphertext, ttl=jobs.secret_ttl())
    except Rejected as rejected:
        raise errors.conflict("The job changed meanwhile; read the batch again.") from rejected
    return views.job_summary(jobs.reload(table, job))
