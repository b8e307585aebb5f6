"""Migration rules that need no I/O: statuses and their transitions, what the API shows (masked
source address, progress, poll hints), how a folder's UIDs are cut into batches and batches into
windows, and the stable ids that make an import idempotent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """A job's status, in the order a job moves through them (trekmail-migrations-api.txt)."""

    PENDING = "pending"
    VALIDATING = "validating"
    PLANNING = "planning"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Plain strings, as they are stored and compared.
PENDING = JobStatus.PENDING.value
VALIDATING = JobStatus.VALIDATING.value
PLANNING = JobStatus.PLANNING.value
PROCESSING = JobStatus.PROCESSING.value
COMPLETED = JobStatus.COMPLETED.value
FAILED = JobStatus.FAILED.value
CANCELLED = JobStatus.CANCELLED.value

STATUSES: tuple[str, ...] = tuple(status.value for status in JobStatus)
ACTIVE: frozenset[str] = frozenset({PENDING, VALIDATING, PLANNING, PROCESSING})
TERMINAL: frozenset[str] = frozenset({COMPLETED, FAILED, CANCELLED})
RETRYABLE: frozenset[str] = frozenset({FAILED, CANCELLED})

FOLDER_STRATEGIES: tuple[str, ...] = ("all", "standard", "inbox_only")

# error_code values a job can end with (failed), besides those of the IMAP source
# (connection_failed, auth_failed, tls_failed, timeout, protocol_error).
TARGET_UNAVAILABLE = "target_unavailable"  # the target mailbox was deleted or deactivated meanwhile
SECRET_EXPIRED = "source_password_missing"  # noqa: S105 - an error code, not a secret
INTERNAL_ERROR = "internal_error"

POLL_HINTS: dict[str, int] = {PENDING: 5, VALIDATING: 5, PLANNING: 5, PROCESSING: 10}

DONE_BUCKET = 1000  # UIDs per imported-set item


def is_active(status: str) -> bool:
    return status in ACTIVE


def poll_hint(status: str) -> int | None:
    """Seconds between polls the client should wait: 5 early, 10 while importing, None when over."""
    return POLL_HINTS.get(status)


def mask_email(address: str) -> str:
    """``john.doe@gmail.com`` → ``j***e@gmail.com``: first and last character of the local part.

    A one- or two-character local part shows only its first character; without an ``@`` the value
    is masked as a whole (a username that is not an address)."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    masked = f"{local[:1]}***" if len(local) <= 2 else f"{local[0]}***{local[-1]}"
    return f"{masked}@{domain}" if at else masked


def progress(*, status: str, total: int, imported: int, failed: int, skipped: int) -> int:
    """0-100: the share of planned messages handled (imported, failed or skipped). A completed job
    is 100 even when the source had nothing to import."""
    if status == COMPLETED:
        return 100
    if total <= 0:
        return 0
    handled = imported + failed + skipped
    return max(0, min(99, handled * 100 // total))


def folder_hash(raw_name: str) -> str:
    """A short stable key for a source folder (its raw, still-encoded IMAP name)."""
    return hashlib.sha256(raw_name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def source_id(job_id: str, raw_folder: str, uidvalidity: int, uid: int) -> str:
    """The stable id of one source message within a job: a retry of the job (or of a batch) stores
    the same message under the same deterministic id, so nothing is stored twice."""
    return f"mig:{job_id}:{folder_hash(raw_folder)}:{uidvalidity}:{uid}"


def done_bucket(uid: int) -> int:
    return uid // DONE_BUCKET


def group_by_bucket(uids: Iterable[int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for uid in uids:
        grouped.setdefault(done_bucket(uid), []).append(uid)
    return grouped


def batches(uids: Sequence[int], size: int) -> list[list[int]]:
    """Sorted UIDs cut into consecutive batches of at most ``size``."""
    ordered = sorted(set(uids))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@dataclass(frozen=True, slots=True)
class Window:
    """Batches ``first``..``first + count - 1`` of a job's plan, run by one Map state."""

    first: int
    count: int


def window(cursor: int, *, total_batches: int, window_batches: int) -> Window:
    first = cursor * window_batches
    return Window(first=first, count=max(0, min(window_batches, total_batches - first)))


def window_count(total_batches: int, window_batches: int) -> int:
    return -(-total_batches // window_batches) if total_batches > 0 else 0


# Step Functions events per unit of work, for the history budget (docs/migrations.md): a Lambda
# Task state is 5 events (entered, scheduled, started, succeeded, exited); a Map iteration adds 2
# (iteration started, succeeded); a Map state 4 (entered, started, succeeded, exited); a Choice 2.
# Each retry of a task adds 3 (scheduled, started, failed).
HISTORY_LIMIT = 25_000
EVENTS_PER_TASK = 5
EVENTS_PER_ITERATION = EVENTS_PER_TASK + 2
EVENTS_PER_RETRY = 3
EVENTS_FIXED_PER_EXECUTION = 40  # validate, plan, continue/finalize tasks, choices, start/end
EVENTS_PER_WINDOW_OVERHEAD = EVENTS_PER_TASK + 2 + 4 + 2  # NextWindow, a Choice, the Map, a Choice


def history_events(*, window_batches: int, windows: int, retries_per_batch: int) -> int:
    """An upper bound of one execution's history events (see the constants above)."""
    per_batch = EVENTS_PER_ITERATION + retries_per_batch * EVENTS_PER_RETRY
    per_window = EVENTS_PER_WINDOW_OVERHEAD + window_batches * per_batch
    return EVENTS_FIXED_PER_EXECUTION + windows * per_window


def error_payload(code: str, message: str, reason: str | None = None) -> str:
    """How a step reports a failure that ends the job, as its Lambda error message:
    ``<code>[/<reason>]: <message>`` (the failure step splits it again, see ``parse_error``)."""
    return f"{code}/{reason}: {message}" if reason else f"{code}: {message}"


REPORTED_ERRORS = frozenset({"MigrationFailed", "SourceUnavailable"})


def parse_error(error_type: str | None, cause: Any) -> tuple[str, str, str | None]:
    """(error_code, readable message, reason) from a Step Functions Catch result. Our own errors
    carry ``code[/reason]: message``; anything else (a bug, a step out of time after its retries)
    becomes ``internal_error`` naming the error type only, never a stack trace."""
    message = ""
    if isinstance(cause, str):
        try:
            decoded = json.loads(cause)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            message = str(decoded.get("errorMessage") or "")
            error_type = str(decoded.get("errorType") or error_type or "")
        else:
            message = cause
    if error_type in REPORTED_ERRORS and ": " in message:
        head, _, text = message.partition(": ")
        code, _, reason = head.partition("/")
        return code, text, reason or None
    if error_type in ("States.Timeout", "Sandbox.Timedout") or "Task timed out" in message:
        return "timeout", "A migration step ran out of time; retry the migration to continue.", None
    return INTERNAL_ERROR, f"The migration stopped on an unexpected error ({error_type or 'unknown'}).", None


# The most retries one batch can take (statemachines/migration.asl.json: BatchIncomplete 6 +
# transient 3), for the worst-case history bound.
MAX_RETRIES_PER_BATCH = 9


def safe_windows(window_batches: int, configured: int) -> int:
    """Windows per execution, at most ``configured`` and few enough that the worst case (every
    batch retried the most it can be) stays under the 25,000-event history limit."""
    windows = max(1, configured)
    while (
        windows > 1
        and history_events(
            window_batches=window_batches, windows=windows, retries_per_batch=MAX_RETRIES_PER_BATCH
        )
        >= HISTORY_LIMIT
    ):
        windows -= 1
    return windows
