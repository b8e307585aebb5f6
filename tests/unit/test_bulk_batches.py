"""Bulk migrations: the batch's status, the actions it allows, pausing, and scheduling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from mailroom.domain.bulk.batches import (
    HOST_FAILURE_CODES,
    TERMINAL_BATCH_STATUSES,
    TERMINAL_JOB_STATUSES,
    ActionNotAllowed,
    BatchAction,
    BatchJob,
    BatchStatus,
    JobStatus,
    Tick,
    allowed_actions,
    can_update_job_password,
    check_action,
    derive_batch_status,
    host_to_pause_for,
    jobs_to_cancel,
    jobs_to_retry,
    next_jobs_to_start,
    pause_message,
    plan_tick,
)

# --- batch state -----------------------------------------------------------------------------------


def job(
    row: int,
    status: str = "pending",
    *,
    started: bool | None = None,
    mailbox: str | None = None,
    host: str = "imap.gmail.com",
    error: str | None = None,
    finished: int | None = None,
) -> BatchJob:
    return BatchJob(
        id=f"mig_{row}",
        row=row,
        status=status,
        destination_mailbox_id=mailbox or f"mbx_{row}",
        source_host=host,
        started=status != "pending" if started is None else started,
        error_code=error,
        finished_at=None if finished is None else f"2026-11-21T14:{finished:02d}:00.000Z",
    )


@pytest.mark.parametrize(
    ("jobs", "status"),
    [
        ([job(1), job(2)], BatchStatus.PENDING),
        ([job(1, started=True), job(2)], BatchStatus.PROCESSING),
        ([job(1, "processing"), job(2)], BatchStatus.PROCESSING),
        ([job(1, "completed"), job(2)], BatchStatus.PROCESSING),  # waiting for a slot
        ([job(1, "validating"), job(2, "planning")], BatchStatus.PROCESSING),
        ([job(1, "completed"), job(2, "completed")], BatchStatus.COMPLETED),
        ([job(1, "completed"), job(2, "failed")], BatchStatus.COMPLETED_WITH_ERRORS),
        ([job(1, "completed"), job(2, "cancelled")], BatchStatus.COMPLETED_WITH_ERRORS),
        ([job(1, "failed"), job(2, "failed")], BatchStatus.FAILED),
        ([job(1, "failed"), job(2, "cancelled")], BatchStatus.FAILED),
        ([job(1, "cancelled"), job(2, "cancelled")], BatchStatus.CANCELLED),
        ([], BatchStatus.COMPLETED),
    ],
)
def test_batch_status_follows_its_jobs(jobs: list[BatchJob], status: BatchStatus) -> None:
    assert derive_batch_status(jobs) is status


def test_batch_flags() -> None:
    live = [job(1, "processing"), job(2)]
    assert derive_batch_status(live, cancelled=True) is BatchStatus.CANCELLED
    assert derive_batch_status(live, paused=True) is BatchStatus.PAUSED
    # paused with nothing left waiting: nothing to resume, the batch just finishes
    assert derive_batch_status([job(1, "processing")], paused=True) is BatchStatus.PROCESSING
    assert derive_batch_status([job(1, "completed")], paused=True) is BatchStatus.COMPLETED
    assert derive_batch_status([job(1, "completed")], paused=True, cancelled=True) is BatchStatus.CANCELLED


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (BatchStatus.PENDING, ["cancel"]),
        (BatchStatus.PROCESSING, ["cancel"]),
        (BatchStatus.PAUSED, ["cancel", "resume"]),
        (BatchStatus.COMPLETED, ["delete"]),
        (BatchStatus.COMPLETED_WITH_ERRORS, ["delete", "retry"]),
        (BatchStatus.FAILED, ["delete", "retry"]),
        (BatchStatus.CANCELLED, ["delete", "retry"]),
    ],
)
def test_allowed_actions(status: BatchStatus, actions: list[str]) -> None:
    assert allowed_actions(status) == actions
    for action in BatchAction:
        if action.value in actions:
            check_action(action, status)
        else:
            with pytest.raises(ActionNotAllowed) as caught:
                check_action(action, status)
            assert caught.value.status is status and status.value in str(caught.value)


def test_cancel_touches_only_unfinished_jobs() -> None:
    jobs = [job(1, "completed"), job(2, "processing"), job(3), job(4, "failed")]
    assert [j.row for j in jobs_to_cancel(jobs)] == [2, 3]


def test_retry_reruns_failed_jobs_and_undoes_a_batch_cancel() -> None:
    jobs = [job(3, "failed"), job(1, "completed"), job(2, "cancelled"), job(4, "failed")]
    assert [j.row for j in jobs_to_retry(jobs)] == [3, 4]
    assert [j.row for j in jobs_to_retry(jobs, batch_cancelled=True)] == [2, 3, 4]
    assert jobs_to_retry([job(1, "completed")]) == []


def test_only_a_failed_jobs_password_can_be_updated() -> None:
    assert can_update_job_password(job(1, "failed"))
    assert not any(
        can_update_job_password(job(1, s)) for s in ("pending", "processing", "completed", "cancelled")
    )


# --- pausing ---------------------------------------------------------------------------------------


def failed(row: int, minute: int, *, host: str = "imap.gmail.com", error: str = "auth_failed") -> BatchJob:
    return job(row, "failed", host=host, error=error, finished=minute)


def test_three_host_failures_in_a_row_pause_while_that_host_has_waiting_jobs() -> None:
    jobs = [failed(1, 1), failed(2, 2, error="connection_failed"), failed(3, 3), job(4)]
    assert host_to_pause_for(jobs) == "imap.gmail.com"
    assert host_to_pause_for([*jobs[:2], job(4)]) is None  # two is not three
    assert host_to_pause_for(jobs[:3]) is None  # nothing left to protect


def test_a_success_or_another_kind_of_failure_ends_the_streak() -> None:
    base = [failed(1, 1), failed(2, 2), job(9)]
    assert host_to_pause_for([*base, job(3, "completed", finished=3)]) is None
    assert host_to_pause_for([*base, failed(3, 3, error="quota_exceeded")]) is None
    # the order is by finish time, not by row
    assert host_to_pause_for([*base, job(3, "completed", finished=0), failed(4, 4)]) == "imap.gmail.com"
    # a cancelled job neither counts nor breaks
    assert host_to_pause_for([*base, job(3, "cancelled", finished=3), failed(4, 4)]) == "imap.gmail.com"


def test_failures_count_per_host() -> None:
    jobs = [
        failed(1, 1, host="imap.a.net"),
        failed(2, 2, host="imap.b.net"),
        failed(3, 3, host="imap.a.net"),
        failed(4, 4, host="imap.b.net"),
        job(5, host="imap.a.net"),
        job(6, host="imap.b.net"),
    ]
    assert host_to_pause_for(jobs) is None
    assert host_to_pause_for([*jobs, failed(7, 5, host="imap.b.net")]) == "imap.b.net"


def test_a_resume_gives_the_host_a_fresh_start() -> None:
    jobs = [failed(1, 1), failed(2, 2), failed(3, 3), job(4)]
    resumed = "2026-11-21T14:03:30.000Z"
    assert host_to_pause_for(jobs, since=resumed) is None
    assert host_to_pause_for([*jobs, failed(5, 4), failed(6, 5), failed(7, 6)], since=resumed) is not None
    assert host_to_pause_for(jobs, threshold=4) is None


def test_host_failure_codes_are_codes_the_imap_source_reports() -> None:
    from mailroom.imap import errors

    assert set(errors.CODES) >= HOST_FAILURE_CODES
    assert "protocol_error" not in HOST_FAILURE_CODES  # the server answered


def test_job_statuses_are_the_single_migrations_statuses() -> None:
    from mailroom.domain import migrations

    assert tuple(JobStatus) == migrations.STATUSES
    assert TERMINAL_JOB_STATUSES == migrations.TERMINAL


def test_pause_message_names_the_host_and_what_to_do() -> None:
    message = pause_message("imap.gmail.com")
    assert "imap.gmail.com" in message and "resume" in message and "3" in message


# --- scheduling ------------------------------------------------------------------------------------


def rows_started(chosen: list[BatchJob]) -> list[int]:
    return [j.row for j in chosen]


def test_start_in_row_order_up_to_the_concurrency() -> None:
    jobs = [job(row) for row in (5, 2, 9, 1, 7)]
    assert rows_started(next_jobs_to_start(jobs, 3, 20)) == [1, 2, 5]


def test_running_jobs_hold_their_slots() -> None:
    jobs = [
        job(1, "processing"),
        job(2, "pending", started=True),
        job(3, "completed"),
        job(4),
        job(5),
        job(6),
    ]
    assert rows_started(next_jobs_to_start(jobs, 3, 20)) == [4]
    assert next_jobs_to_start(jobs, 2, 20) == []


def test_global_capacity_caps_the_start() -> None:
    jobs = [job(row) for row in range(1, 6)]
    assert rows_started(next_jobs_to_start(jobs, 5, 2)) == [1, 2]
    assert next_jobs_to_start(jobs, 5, 0) == []
    assert next_jobs_to_start(jobs, 5, -3) == []


def test_one_job_per_destination_mailbox_at_a_time_and_later_rows_go_ahead() -> None:
    jobs = [
        job(1, "processing", mailbox="mbx_a"),
        job(2, mailbox="mbx_a"),
        job(3, mailbox="mbx_b"),
        job(4, mailbox="mbx_b"),
        job(5, mailbox="mbx_c"),
        job(6, mailbox="mbx_d"),
    ]
    assert rows_started(next_jobs_to_start(jobs, 10, 20)) == [3, 5, 6]
    assert rows_started(next_jobs_to_start(jobs, 10, 20, busy_mailboxes={"mbx_c"})) == [3, 6]


def test_nothing_waiting_nothing_started() -> None:
    assert next_jobs_to_start([job(1, "completed"), job(2, "failed")], 5, 20) == []


@pytest.mark.parametrize("finish", [lambda j: "completed", lambda j: "failed"])
def test_a_whole_batch_runs_to_the_end_under_the_limits(finish: Callable[[BatchJob], str]) -> None:
    jobs = {row: job(row, mailbox=f"mbx_{row % 4}") for row in range(1, 11)}
    most_at_once = 0
    for _ in range(50):
        tick = plan_tick(list(jobs.values()), paused=False, cancelled=False, concurrency=3, capacity_left=20)
        if tick.status in TERMINAL_BATCH_STATUSES:
            break
        for started in tick.start:
            jobs[started.row] = replace(started, started=True, status="processing")
        running = [j for j in jobs.values() if j.running]
        most_at_once = max(most_at_once, len(running))
        assert len({j.destination_mailbox_id for j in running}) == len(running)
        first = min(running, key=lambda j: j.row)  # finish the oldest running job
        jobs[first.row] = replace(first, status=finish(first))
    assert most_at_once == 3
    expected = BatchStatus.COMPLETED if finish(job(0)) == "completed" else BatchStatus.FAILED
    assert derive_batch_status(list(jobs.values())) is expected


def test_plan_tick_pauses_instead_of_starting_when_the_breaker_trips() -> None:
    jobs = [failed(1, 1), failed(2, 2), failed(3, 3), job(4), job(5)]
    tick = plan_tick(jobs, paused=False, cancelled=False, concurrency=5, capacity_left=20)
    assert tick == Tick(BatchStatus.PAUSED, [], "imap.gmail.com")
    resumed = plan_tick(
        jobs,
        paused=False,
        cancelled=False,
        concurrency=5,
        capacity_left=20,
        resumed_at="2026-11-21T14:10:00.000Z",
    )
    assert (resumed.status, rows_started(resumed.start), resumed.paused_for_host) == (
        BatchStatus.PROCESSING,
        [4, 5],
        None,
    )


def test_plan_tick_starts_nothing_for_a_paused_or_cancelled_batch() -> None:
    jobs = [job(1), job(2)]
    paused = plan_tick(jobs, paused=True, cancelled=False, concurrency=5, capacity_left=20)
    assert (paused.status, paused.start) == (BatchStatus.PAUSED, [])
    cancelled = plan_tick(jobs, paused=False, cancelled=True, concurrency=5, capacity_left=20)
    assert (cancelled.status, cancelled.start) == (BatchStatus.CANCELLED, [])


def test_plan_tick_on_a_new_batch_moves_it_to_processing_once_something_starts() -> None:
    jobs = [job(1), job(2)]
    assert plan_tick(jobs, paused=False, cancelled=False, concurrency=5, capacity_left=0).status is (
        BatchStatus.PENDING
    )
    tick = plan_tick(jobs, paused=False, cancelled=False, concurrency=1, capacity_left=20)
    assert (tick.status, rows_started(tick.start)) == (BatchStatus.PROCESSING, [1])
