"""The task runner: invoked by a task's recurring EventBridge Scheduler schedule with
``{"org_id", "task_id", "scheduled_time"}``, or asynchronously by ``action/execute`` with
``{"org_id", "task_id", "run_id"}`` (services/task_runner.py)."""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry, remaining_ms
from mailroom.observability import append_keys, logger


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    from mailroom import ids
    from mailroom.services import task_runner
    from mailroom.store.table import Table

    try:
        org_id, task_id = str(event["org_id"]), str(event["task_id"])
        run_id = event.get("run_id")
        scheduled_time = event.get("scheduled_time")
    except (KeyError, TypeError, AttributeError):
        # Not an event of ours: retrying it would not make it one.
        logger().error("task runner event without its ids", extra={"event_keys": sorted(event or {})})
        return {"outcome": "invalid"}
    if not ids.is_id(task_id, "tsk") or (run_id is not None and not ids.is_id(str(run_id), "run")):
        logger().error("task runner event with malformed ids")
        return {"outcome": "invalid"}
    append_keys(org_id=org_id, task_id=task_id)

    def remaining() -> int:
        return remaining_ms(context)

    if run_id is not None:
        outcome = task_runner.run_manual(Table(), org_id, task_id, str(run_id), remaining)
    else:
        # A literal placeholder means the schedule was fired by something other than Scheduler.
        when = str(scheduled_time) if scheduled_time and not str(scheduled_time).startswith("<") else None
        outcome = task_runner.fire_scheduled(Table(), org_id, task_id, when, remaining)
    logger().info("task run", extra={"outcome": outcome})
    return {"outcome": outcome}
