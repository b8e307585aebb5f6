"""The task configs API's bodies (``/api/v1/task-configs...``, docs/automation-tasks.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from mailroom.api.models import Strict, Timestamp
from mailroom.domain import tasks as rules
from mailroom.domain.tasks import Query

_SCHEDULE = (
    "EventBridge Scheduler's recurring expression: rate(<value> minute|minutes|hour|hours|day|days) or "
    "cron(minutes hours day-of-month month day-of-week year), evaluated in `timezone` "
    "(422 invalid_schedule with the reason)"
)
_TIMEZONE = "IANA time zone the schedule is evaluated in, e.g. Europe/Paris (422 invalid_timezone)"
_ACTION = (
    "An action of the organization (act_...) of type webhook, eventbridge, move, label or delete "
    "(422 unknown_action, unsupported_action)"
)
_MAILBOX = "The mailbox whose mail the query selects (mbx_...; 422 unknown_mailbox)"


class TaskQuery(Strict):
    """Which messages a run acts on: every condition given holds; newest first, at most `limit`."""

    folder: str | None = Field(
        default=None,
        max_length=500,
        description="A folder path or key (422 unknown_folder); all folders if absent",
    )
    unread: bool | None = Field(default=None, description="true: unread only; false: read only")
    older_than_days: int | None = Field(
        default=None,
        ge=0,
        le=rules.MAX_OLDER_THAN_DAYS,
        description="Received at least this many days before the run",
    )
    from_contains: str | None = Field(
        default=None,
        min_length=1,
        max_length=rules.MAX_CONTAINS_CHARS,
        description="The sender contains this (case-insensitive)",
    )
    subject_contains: str | None = Field(
        default=None,
        min_length=1,
        max_length=rules.MAX_CONTAINS_CHARS,
        description="The subject contains this (case-insensitive)",
    )
    limit: int = Field(
        default=rules.DEFAULT_QUERY_LIMIT,
        ge=1,
        le=rules.MAX_QUERY_LIMIT,
        description="At most this many messages per run",
    )

    def query(self) -> Query:
        return Query(**self.model_dump())


class TaskCreate(Strict):
    """A task config as a whole (create, and PUT's full replacement)."""

    name: str = Field(min_length=1, max_length=rules.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=500)
    mailbox_id: str = Field(min_length=1, max_length=64, description=_MAILBOX)
    schedule: str = Field(
        min_length=1,
        max_length=rules.MAX_EXPRESSION_CHARS,
        description=_SCHEDULE,
        examples=["cron(0 8 * * ? *)"],
    )
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description=_TIMEZONE)
    action_id: str = Field(min_length=1, max_length=64, description=_ACTION)
    query: TaskQuery = Field(default_factory=TaskQuery)
    enabled: bool = Field(
        default=True, description="false: the schedule is kept, disabled; action/execute still runs it"
    )


class TaskUpdate(Strict):
    """Only the fields sent change (`query` is replaced as a whole); only `description` may be null."""

    name: str | None = Field(default=None, min_length=1, max_length=rules.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=500)
    mailbox_id: str | None = Field(default=None, min_length=1, max_length=64, description=_MAILBOX)
    schedule: str | None = Field(
        default=None, min_length=1, max_length=rules.MAX_EXPRESSION_CHARS, description=_SCHEDULE
    )
    timezone: str | None = Field(default=None, min_length=1, max_length=64, description=_TIMEZONE)
    action_id: str | None = Field(default=None, min_length=1, max_length=64, description=_ACTION)
    query: TaskQuery | None = None
    enabled: bool | None = None

    @field_validator("name", "mailbox_id", "schedule", "timezone", "action_id", "query", "enabled")
    @classmethod
    def not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields sent (defaults are not validated): an explicit null is refused.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value


class QueryView(BaseModel):
    folder: str | None
    unread: bool | None
    older_than_days: int | None
    from_contains: str | None
    subject_contains: str | None
    limit: int


class LastRun(BaseModel):
    id: str
    status: Literal["succeeded", "partial", "failed", "skipped"]
    finished_at: Timestamp


class TaskView(BaseModel):
    id: str = Field(description="tsk_...")
    name: str
    description: str | None
    mailbox_id: str
    schedule: str
    timezone: str
    action_id: str
    action_type: Literal["webhook", "eventbridge", "move", "label", "delete"] = Field(
        description="The action's type when the task was last written"
    )
    query: QueryView
    enabled: bool
    schedule_name: str = Field(description="The EventBridge Scheduler schedule (in the stack's task group)")
    last_run: LastRun | None = Field(description="The latest run that finished")
    created_at: Timestamp
    updated_at: Timestamp


class RunCounts(BaseModel):
    matched: int = Field(description="Messages the query selected (and the action would change)")
    done: int = Field(description="Messages the action was applied to (or delivered)")
    failed: int


class RunFailure(BaseModel):
    message_id: str
    error: str


class RunView(BaseModel):
    id: str = Field(description="run_...")
    task_id: str
    trigger: Literal["schedule", "manual"]
    status: Literal["queued", "running", "succeeded", "partial", "failed", "skipped"] = Field(
        description="queued → running → succeeded | partial (some failed) | failed; skipped: another "
        "run of the task held its lease"
    )
    scheduled_time: str | None = Field(description="The schedule's firing time (scheduled runs)")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    counts: RunCounts
    error: str | None
    failures: list[RunFailure] = Field(description=f"The first {rules.MAX_RUN_FAILURES} messages that failed")
