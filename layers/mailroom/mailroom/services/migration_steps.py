"""The steps of the migration state machine (statemachines/migration.asl.json), one function each,
and ``STEPS``, the worker function's table of them (entry/steps.py).

Every step gets the execution's state (``org_id``, ``job_id``, ``attempt``, ``segment``, and once
planned ``cursor``/``windows_run``) and first checks that the job is still active in that attempt:
the steps of a cancelled or retried job do nothing (``JobInactive`` → the machine's ``Stopped``).
What they share is services/migration_context.py.

* **validate**: pending → validating; logs in to the source (wrong password, unreachable host,
  TLS failure, timeout: the job fails with ``connection_failed`` and a readable message).
* **plan**: validating → planning → processing (services/migration_planning.py).
* **next_window**: the next ``MAILROOM_MIGRATION_WINDOW_BATCHES`` batch numbers for the Map, and
  what follows it: another window, continue-as-new, or finalize.
* **import_batch**: one batch (services/migration_import.py; one message:
  services/migration_messages.py).
* **continue_as_new**: starts the next execution of this machine at the cursor and hands the job
  over to it (history per execution stays bounded whatever the mailbox's size).
* **finalize**: completed, ``migration.completed``, the sealed password deleted.
* **fail**: failed with the error the Catch recorded, ``migration.failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mailroom.domain import migrations as rules
from mailroom.observability import logger, traced
from mailroom.services import migration_jobs as jobs
from mailroom.services import migrations
from mailroom.services.migration_context import (
    JobInactive,
    State,
    active_job,
    advance,
    run_source,
    source_password,
    source_session,
    target_mailbox,
)
from mailroom.services.migration_import import import_batch
from mailroom.services.migration_planning import plan
from mailroom.settings import get_settings
from mailroom.store import migrations as store
from mailroom.store import workflows
from mailroom.store.errors import StoreError
from mailroom.store.table import Table

MAX_WINDOW_BATCHES = 500  # one window's Map stays far below the history limit on its own


# ----------------------------------------------------------------------------- validate


def validate(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    job = active_job(table, state)
    job = advance(table, state, [rules.PENDING, rules.VALIDATING], status=rules.VALIDATING)
    target_mailbox(table, job)
    password = source_password(table, job)

    async def login() -> int:
        async with source_session(job, password) as session:
            return len(await session.folders())

    folders = run_source(login())
    logger().info("migration validated", extra={"migration_id": job["id"], "folders": folders})
    return {"validated": True}


# ----------------------------------------------------------------------------- windows


def next_window(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    settings = get_settings()
    table = Table()
    state = State.of(event)
    job = active_job(table, state, frozenset({rules.PROCESSING}))
    size = min(settings.migration_window_batches, MAX_WINDOW_BATCHES)
    per_execution = rules.safe_windows(size, settings.migration_windows_per_execution)
    total = int(job.get("batches_total", 0))
    first = state.cursor
    seqs = list(range(first, min(first + size, total)))
    cursor = first + len(seqs)
    windows_run = state.windows_run + 1
    if cursor >= total:
        then = "finalize"
    elif windows_run >= per_execution:
        then = "continue_as_new"
    else:
        then = "next"
    # A long migration must not outlive its sealed password.
    store.keep_secret_until(table, job["org_id"], job["id"], jobs.secret_ttl())
    return {
        **state.identity(),
        "cursor": cursor,
        "windows_run": windows_run,
        "window": {"batches": seqs, "max_concurrency": settings.migration_map_concurrency, "then": then},
    }


def continue_as_new(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Start the next execution at the cursor, then point the job at it (in that order: if the
    start fails this step is retried; if the job moved on meanwhile, the new execution finds it
    inactive and stops)."""
    table = Table()
    state = State.of(event)
    active_job(table, state, frozenset({rules.PROCESSING}))
    segment = state.segment + 1
    payload = {
        **state.identity(),
        "segment": segment,
        "cursor": state.cursor,
        "windows_run": 0,
        "resume": True,
    }
    arn = workflows.start(jobs.execution_name(state.job_id, state.attempt, segment), payload)
    current = str(event.get("execution_arn") or "")
    handed_over = store.set_execution(
        table, state.org_id, state.job_id, attempt=state.attempt, arn=arn, previous=current
    )
    logger().info(
        "migration continues as new",
        extra={
            "migration_id": state.job_id,
            "segment": segment,
            "cursor": state.cursor,
            "handed_over": handed_over,
        },
    )
    return {"execution_arn": arn, "handed_over": handed_over}


# ----------------------------------------------------------------------------- finish


def finalize(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    job = active_job(table, state, frozenset({rules.PROCESSING}))
    if not migrations.complete(table, job, attempt=state.attempt):
        raise JobInactive(f"{state.job_id} ended meanwhile")
    try:
        store.delete_attempt_work(table, state.org_id, state.job_id)
    except StoreError:
        # Left-overs carry a TTL; the job is complete either way.
        logger().warning("migration working items left for TTL", extra={"migration_id": state.job_id})
    logger().info("migration completed", extra={"migration_id": state.job_id})
    return {"status": rules.COMPLETED}


def fail(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    error = (event.get("state") or {}).get("error") or {}
    code, message, reason = rules.parse_error(error.get("Error"), error.get("Cause"))
    job = store.get(table, state.org_id, state.job_id)
    if job is None or int(job.get("attempt", 1)) != state.attempt:
        return {"recorded": False}
    recorded = migrations.fail(table, job, code=code, message=message, attempt=state.attempt, reason=reason)
    logger().info(
        "migration failed", extra={"migration_id": state.job_id, "error_code": code, "recorded": recorded}
    )
    return {"recorded": recorded, "error_code": code}


STEPS: dict[str, Callable[[Mapping[str, Any], Callable[[], int]], dict[str, Any]]] = {
    "validate": traced(validate),
    "plan": traced(plan),
    "next_window": traced(next_window),
    "import_batch": traced(import_batch),
    "continue_as_new": traced(continue_as_new),
    "finalize": traced(finalize),
    "fail": traced(fail),
}
