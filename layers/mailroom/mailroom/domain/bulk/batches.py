"""A bulk batch's state rules and scheduling: its status from its jobs' (and its two flags), the
actions each status allows, the circuit breaker that pauses it, and which waiting jobs to start.

A batch's jobs are single migrations (their statuses are the single-migration API's). A job
created by a batch waits, ``pending`` and not ``started``, until the batch hands it to the state
machine; from then on it holds a slot until it is completed, failed or cancelled.

The batch stores two flags of its own, because they are decisions, not job outcomes: ``cancelled``
(the user cancelled it) and ``paused`` (the circuit breaker below tripped; only a user's resume
clears it). Everything else about its status follows from its jobs.

When a batch pauses: after PAUSE_AFTER_HOST_FAILURES jobs in a row on one source host ended in a
connection or sign-in failure, while more jobs for that host are waiting. Providers lock accounts
and throttle addresses that keep failing logins (a whole Gmail batch without app passwords fails
the same way), so carrying on would hurt the user's accounts; pausing shows the problem and
waits. Full global capacity is *not* a pause: the batch simply waits and continues by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mailroom.domain import migrations

JobStatus = migrations.JobStatus  # a batch's jobs are ordinary migration jobs
TERMINAL_JOB_STATUSES = migrations.TERMINAL


class BatchStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_BATCH_STATUSES = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED, BatchStatus.CANCELLED}
)


class BatchAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    RESUME = "resume"
    DELETE = "delete"


_ALLOWED_FROM: dict[BatchAction, frozenset[BatchStatus]] = {
    BatchAction.CANCEL: frozenset({BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.PAUSED}),
    # Retry waits for the batch to settle, so a job is never both running and re-queued.
    BatchAction.RETRY: frozenset(
        {BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED, BatchStatus.CANCELLED}
    ),
    BatchAction.RESUME: frozenset({BatchStatus.PAUSED}),
    BatchAction.DELETE: TERMINAL_BATCH_STATUSES,  # like a single migration: cancel it first
}

PAUSE_AFTER_HOST_FAILURES = 3
# The error codes of a failed job (mailroom/imap/errors.py CODES) that say the source host refused
# or failed us, rather than one mailbox's content; protocol_error means the server did answer.
HOST_FAILURE_CODES = frozenset({"connection_failed", "auth_failed", "tls_failed", "timeout"})


class ActionNotAllowed(ValueError):
    """The action does not apply to a batch in this status (a 409 ``conflict``)."""

    def __init__(self, action: BatchAction, status: BatchStatus) -> None:
        allowed = ", ".join(sorted(_ALLOWED_FROM[action]))
        super().__init__(
            f"A {status.value} batch cannot be {_PAST[action]}; only a batch that is {allowed} can."
        )
        self.action = action
        self.status = status


_PAST = {
    BatchAction.CANCEL: "cancelled",
    BatchAction.RETRY: "retried",
    BatchAction.RESUME: "resumed",
    BatchAction.DELETE: "deleted",
}


@dataclass(frozen=True, slots=True)
class BatchJob:
    """What the batch rules need to know of one job. ``finished_at`` is an ISO 8601 UTC string
    (clock.isoformat), so comparing strings compares times."""

    id: str
    row: int
    status: str
    destination_mailbox_id: str
    source_host: str
    started: bool = False
    error_code: str | None = None
    finished_at: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def waiting(self) -> bool:
        return self.status == JobStatus.PENDING and not self.started

    @property
    def running(self) -> bool:
        return not self.terminal and not self.waiting


def derive_batch_status(
    jobs: Sequence[BatchJob], *, paused: bool = False, cancelled: bool = False
) -> BatchStatus:
    """The batch's status. ``cancelled`` wins at once (the user's decision; jobs still stopping
    show their own status). ``paused`` shows while jobs are waiting; with none left there is
    nothing to resume and the batch finishes normally. No job started yet → pending; some
    running or waiting → processing. Settled: all completed → completed; none completed →
    failed (or cancelled, when every job was cancelled one by one); a mix → completed_with_errors.
    A batch without jobs is vacuously completed (starting one needs a valid row)."""
    if cancelled:
        return BatchStatus.CANCELLED
    if paused and any(job.waiting for job in jobs):
        return BatchStatus.PAUSED
    if jobs and all(job.waiting for job in jobs):
        return BatchStatus.PENDING
    if any(not job.terminal for job in jobs):
        return BatchStatus.PROCESSING
    statuses = {job.status for job in jobs}
    if statuses <= {JobStatus.COMPLETED}:
        return BatchStatus.COMPLETED
    if JobStatus.COMPLETED in statuses:
        return BatchStatus.COMPLETED_WITH_ERRORS
    if statuses == {JobStatus.CANCELLED}:
        return BatchStatus.CANCELLED
    return BatchStatus.FAILED


def allowed_actions(status: BatchStatus) -> list[str]:
    """The actions a client may offer for a batch in ``status`` (for the batch resource)."""
    return sorted(action.value for action, sources in _ALLOWED_FROM.items() if status in sources)


def check_action(action: BatchAction, status: BatchStatus) -> None:
    if status not in _ALLOWED_FROM[action]:
        raise ActionNotAllowed(action, status)


def jobs_to_cancel(jobs: Iterable[BatchJob]) -> list[BatchJob]:
    """Cancel stops the running jobs and cancels the waiting ones; finished ones stay as they are."""
    return [job for job in jobs if not job.terminal]


def jobs_to_retry(jobs: Iterable[BatchJob], *, batch_cancelled: bool = False) -> list[BatchJob]:
    """Retry re-runs the failed jobs. Retrying a cancelled batch undoes the cancel, so the jobs it
    cancelled run too; a job someone cancelled on its own in a live batch stays cancelled. Empty
    means nothing to retry (answer 409 rather than a no-op)."""
    again = {JobStatus.FAILED, JobStatus.CANCELLED} if batch_cancelled else {JobStatus.FAILED}
    return sorted((job for job in jobs if job.status in again), key=lambda job: job.row)


def can_update_job_password(job: BatchJob) -> bool:
    """The spec's PATCH .../jobs/{job}/password is for a failed job (then retry the batch)."""
    return job.status == JobStatus.FAILED


def host_to_pause_for(
    jobs: Sequence[BatchJob],
    *,
    since: str | None = None,
    threshold: int = PAUSE_AFTER_HOST_FAILURES,
    failure_codes: frozenset[str] = HOST_FAILURE_CODES,
) -> str | None:
    """The source host whose last ``threshold`` finished jobs all failed with a host failure and
    which still has waiting jobs, or None. Only jobs finished after ``since`` (the batch's last
    resume or retry) count, so resuming gives the host a fresh chance instead of re-pausing at
    once. A completed job, or one failed for another reason (the host answered), ends a streak;
    a cancelled one neither counts nor ends it."""
    waiting_hosts = {job.source_host for job in jobs if job.waiting}
    for host in sorted(waiting_hosts):
        finished = sorted(
            (
                job
                for job in jobs
                if job.source_host == host
                and job.finished_at is not None
                and job.status != JobStatus.CANCELLED
                and (since is None or job.finished_at > since)
            ),
            key=lambda job: job.finished_at or "",
        )
        streak = 0
        for job in reversed(finished):
            if job.status != JobStatus.FAILED or job.error_code not in failure_codes:
                break
            streak += 1
        if streak >= threshold:
            return host
    return None


def pause_message(host: str, threshold: int = PAUSE_AFTER_HOST_FAILURES) -> str:
    return (
        f"Paused after {threshold} connection or sign-in failures in a row on {host}, to avoid the "
        "provider locking the accounts. Check the server settings and passwords (an app password "
        "may be needed), then resume."
    )


def next_jobs_to_start(
    jobs: Sequence[BatchJob],
    concurrency: int,
    capacity_left: int,
    *,
    busy_mailboxes: Iterable[str] = (),
) -> list[BatchJob]:
    """The waiting jobs to start now, in row order (first come, first served).

    ``concurrency``: how many of this batch's jobs may run at once (``migration_concurrency``);
    ``capacity_left``: free slots right now under the global limit, already lowered by whatever
    else of the organization runs if ``migration_concurrency`` is meant across its batches.
    ``busy_mailboxes``: destination mailboxes running a migration outside this batch. A job whose
    destination mailbox is busy (here or elsewhere) is skipped, not waited on, so later rows run."""
    running = [job for job in jobs if job.running]
    slots = min(concurrency - len(running), capacity_left)
    if slots <= 0:
        return []
    taken = {job.destination_mailbox_id for job in running} | set(busy_mailboxes)
    chosen: list[BatchJob] = []
    for job in sorted((job for job in jobs if job.waiting), key=lambda job: job.row):
        if job.destination_mailbox_id in taken:
            continue
        chosen.append(job)
        taken.add(job.destination_mailbox_id)
        if len(chosen) == slots:
            break
    return chosen


@dataclass(frozen=True, slots=True)
class Tick:
    """What to do with a batch now: its status after this tick, the jobs to start, and the host
    that made it pause (set only on the tick that pauses it; store ``paused`` and the message)."""

    status: BatchStatus
    start: list[BatchJob]
    paused_for_host: str | None = None


def plan_tick(
    jobs: Sequence[BatchJob],
    *,
    paused: bool,
    cancelled: bool,
    concurrency: int,
    capacity_left: int,
    resumed_at: str | None = None,
    busy_mailboxes: Iterable[str] = (),
) -> Tick:
    """One scheduling step, to run whenever a job of the batch finishes (and on a schedule, to
    pick up freed global capacity): pause if the breaker trips, else start what fits."""
    status = derive_batch_status(jobs, paused=paused, cancelled=cancelled)
    if status not in (BatchStatus.PENDING, BatchStatus.PROCESSING):
        return Tick(status, [])
    host = host_to_pause_for(jobs, since=resumed_at)
    if host is not None:
        return Tick(derive_batch_status(jobs, paused=True), [], host)
    start = next_jobs_to_start(jobs, concurrency, capacity_left, busy_mailboxes=busy_mailboxes)
    if start and status is BatchStatus.PENDING:
        status = BatchStatus.PROCESSING
    return Tick(status, start)
