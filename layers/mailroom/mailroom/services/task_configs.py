"""Task configs (``/api/v1/task-configs``, docs/automation-tasks.md): an action of the organization
run over a query of one mailbox's mail on a recurring EventBridge Scheduler schedule, or now.

Each task has one schedule, ``mailroom-task-<task id>`` in the stack's task group, created, replaced
and deleted with it; its target is the task runner's alias with the input ``{org_id, task_id,
scheduled_time}`` (Scheduler fills the time in at each firing). The item is written first and the
schedule after it: a schedule that could not be written takes the item write back, so a task never
exists without its schedule (a schedule without a task, should a deletion stop halfway, finds no
task at its next firing and deletes itself).

``execute`` records a queued run and invokes the runner asynchronously with its id (Lambda's
``Event`` invocation: retried by Lambda, never by the caller), answering 202 at once.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from zoneinfo import available_timezones

from mailroom import clock, errors, ids
from mailroom.domain import tasks as rules
from mailroom.domain.tasks import Query
from mailroom.services.folders import require_folder
from mailroom.settings import get_settings
from mailroom.store import functions, mailboxes, scheduler, txn
from mailroom.store import tasks as store
from mailroom.store.errors import ConditionFailed, ObjectMissing, StoreError
from mailroom.store.table import Item, Page, Table

SCHEDULE_PREFIX = "mailroom-task-"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    mailbox_id: str
    schedule: str
    timezone: str
    action_id: str
    query: Query
    enabled: bool = True
    description: str | None = None


def schedule_name(task_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{task_id}"


def _target() -> scheduler.Target:
    settings = get_settings()
    if not (settings.task_runner_function_arn and settings.task_scheduler_role_arn):
        raise errors.Unavailable(
            "scheduling_unavailable",
            "Task configs are not configured on this deployment.",
            hint="Set MAILROOM_TASK_RUNNER_FUNCTION_ARN and MAILROOM_TASK_SCHEDULER_ROLE_ARN.",
        )
    return scheduler.Target(
        function_arn=settings.task_runner_function_arn,
        role_arn=settings.task_scheduler_role_arn,
        dead_letter_arn=settings.task_runner_dlq_arn,
        group=settings.task_schedule_group,
    )


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


# --- views ----------------------------------------------------------------------------------------------


def task_view(task: Item) -> dict[str, Any]:
    return {
        "id": task["id"],
        "name": task["name"],
        "description": task.get("description"),
        "mailbox_id": task["mailbox_id"],
        "schedule": task["schedule"],
        "timezone": task["timezone"],
        "action_id": task["action_id"],
        "action_type": task["action_type"],
        "query": Query.of(task.get("query") or {}).as_item(),
        "enabled": bool(task.get("enabled", True)),
        "schedule_name": schedule_name(task["id"]),
        "last_run": task.get("last_run"),
        "created_at": task["created_at"],
        "updated_at": task["updated_at"],
    }


def run_view(run: Item) -> dict[str, Any]:
    return {
        "id": run["id"],
        "task_id": run["task_id"],
        "trigger": run["trigger"],
        "status": run["status"],
        "scheduled_time": run.get("scheduled_time"),
        "created_at": run["created_at"],
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "duration_ms": run.get("duration_ms"),
        "counts": {k: int(run.get(k, 0)) for k in ("matched", "done", "failed")},
        "error": run.get("error"),
        "failures": list(run.get("failures") or []),
    }


# --- validation -----------------------------------------------------------------------------------------


def _checked(table: Table, org_id: str, spec: TaskSpec) -> tuple[TaskSpec, Item]:
    """The spec with its schedule normalized, and its action; 422 for what a task cannot be."""
    try:
        spec = replace(spec, schedule=rules.check_schedule(spec.schedule))
    except rules.InvalidSchedule as exc:
        raise errors.validation(str(exc), field="schedule", code="invalid_schedule") from exc
    # Checked against the zone names, not by loading one: a path must not reach the file system.
    if spec.timezone not in _zones():
        raise errors.validation(
            f"unknown time zone {spec.timezone[:64]!r} (an IANA name such as Europe/Paris)",
            field="timezone",
            code="invalid_timezone",
        )
    mailbox = mailboxes.get(table, org_id, spec.mailbox_id) if ids.is_id(spec.mailbox_id, "mbx") else None
    if mailbox is None:
        raise errors.validation(
            "no such mailbox in this organization", field="mailbox_id", code="unknown_mailbox"
        )
    if spec.query.folder is not None:
        require_folder(table, mailbox, spec.query.folder, field="query.folder")
    action = store.get_action(table, org_id, spec.action_id) if ids.is_id(spec.action_id, "act") else None
    if action is None:
        raise errors.validation(
            "no such action in this organization", field="action_id", code="unknown_action"
        )
    check_action(table, mailbox, action, field="action_id")
    return spec, action


def check_action(table: Table, mailbox: Item, action: Item, *, field: str) -> None:
    """422 ``unsupported_action`` for an action type a task cannot run; a move's folder must exist."""
    kind = action.get("action_type")
    if kind not in rules.TASK_ACTION_TYPES:
        raise errors.validation(
            f"a task runs {', '.join(rules.TASK_ACTION_TYPES)} actions, not {kind}",
            field=field,
            code="unsupported_action",
        )
    if kind == "move":
        require_folder(table, mailbox, str((action.get("parameters") or {}).get("folder") or ""), field=field)


def _item(org_id: str, task_id: str, spec: TaskSpec, action: Item, *, created_at: str, version: int) -> Item:
    return {
        "type": "task",
        "id": task_id,
        "org_id": org_id,
        "name": spec.name,
        "description": spec.description,
        "mailbox_id": spec.mailbox_id,
        "schedule": spec.schedule,
        "timezone": spec.timezone,
        "action_id": spec.action_id,
        "action_type": action["action_type"],
        "query": spec.query.as_item(),
        "enabled": spec.enabled,
        "version": version,
        "created_at": created_at,
        "updated_at": clock.now_iso(),
    }


def spec_of(task: Item) -> TaskSpec:
    return TaskSpec(
        name=task["name"],
        mailbox_id=task["mailbox_id"],
        schedule=task["schedule"],
        timezone=task["timezone"],
        action_id=task["action_id"],
        query=Query.of(task.get("query") or {}),
        enabled=bool(task.get("enabled", True)),
        description=task.get("description"),
    )


def _put_schedule(task: Item, *, create: bool) -> None:
    payload = {"org_id": task["org_id"], "task_id": task["id"], "scheduled_time": SCHEDULED_TIME}
    scheduler.put_recurring(
        schedule_name(task["id"]),
        task["schedule"],
        task["timezone"],
        payload,
        _target(),
        enabled=bool(task["enabled"]),
        create=create,
    )


def _schedule_failed(exc: StoreError) -> errors.MailroomError:
    return errors.Unavailable(
        "schedule_unavailable",
        f"The task's schedule could not be written ({exc.code or type(exc).__name__}); nothing changed.",
        hint="Retry the request.",
    )


# --- use cases ------------------------------------------------------------------------------------------


def create(table: Table, org_id: str, spec: TaskSpec) -> Item:
    spec, action = _checked(table, org_id, spec)
    _target()  # 503 before anything is written on a deployment without the scheduler
    now = clock.now_iso()
    task = _item(org_id, ids.new_id("tsk"), spec, action, created_at=now, version=1)
    try:
        store.create(table, task)
    except txn.Rejected as rejected:
        if "head" in rejected.roles:
            raise errors.LimitReached(
                "task_limit_reached",
                f"An organization has at most {rules.MAX_TASKS} task configs.",
                hint="Delete a task config first.",
            ) from rejected
        raise
    try:
        _put_schedule(task, create=True)
    except StoreError as exc:
        store.delete(table, org_id, task["id"])
        raise _schedule_failed(exc) from exc
    return task


def load(table: Table, org_id: str, task_id: str) -> Item:
    task = store.get(table, org_id, task_id) if ids.is_id(task_id, "tsk") else None
    if task is None:
        raise errors.not_found("Task config")
    return task


def list_tasks(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    page = store.list_page(table, org_id, per_page=per_page, cursor=cursor)
    return page, max(0, int(store.head(table, org_id).get("task_count", 0)))


def update(table: Table, task: Item, spec: TaskSpec) -> Item:
    """Replace the task with ``spec`` (PUT; PATCH merges into ``spec_of(task)`` first) and its
    schedule with it; 409 ``concurrent_update`` when another change came first."""
    org_id = task["org_id"]
    spec, action = _checked(table, org_id, spec)
    _target()
    version = int(task.get("version", 1))
    updated = _item(org_id, task["id"], spec, action, created_at=task["created_at"], version=version + 1)
    try:
        store.replace(table, updated, expected_version=version)
    except ConditionFailed as exc:
        raise errors.concurrent_update() from exc
    try:
        _put_schedule(updated, create=False)
    except ObjectMissing:
        # Deleted by hand in the console: made again, so the task runs as it says.
        _put_schedule(updated, create=True)
    except StoreError as exc:
        previous = {k: v for k, v in task.items() if k not in ("PK", "SK")}
        # Changed again meanwhile: that change's schedule write decides.
        with contextlib.suppress(ConditionFailed):
            store.replace(table, previous, expected_version=version + 1)
        raise _schedule_failed(exc) from exc
    return {**task, **updated}


def delete(table: Table, task: Item) -> None:
    try:
        store.delete(table, task["org_id"], task["id"])
    except txn.Rejected as rejected:
        raise errors.not_found("Task config") from rejected
    scheduler.delete(schedule_name(task["id"]), _target().group)


def execute(table: Table, task: Item) -> Item:
    """Queue a manual run and hand it to the runner; the run (status ``queued``) to poll."""
    target = _target()
    now = clock.utcnow()
    run = new_run(task, trigger="manual", created_at=clock.isoformat(now))
    store.put_run(table, run)
    payload = {"org_id": task["org_id"], "task_id": task["id"], "run_id": run["id"]}
    try:
        functions.invoke_async(target.function_arn, payload)
    except StoreError as exc:
        store.finish_run(
            table,
            task["org_id"],
            task["id"],
            run["id"],
            {
                "status": "failed",
                "error": "the task runner could not be invoked",
                "finished_at": clock.now_iso(),
            },
        )
        raise errors.Unavailable(
            "task_runner_unavailable", "The task runner could not be invoked.", hint="Retry the request."
        ) from exc
    return run


def new_run(
    task: Item, *, trigger: rules.Trigger, created_at: str, scheduled_time: str | None = None
) -> Item:
    expires = clock.parse_iso(created_at) + timedelta(days=rules.RUN_RETENTION_DAYS)
    return {
        "type": "task_run",
        "id": ids.new_id("run"),
        "org_id": task["org_id"],
        "task_id": task["id"],
        "trigger": trigger,
        "status": "queued",
        "scheduled_time": scheduled_time,
        "created_at": created_at,
        "matched": 0,
        "done": 0,
        "failed": 0,
        "ttl": int(expires.timestamp()),
    }


def list_runs(table: Table, task: Item, *, per_page: int, cursor: str | None) -> Page:
    return store.list_runs(table, task["org_id"], task["id"], per_page=per_page, cursor=cursor)


def load_run(table: Table, task: Item, run_id: str) -> Item:
    run = store.get_run(table, task["org_id"], task["id"], run_id) if ids.is_id(run_id, "run") else None
    if run is None:
        raise errors.not_found("Run")
    return run
