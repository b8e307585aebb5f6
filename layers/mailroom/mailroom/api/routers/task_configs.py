"""Task configs (``/api/v1/task-configs``): an action run over a query of a mailbox's mail on a
recurring schedule, or now (docs/automation-tasks.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.task_configs import RunView, TaskCreate, TaskUpdate, TaskView
from mailroom.domain.principal import Principal
from mailroom.services import task_configs as service
from mailroom.services.task_configs import TaskSpec
from mailroom.store.table import Item, Table

router = api_router("/api/v1/task-configs", tags=["task-configs"])
READ = "automation:read"
WRITE = "automation:write"
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
TaskId = Annotated[str, Path(max_length=64, description="The task config's id (tsk_...)")]
RunId = Annotated[str, Path(max_length=64, description="The run's id (run_...)")]

NOT_FOUND = "not_found: no such task config in this organization"
INVALID = (
    "invalid_schedule, invalid_timezone, unknown_mailbox, unknown_folder, unknown_action, "
    "unsupported_action, validation_error"
)
UNAVAILABLE = "scheduling_unavailable (not configured), schedule_unavailable (retry)"


def _task_with(scope: str, *, audited: bool) -> Callable[[Request, str], Item]:
    authorized = require(scope)

    def load(request: Request, task_id: TaskId) -> Item:
        principal = authorized(request)
        if audited:
            audit_target(request, "task_config", task_id)
        return service.load(Table(), principal.org_id, task_id)

    return load


ReadableTask = Annotated[Item, Depends(_task_with(READ, audited=False))]
WritableTask = Annotated[Item, Depends(_task_with(WRITE, audited=True))]
Reader = Annotated[Principal, Depends(require(READ))]
Writer = Annotated[Principal, Depends(require(WRITE))]


def _spec(body: TaskCreate) -> TaskSpec:
    return TaskSpec(
        name=body.name,
        description=body.description,
        mailbox_id=body.mailbox_id,
        schedule=body.schedule,
        timezone=body.timezone,
        action_id=body.action_id,
        query=body.query.query(),
        enabled=body.enabled,
    )


@router.get(
    "",
    name="task_config.list",
    response_model=ListOf[TaskView],
    summary="List task configs",
    responses=errors(e422="invalid_cursor, validation_error"),
)
async def list_tasks(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The organization's task configs in creation order; `meta.total` is the maintained count (at
    most 100 per organization)."""
    page, total = service.list_tasks(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    views = [service.task_view(t) for t in page.items]
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=total)


@router.post(
    "",
    name="task_config.create",
    status_code=201,
    response_model=One[TaskView],
    summary="Create a task config (and its schedule)",
    responses=errors(e422=f"{INVALID}; task_limit_reached (100 per organization)", e503=UNAVAILABLE),
)
async def create_task(body: TaskCreate, request: Request, principal: Writer) -> dict[str, Any]:
    """Run an action of the organization over a query of one mailbox's mail on a recurring
    EventBridge Scheduler schedule (`rate(...)` or `cron(...)` in `timezone`). Webhook actions POST
    one signed digest of the matched messages; eventbridge actions put one event per ten messages;
    move, label and delete act on each message."""
    audit_target(request, "task_config", "-", name=body.name)
    task = service.create(Table(), principal.org_id, _spec(body))
    audit_target(request, "task_config", task["id"], name=task["name"])
    return one(service.task_view(task))


@router.get(
    "/{task_id}",
    name="task_config.get",
    response_model=One[TaskView],
    summary="Get a task config",
    responses=errors(e404=NOT_FOUND),
)
async def get_task(task: ReadableTask) -> dict[str, Any]:
    """A task config, its schedule and its latest finished run."""
    return one(service.task_view(task))


@router.put(
    "/{task_id}",
    name="task_config.replace",
    response_model=One[TaskView],
    summary="Replace a task config (and its schedule)",
    responses=errors(e404=NOT_FOUND, e409="concurrent_update", e422=INVALID, e503=UNAVAILABLE),
)
async def replace_task(body: TaskCreate, task: WritableTask) -> dict[str, Any]:
    """The task config as a whole (fields left out take their defaults); its schedule is replaced
    with it."""
    return one(service.task_view(service.update(Table(), task, _spec(body))))


@router.patch(
    "/{task_id}",
    name="task_config.update",
    response_model=One[TaskView],
    summary="Change some fields of a task config",
    responses=errors(e404=NOT_FOUND, e409="concurrent_update", e422=INVALID, e503=UNAVAILABLE),
)
async def update_task(body: TaskUpdate, task: WritableTask) -> dict[str, Any]:
    """Only the fields sent change (`query` as a whole); `enabled: false` disables the schedule
    without deleting it."""
    current = service.spec_of(task)
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    if "query" in changes:
        changes["query"] = body.query.query() if body.query is not None else current.query
    return one(service.task_view(service.update(Table(), task, replace(current, **changes))))


@router.delete(
    "/{task_id}",
    name="task_config.delete",
    status_code=204,
    summary="Delete a task config (and its schedule)",
    responses=errors(e404=NOT_FOUND, e503=UNAVAILABLE),
)
async def delete_task(task: WritableTask) -> Response:
    """The task and its schedule are deleted; its runs expire with their retention (30 days)."""
    service.delete(Table(), task)
    return Response(status_code=204)


@router.post(
    "/{task_id}/action/execute",
    name="task_config.execute",
    status_code=202,
    response_model=One[RunView],
    summary="Run the task's action now",
    responses=errors(e404=NOT_FOUND, e503="scheduling_unavailable, task_runner_unavailable (retry)"),
)
async def execute_task(task: WritableTask) -> dict[str, Any]:
    """Queue a run now (also for a disabled task) and answer at once with the run, `queued`; poll
    GET .../runs/{run_id} for its outcome. A run while another run of the task holds its lease is
    recorded as `skipped`."""
    return one(service.run_view(service.execute(Table(), task)))


@router.get(
    "/{task_id}/runs",
    name="task_config.runs",
    response_model=ListOf[RunView],
    summary="List a task's runs, newest first",
    responses=errors(e404=NOT_FOUND, e422="invalid_cursor, validation_error"),
)
async def list_runs(request: Request, task: ReadableTask, page_query: PageParams) -> dict[str, Any]:
    """The task's runs of the last 30 days, newest first: trigger, status, counts (matched, done,
    failed), duration and error."""
    page = service.list_runs(Table(), task, per_page=page_query.per_page, cursor=page_query.cursor)
    views = [service.run_view(r) for r in page.items]
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=None)


@router.get(
    "/{task_id}/runs/{run_id}",
    name="task_config.run",
    response_model=One[RunView],
    summary="Get one run of a task",
    responses=errors(e404="not_found: no such task config, or no such run of it"),
)
async def get_run(task: ReadableTask, run_id: RunId) -> dict[str, Any]:
    """One run: its status while it runs, then its outcome."""
    return one(service.run_view(service.load_run(Table(), task, run_id)))
