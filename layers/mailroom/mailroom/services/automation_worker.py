"""Running a batch of queued actions (docs/automation-execution.md): read, claim, act, record, and
schedule what follows.

Per batch, everything its messages name (each run, log entry, stored message, action and mailbox)
is read in one BatchGetItem; then every message is handled concurrently:

1. A run already done or skipped (its ACTRUN item, or the log entry's status) does nothing: the
   message is deleted. That is how a duplicate delivery runs once.
2. The run is claimed (``store.action_runs.claim``: one conditional write with a lease). If another
   worker holds it, this message waits for the lease to end and looks again.
3. The action runs (``services.automation_actions``) on the action item as it is now.
4. The outcome is recorded in one transaction on the run and the log entry's
   ``automation.actions[index]`` (status, attempts, duration_ms, error, detail), decrementing
   ``automation_pending`` when the action leaves ``pending``.
5. A retry keeps the message: its visibility moves to the next step of the retry schedule
   (``Retry-After`` honoured) and it is reported as a batch item failure. After the last attempt the
   run fails, the log says ``retries_exhausted``, and a copy of the message is parked in the
   dead-letter queue (a redrive runs it again: a failed run may be claimed).

An AWS failure while acting is an attempt that asks for a retry. A failure while recording raises:
the message comes back after a short backoff (the claim's lease runs out by then).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import functools
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from mailroom import clock
from mailroom.domain import automation_runs as runs
from mailroom.domain import webhooks as retry_rules
from mailroom.domain.automation_runs import PendingAction
from mailroom.observability import logger
from mailroom.services import automation_actions as actions
from mailroom.services.automation_actions import Job, Outcome
from mailroom.settings import Settings
from mailroom.store import action_runs, automation_queue
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table

T = TypeVar("T")

LEASE_SECONDS = 180  # a claim's lease: longer than the worker function's timeout (120 s)
FAILED_BACKOFF_SECONDS = (5, 30, 120, 300)  # after handling a message raised, by receive


@functools.cache
def _io_pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="automation-io")


async def _blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        _io_pool(), functools.partial(function, *args, **kwargs)
    )


class Disposition(enum.Enum):
    DONE = "done"  # delete the message
    WAIT = "wait"  # keep it: its visibility was moved to when it should come back


@dataclass(frozen=True, slots=True)
class QueuedAction:
    """One SQS record of the batch."""

    message_id: str
    receipt_handle: str
    receive_count: int
    body: str
    pending: PendingAction


class BatchRunner:
    def __init__(self, table: Table, settings: Settings, *, client: httpx.AsyncClient | None = None) -> None:
        self.table = table
        self.settings = settings
        self.client = client  # None: webhook_http's shared client of the running loop
        self.found: dict[tuple[str, str], Item] = {}
        self._running: dict[str, asyncio.Task[Disposition]] = {}  # run id -> its handling, this batch
        self.outcomes: Counter[str] = Counter()  # done, failed, skipped, retried, duplicate

    def prefetch(self, queued: list[QueuedAction]) -> None:
        self.found = action_runs.prefetch(self.table, [q.pending for q in queued])

    # ------------------------------------------------------------------------- one message

    async def process(self, queued: QueuedAction) -> Disposition:
        """Handle one message. A second message of the same run in this batch (the run enqueued
        twice) waits for the first to be handled, then is deleted: the first one's message carries
        the run on, whatever became of it (done, kept for a retry, or back after a failure)."""
        earlier = self._running.get(queued.pending.run_id)
        if earlier is not None:
            await asyncio.wait([earlier])
            self.outcomes["duplicate"] += 1
            return Disposition.DONE
        handling = asyncio.create_task(self._process(queued))
        self._running[queued.pending.run_id] = handling
        return await handling

    async def _process(self, queued: QueuedAction) -> Disposition:
        pending = queued.pending
        if runs.finished(self.found.get(action_runs.run_key(pending))):
            self.outcomes["duplicate"] += 1
            return Disposition.DONE
        entry = self.found.get(action_runs.log_key(pending))
        logged = runs.logged_action(entry, pending)
        if entry is None or logged is None:
            # Nothing to run it for: the entry expired (30 days), went with its mailbox, or does not
            # list this action at this index (a message that is not ours to trust).
            logger().warning("automation action without its log entry", extra={"run_id": pending.run_id})
            self.outcomes["orphaned"] += 1
            return Disposition.DONE
        if logged.get("status") in (runs.DONE, runs.SKIPPED):
            self.outcomes["duplicate"] += 1
            return Disposition.DONE
        token = uuid.uuid4().hex
        now = clock.utcnow()
        claimed = await _blocking(
            action_runs.claim, self.table, pending, token=token, now=now, lease_seconds=LEASE_SECONDS
        )
        if claimed is None:
            return await self._not_claimed(queued)
        attempts = int(claimed.get("attempts", 1))
        started = time.perf_counter()
        try:
            outcome = await self._run(pending, entry, now)
        except Exception as exc:  # an AWS error that outlasted its retries, or a bug: try again later
            logger().exception("automation action raised", extra={"run_id": pending.run_id})
            outcome = actions.retry(f"{type(exc).__name__}: {exc}")
        duration_ms = round((time.perf_counter() - started) * 1000)
        return await self._record(queued, entry, logged, token, attempts, outcome, duration_ms)

    async def _not_claimed(self, queued: QueuedAction) -> Disposition:
        current = await _blocking(action_runs.get_run, self.table, queued.pending)
        status = (current or {}).get("status")
        if runs.finished(current):
            self.outcomes["duplicate"] += 1
            return Disposition.DONE
        if status == runs.RUNNING:
            # Another worker has it (the same message delivered twice at once): look again once its
            # lease has run out, in case that worker died.
            wait = max(1.0, float((current or {}).get("lease_until", 0)) - time.time() + 1)
            await _blocking(automation_queue.change_visibility, queued.receipt_handle, wait)
            self.outcomes["busy"] += 1
            return Disposition.WAIT
        raise RuntimeError(f"run {queued.pending.run_id} could not be claimed (status {status!r})")

    async def _run(self, pending: PendingAction, entry: Item, now: datetime) -> Outcome:
        action = self.found.get(action_runs.action_key(pending))
        mailbox = self.found.get(action_runs.mailbox_key(pending))
        message = self.found.get(action_runs.message_key(pending))
        if action is None:
            return actions.skipped("action_deleted")
        if mailbox is None or mailbox.get("deleted_at"):
            return actions.skipped("mailbox_deleted")
        if message is None:
            return actions.skipped("message_deleted")
        kind = str(action.get("action_type"))
        if kind not in runs.ASYNC_TYPES:
            return actions.skipped("action_changed", action_type=kind)
        job, body = await _blocking(self._job, pending, action, mailbox, message, entry)
        if kind == "webhook":
            prepared = await _blocking(actions.webhook_request, job, self.settings)
            if isinstance(prepared, Outcome):
                return prepared
            from mailroom import webhook_http

            client = self.client or webhook_http.shared_client(
                allow_private=self.settings.webhook_allow_private
            )
            return await actions.webhook(job, *prepared, client=client)
        if kind == "eventbridge":
            return await _blocking(actions.eventbridge, job, self.settings)
        if kind == "forward":
            return await _blocking(actions.forward, self.table, job)
        return await _blocking(actions.reply, self.table, job, body, now=now)

    def _job(
        self, pending: PendingAction, action: Item, mailbox: Item, message: Item, entry: Item
    ) -> tuple[Job, dict[str, Any]]:
        """The job with its template context: the message's body (S3 when it was not inline) and
        the mailbox data documents a webhook names (one BatchGetItem)."""
        from mailroom.services.mail_views import load_body

        body = load_body(message)
        parameters = action.get("parameters") or {}
        data_keys = (
            [str(k) for k in parameters.get("data_keys") or []] if isinstance(parameters, dict) else []
        )
        data: dict[str, Any] = {}
        if data_keys:
            items = action_runs.documents(self.table, pending.org_id, pending.mailbox_id, data_keys)
            data = runs.decode_documents(items, data_keys)
        context = runs.template_context(
            message=message,
            text=body.get("text"),
            mailbox=mailbox,
            action=action,
            route=runs.route_of(entry, pending.route_id),
            data=data,
        )
        return Job(pending, action, mailbox, message, entry, context), body

    # ------------------------------------------------------------------------- recording

    async def _record(
        self,
        queued: QueuedAction,
        entry: Item,
        logged: Any,
        token: str,
        attempts: int,
        outcome: Outcome,
        duration_ms: int,
    ) -> Disposition:
        pending = queued.pending
        delay: float | None = None
        exhausted = False
        if outcome.status == runs.RETRY:
            delay = retry_rules.retry_delay(
                self.settings.automation_retry_schedule, attempts, retry_after=outcome.retry_after
            )
            if delay is not None:
                delay = min(delay, float(runs.MAX_RETRY_DELAY_SECONDS))  # one visibility at most
            else:
                exhausted = True
                outcome = Outcome(
                    runs.FAILED, runs.clipped(f"retries_exhausted: {outcome.error}"), outcome.detail
                )
        now = clock.utcnow()
        next_at = (
            clock.isoformat(datetime.fromtimestamp(time.time() + delay, UTC)) if delay is not None else None
        )
        shared = {
            "attempts": attempts,
            "duration_ms": duration_ms,
            "error": outcome.error,
            "detail": outcome.detail or None,
        }
        run_fields = {
            **shared,
            "finished_at": clock.isoformat(now) if outcome.final else None,
            "next_attempt_at": next_at,
            "redrivable": True if exhausted else None,
        }
        recorded = await _blocking(
            action_runs.finish,
            self.table,
            pending,
            token=token,
            status=outcome.status,
            seen_log_status=str(logged.get("status")),
            run_fields=run_fields,
            log_fields={**shared, "next_attempt_at": next_at},
        )
        logger().info(
            "automation action",
            extra={
                "run_id": pending.run_id,
                "action_type": pending.action_type,
                "status": outcome.status,
                "attempts": attempts,
                "duration_ms": duration_ms,
                "error": outcome.error,
                "recorded": recorded,
            },
        )
        if recorded == "lost":
            self.outcomes["lost"] += 1
            return Disposition.DONE  # the worker that took the lease over carries on
        if delay is not None:
            self.outcomes["retried"] += 1
            await _blocking(automation_queue.change_visibility, queued.receipt_handle, delay)
            return Disposition.WAIT
        self.outcomes[outcome.status] += 1
        if exhausted:
            try:
                await _blocking(
                    automation_queue.dead_letter,
                    queued.body,
                    reason="retries_exhausted",
                    run_id=pending.run_id,
                )
            except Exception:
                # The failure is in the log already; losing the parked copy only loses the redrive.
                logger().exception("dead-letter copy not sent", extra={"run_id": pending.run_id})
        return Disposition.DONE

    def back_off(self, queued: QueuedAction) -> None:
        """After handling ``queued`` raised: bring it back soon, later with each receive, rather than
        after the queue's visibility timeout. Best effort."""
        step = FAILED_BACKOFF_SECONDS[min(queued.receive_count, len(FAILED_BACKOFF_SECONDS)) - 1]
        try:
            automation_queue.change_visibility(queued.receipt_handle, step)
        except StoreError:
            logger().warning("failed automation message left to the visibility timeout", exc_info=True)
