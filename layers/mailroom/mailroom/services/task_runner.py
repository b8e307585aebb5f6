"""One run of a task config (docs/automation-tasks.md): take the task's lease, select the messages its
query names, run its action over them, record the run and give the lease back.

Invoked by the task's schedule (``{org_id, task_id, scheduled_time}``) or by ``action/execute``
(``{org_id, task_id, run_id}``, the run recorded as queued). Delivery is at least once on both
paths, and two firings may overlap (a long run, a manual run during a scheduled one); so:

* a scheduled firing takes the lease and records its scheduled time in one conditional write: the
  same firing delivered again finds its time recorded and does nothing;
* a manual run moves its run item from queued to running conditionally: delivered again, it finds
  the run started and does nothing;
* while a lease is held (until the holder gives it back, or ``LEASE_SECONDS`` after it was taken,
  past the function's longest run), another run is recorded as ``skipped`` and does nothing; the
  run that takes over an expired lease closes its dead holder's run as failed.

AWS calls per run: the task (1 UpdateItem: the lease), the run (1 PutItem or UpdateItem), the
mailbox, the action (2 GetItem), the query (1 to 5 Queries per 200 messages; 1 more for a folder
named by path), then per action: webhook 1 KMS Decrypt (cached) and 1 POST; eventbridge 1 PutEvents
per 100 messages; move/label/delete 1 TransactWriteItems per message (``message_changes``); then
the run and the lease (2 UpdateItem).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailroom import clock, errors, loops
from mailroom.domain import event_buses
from mailroom.domain import tasks as rules
from mailroom.domain import webhooks as webhook_rules
from mailroom.domain.tasks import Query
from mailroom.errors import MailroomError
from mailroom.mail import templates
from mailroom.observability import append_keys, logger
from mailroom.services import automation_webhooks, message_listing, task_configs
from mailroom.services.folders import require_folder
from mailroom.services.message_changes import (
    TO_TRASH,
    Change,
    apply_change,
    clean_labels,
    edit_labels,
    move_to,
)
from mailroom.services.message_listing import MessageFilters
from mailroom.settings import get_settings
from mailroom.store import automation_events, keys, mailboxes, scheduler
from mailroom.store import tasks as store
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table

# Longer than the runner's 900 s timeout: a lease outlives its holder only when the holder died.
LEASE_SECONDS = 960
# A run stops taking messages when less than this is left of the invocation.
RESERVE_MS = 20_000
PAGE_SIZE = 200
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF_SECONDS = (1.0, 3.0)


@dataclass
class Tally:
    matched: int = 0
    done: int = 0
    failed: int = 0
    error: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, message_id: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < rules.MAX_RUN_FAILURES:
            self.failures.append({"message_id": message_id, "error": reason[:300]})


Remaining = Callable[[], int]


def fire_scheduled(
    table: Table, org_id: str, task_id: str, scheduled_time: str | None, remaining: Remaining
) -> str:
    """A schedule's firing; the outcome (``succeeded``, ``skipped``, ``duplicate``, ``gone``, ...)."""
    task = store.get(table, org_id, task_id)
    if task is None:
        # Its task was deleted and the schedule with it, but this one was left (a deletion that
        # stopped halfway): it would fire forever otherwise.
        scheduler.delete(task_configs.schedule_name(task_id), get_settings().task_schedule_group)
        return "gone"
    if not task.get("enabled", True):
        return "disabled"
    now = clock.utcnow()
    run = task_configs.new_run(
        task, trigger="schedule", created_at=clock.isoformat(now), scheduled_time=scheduled_time
    )
    append_keys(run_id=run["id"])
    leased = store.take_lease(
        table,
        org_id,
        task_id,
        run_id=run["id"],
        now=int(now.timestamp()),
        until=int(now.timestamp()) + LEASE_SECONDS,
        scheduled_time=scheduled_time,
    )
    if leased is None:
        current = store.get(table, org_id, task_id)
        if current is None:
            return "gone"
        if scheduled_time is not None and current.get("last_scheduled_time") == scheduled_time:
            return "duplicate"
        store.put_run(table, {**run, **_skipped(current, now)})
        return "skipped"
    store.put_run(table, {**run, "status": "running", "started_at": clock.isoformat(now)})
    _close_abandoned(table, task, now)
    return _run(table, leased, run["id"], now, remaining)


def run_manual(table: Table, org_id: str, task_id: str, run_id: str, remaining: Remaining) -> str:
    """``action/execute``'s run, queued by the API."""
    append_keys(run_id=run_id)
    now = clock.utcnow()
    started = store.start_run(
        table, org_id, task_id, run_id, {"status": "running", "started_at": clock.isoformat(now)}
    )
    if started is None:
        return "duplicate"  # delivered again: the run started (or ended) already
    task = store.get(table, org_id, task_id)
    if task is None:
        _finish(table, org_id, task_id, run_id, now, Tally(error="the task config was deleted"))
        return "gone"
    leased = store.take_lease(
        table,
        org_id,
        task_id,
        run_id=run_id,
        now=int(now.timestamp()),
        until=int(now.timestamp()) + LEASE_SECONDS,
        scheduled_time=None,
    )
    if leased is None:
        store.finish_run(table, org_id, task_id, run_id, _skipped(task, now))
        return "skipped"
    _close_abandoned(table, task, now)
    return _run(table, leased, run_id, now, remaining)


def _close_abandoned(table: Table, before: Item, now: datetime) -> None:
    """The lease just taken had expired: its holder died (a timeout, a crash) with its run still
    ``running``; that run is closed as failed so the listing does not show it running for ever."""
    holder = before.get("lease_run")
    if not holder:
        return
    store.abandon_run(
        table,
        before["org_id"],
        before["id"],
        str(holder),
        {
            "status": "failed",
            "error": "the runner stopped before the run finished (a time limit or a crash)",
            "finished_at": clock.isoformat(now),
        },
    )


def _skipped(task: Item, now: datetime) -> dict[str, Any]:
    return {
        "status": "skipped",
        "error": f"another run of this task is in progress ({task.get('lease_run', 'unknown')})",
        "finished_at": clock.isoformat(now),
        "duration_ms": 0,
    }


def _run(table: Table, task: Item, run_id: str, started: datetime, remaining: Remaining) -> str:
    tally = Tally()
    try:
        _execute(table, task, run_id, tally, remaining)
    except MailroomError as exc:
        tally.error = exc.message or exc.code
    except StoreError as exc:
        logger().exception("task run failed on AWS")
        tally.error = f"AWS was unavailable ({exc.code or type(exc).__name__}); the next run tries again"
    finally:
        status = _finish(table, task["org_id"], task["id"], run_id, started, tally)
        store.release_lease(
            table,
            task["org_id"],
            task["id"],
            run_id=run_id,
            last_run={"id": run_id, "status": status, "finished_at": clock.now_iso()},
        )
    return status


def _finish(table: Table, org_id: str, task_id: str, run_id: str, started: datetime, tally: Tally) -> str:
    status = rules.run_status(matched=tally.matched, done=tally.done, failed=tally.failed, error=tally.error)
    finished = clock.utcnow()
    store.finish_run(
        table,
        org_id,
        task_id,
        run_id,
        {
            "status": status,
            "matched": tally.matched,
            "done": tally.done,
            "failed": tally.failed,
            "error": tally.error,
            "failures": tally.failures or None,
            "finished_at": clock.isoformat(finished),
            "duration_ms": max(0, round((finished - started).total_seconds() * 1000)),
        },
    )
    logger().info(
        "task run finished",
        extra={"status": status, "matched": tally.matched, "done": tally.done, "failed": tally.failed},
    )
    return status


# --- the work -------------------------------------------------------------------------------------------


def _execute(table: Table, task: Item, run_id: str, tally: Tally, remaining: Remaining) -> None:
    org_id = task["org_id"]
    mailbox = mailboxes.get(table, org_id, task["mailbox_id"])
    if mailbox is None:
        raise errors.validation("the task's mailbox no longer exists", code="unknown_mailbox")
    action = store.get_action(table, org_id, task["action_id"])
    if action is None:
        raise errors.validation("the task's action no longer exists", code="unknown_action")
    task_configs.check_action(table, mailbox, action, field="action_id")
    kind = action["action_type"]
    parameters = action.get("parameters") or {}
    change = _change_of(table, mailbox, kind, parameters)
    messages = _select(
        table, mailbox, task, kind, change_target=parameters.get("folder"), remaining=remaining
    )
    tally.matched = len(messages)
    if not messages:
        return
    if kind == "webhook":
        _webhook(table, task, run_id, mailbox, action, messages, tally)
    elif kind == "eventbridge":
        _eventbridge(task, run_id, mailbox, action, messages, tally)
    else:
        assert change is not None
        for message in messages:
            if remaining() < RESERVE_MS:
                tally.error = (
                    f"stopped before the time limit; {tally.matched - tally.done - tally.failed} left"
                )
                return
            try:
                apply_change(table, message, change)
            except MailroomError as exc:
                tally.fail(message["id"], exc.message or exc.code)
                continue
            tally.done += 1


def _change_of(table: Table, mailbox: Item, kind: str, parameters: dict[str, Any]) -> Change | None:
    if kind == "move":
        return move_to(require_folder(table, mailbox, str(parameters.get("folder") or "")).key)
    if kind == "label":
        return edit_labels(add=clean_labels([str(label) for label in parameters.get("labels") or []]))
    if kind == "delete":
        return TO_TRASH
    return None


def _select(
    table: Table, mailbox: Item, task: Item, kind: str, *, change_target: Any, remaining: Remaining
) -> list[Item]:
    """The messages the query names, newest first, at most its limit; without those the action
    would not change (already in Trash for delete, already in the folder for move)."""
    query = Query.of(task.get("query") or {})
    skip_folder = None
    if kind == "delete":
        skip_folder = "trash"
    elif kind == "move":
        skip_folder = require_folder(table, mailbox, str(change_target or "")).key
    filters = MessageFilters(
        folder=query.folder,
        unread=query.unread,
        sender=query.from_contains,
        subject=query.subject_contains,
        before=query.received_before(clock.utcnow()),
    )
    found: list[Item] = []
    cursor: str | None = None
    while len(found) < query.limit and remaining() > RESERVE_MS:
        listing = message_listing.list_messages(
            table, mailbox, filters, per_page=min(PAGE_SIZE, query.limit - len(found)), cursor=cursor
        )
        found.extend(m for m in listing.page.items if m["folder_key"] != skip_folder)
        cursor = listing.page.next_cursor
        if cursor is None:
            break
    return found[: query.limit]


def _context(
    table: Table, task: Item, run_id: str, mailbox: Item, action: Item, messages: list[Item]
) -> dict[str, Any]:
    body = rules.digest(
        task=task,
        run_id=run_id,
        mailbox=mailbox,
        action=action,
        messages=messages,
        created_at=clock.now_iso(),
    )
    data: dict[str, Any] = {}
    for key in (action.get("parameters") or {}).get("data_keys") or []:
        item = table.get(keys.mailbox_pk(task["org_id"], mailbox["id"]), keys.mailbox_data_sk(str(key)))
        data[str(key)] = json.loads(item["value"]) if item and "value" in item else None
    return {**body, "data": data}


def _webhook(
    table: Table, task: Item, run_id: str, mailbox: Item, action: Item, messages: list[Item], tally: Tally
) -> None:
    """One signed POST listing every matched message; retried a few times within the run with the
    same ``webhook-id`` (a receiver deduplicates on it), then the run fails and the next one tries."""
    settings = get_settings()
    parameters = action.get("parameters") or {}
    try:
        url = webhook_rules.parse_url(
            str(parameters.get("url") or ""), allow_http=settings.webhook_allow_private
        )
    except webhook_rules.InvalidWebhookUrl as exc:
        raise errors.validation(f"the action's url: {exc}", code="invalid_webhook_url") from exc
    context = _context(table, task, run_id, mailbox, action, messages)
    template = parameters.get("body_template")
    if template:
        try:
            rendered = templates.render(
                templates.Parts(subject="", text=str(template), html=None), context
            ).text
            body = json.dumps(json.loads(rendered or ""), separators=(",", ":")).encode()
        except templates.TemplateError as exc:
            raise errors.validation(f"the action's body_template: {exc.message}", code=exc.code) from exc
        except ValueError as exc:
            raise errors.validation(
                "the action's body_template did not render JSON", code="template_not_json"
            ) from exc
    else:
        context.pop("data")
        body = json.dumps(context, separators=(",", ":"), default=str).encode()
    msg_id = f"msg_{run_id.removeprefix('run_')}"
    allow_private = settings.webhook_allow_private
    try:
        automation_webhooks.signing_key(action)  # unsealed once here (then cached), refused before any POST
    except automation_webhooks.NoSecret as exc:
        raise errors.validation(
            "the webhook action has no secret", field="action_id", code="action_secret_missing"
        ) from exc
    error = loops.run_on_thread_loop(_post(url.url, action, msg_id, body, allow_private=allow_private))
    if error is None:
        tally.done = len(messages)
        return
    tally.failed = len(messages)
    tally.error = f"the webhook was not delivered: {error}"


async def _post(url: str, action: Item, msg_id: str, body: bytes, *, allow_private: bool) -> str | None:
    from mailroom import webhook_http

    error: str | None = None
    client = webhook_http.shared_client(allow_private=allow_private)
    for attempt in range(WEBHOOK_ATTEMPTS):
        headers = automation_webhooks.signed_headers(action, msg_id, body)
        result = await webhook_http.post(client, url, body, headers)
        if result.succeeded:
            return None
        error = result.error or f"HTTP {result.status_code}"
        if result.status_code is not None and 400 <= result.status_code < 500 and result.status_code != 429:
            return error  # the receiver refused this body: sending it again would not help
        if attempt < len(WEBHOOK_BACKOFF_SECONDS):
            await asyncio.sleep(WEBHOOK_BACKOFF_SECONDS[attempt])
    return error


def _eventbridge(
    task: Item, run_id: str, mailbox: Item, action: Item, messages: list[Item], tally: Tally
) -> None:
    """One entry per ten messages, ten entries per PutEvents call."""
    parameters = action.get("parameters") or {}
    try:
        bus = event_buses.check_allowed(
            event_buses.parse_arn(str(parameters.get("event_bus_arn") or "")),
            get_settings().eventbridge_accounts,
        )
    except (event_buses.InvalidEventBusArn, event_buses.EventBusNotAllowed) as exc:
        raise errors.validation(f"the action's event_bus_arn: {exc}", code="event_bus_not_allowed") from exc
    detail_type = str(parameters.get("detail_type") or rules.DEFAULT_DETAIL_TYPE)
    created = clock.utcnow()
    groups = rules.chunks(messages, rules.EVENTBRIDGE_MESSAGES_PER_ENTRY)
    entries = []
    for group in groups:
        detail = rules.digest(
            task=task,
            run_id=run_id,
            mailbox=mailbox,
            action=action,
            messages=group,
            created_at=clock.isoformat(created),
        )
        entries.append(event_buses.entry(bus.arn, detail_type, json.dumps(detail, default=str), time=created))
    for first in range(0, len(entries), rules.EVENTBRIDGE_ENTRIES_PER_CALL):
        batch = entries[first : first + rules.EVENTBRIDGE_ENTRIES_PER_CALL]
        try:
            outcomes: list[str | None] = automation_events.put_entries(bus, batch)
        except StoreError as exc:
            outcomes = [exc.code or type(exc).__name__] * len(batch)
        for index, outcome in enumerate(outcomes):
            group = groups[first + index]
            if outcome is None:
                tally.done += len(group)
            else:
                for message in group:
                    tally.fail(message["id"], f"EventBridge refused the entry: {outcome}")
