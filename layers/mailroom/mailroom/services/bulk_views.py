"""What a bulk batch looks like: its jobs as the batch rules see them (domain/bulk/batches.py), its
status and counts computed from its jobs, and the API representation of a batch and of its jobs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from mailroom.domain import migrations as rules
from mailroom.domain.bulk import batches as batch_rules
from mailroom.domain.bulk.batches import BatchStatus
from mailroom.services import migration_jobs as jobs
from mailroom.store import migration_batches as store
from mailroom.store.table import Item

SETTLED = batch_rules.TERMINAL_BATCH_STATUSES


def batch_job(job: Item) -> batch_rules.BatchJob:
    """What the batch rules need to know of one job."""
    return batch_rules.BatchJob(
        id=str(job["id"]),
        row=int(job.get("row", 0)),
        status=str(job["status"]),
        destination_mailbox_id=str(job["mailbox_id"]),
        source_host=str(job["source_host"]),
        started=not store.is_waiting(job),
        error_code=job.get("error_reason") or job.get("error_code"),
        finished_at=job.get("finished_at"),
    )


def batch_jobs(items: Sequence[Item]) -> list[batch_rules.BatchJob]:
    return [batch_job(job) for job in items]


def status(batch: Item, items: Sequence[Item], *, paused: bool | None = None) -> BatchStatus:
    """The batch's status from its jobs as read and its flags (``paused`` overrides the stored one)."""
    return batch_rules.derive_batch_status(
        batch_jobs(items),
        paused=bool(batch.get("paused")) if paused is None else paused,
        cancelled=bool(batch.get("cancelled")),
    )


def is_running(job: Item) -> bool:
    """Handed to the state machine and not ended yet (it holds slots)."""
    return not store.is_waiting(job) and job["status"] in rules.ACTIVE


def summary(items: Sequence[Item]) -> dict[str, Any]:
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


def _poll_hint(status: BatchStatus) -> int | None:
    if status in SETTLED:
        return None
    return 30 if status is BatchStatus.PAUSED else 10


def batch_view(batch: Item, items: Sequence[Item] | None) -> dict[str, Any]:
    """The API representation. ``items`` None: a list entry, from the batch's last tick; otherwise
    status and counts are computed from the jobs as read now, and every job is listed."""
    if items is None:
        current = BatchStatus(str(batch.get("status", BatchStatus.PENDING)))
        counted = {key: batch.get(key) or empty for key, empty in summary([]).items()}
    else:
        current = status(batch, items)
        counted = summary(items)
    server = batch.get("server") or {}
    return {
        "id": batch["id"],
        "name": batch["name"],
        "status": current.value,
        "provider": batch["provider"],
        "per_row_server": bool(batch.get("per_row_server")),
        "source_host": server.get("source_host"),
        "source_port": server.get("source_port"),
        "source_security": server.get("source_security"),
        "folder_strategy": batch.get("folder_strategy", "all"),
        "import_since": batch.get("import_since"),
        "skip_duplicates": bool(batch.get("skip_duplicates", True)),
        "total_jobs": len(batch.get("job_ids", [])),
        **counted,
        "rows": batch.get("row_counts") or {},
        "limits": batch.get("limits") or {},
        "paused": current is BatchStatus.PAUSED,
        "pause_reason": batch.get("pause_reason") if current is BatchStatus.PAUSED else None,
        "allowed_actions": batch_rules.allowed_actions(current),
        "poll_hint_seconds": _poll_hint(current),
        "jobs": None if items is None else [job_summary(job) for job in items],
        "created_at": batch["created_at"],
        "updated_at": batch.get("updated_at"),
        "finished_at": batch.get("finished_at") if current in SETTLED else None,
    }
