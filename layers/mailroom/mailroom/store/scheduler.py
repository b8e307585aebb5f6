"""EventBridge Scheduler one-off schedules (``at(...)``): a scheduled send's timer.

A schedule invokes its target once at its time with a fixed input, retries delivery on its own
policy, puts what it could not deliver in a dead-letter queue, and deletes itself after firing
(``ActionAfterCompletion: DELETE``): nothing accumulates. The schedule is only the timer; what to
send and whether it may still be sent lives in DynamoDB (store/scheduled_sends.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailroom.store.aws import client
from mailroom.store.errors import ObjectMissing

# A send that could not be delivered to the function for this long is not worth sending late.
MAX_EVENT_AGE_SECONDS = 6 * 3600
RETRY_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Target:
    function_arn: str
    role_arn: str
    dead_letter_arn: str | None
    group: str


def at_expression(moment: datetime, zone: str) -> str:
    """``at(yyyy-mm-ddThh:mm:ss)`` in ``zone``'s wall-clock time (Scheduler's one-off form)."""
    local = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0)
    return f"at({local.isoformat(timespec='seconds')})"


def create_one_off(name: str, moment: datetime, zone: str, payload: dict[str, Any], target: Target) -> None:
    """One CreateSchedule call. ``AlreadyExists`` if a schedule of that name exists."""
    destination: dict[str, Any] = {
        "Arn": target.function_arn,
        "RoleArn": target.role_arn,
        "Input": json.dumps(payload, separators=(",", ":")),
        "RetryPolicy": {
            "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
            "MaximumRetryAttempts": RETRY_ATTEMPTS,
        },
    }
    if target.dead_letter_arn:
        destination["DeadLetterConfig"] = {"Arn": target.dead_letter_arn}
    client("scheduler").create_schedule(
        Name=name,
        GroupName=target.group,
        ScheduleExpression=at_expression(moment, zone),
        ScheduleExpressionTimezone=zone,
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        State="ENABLED",
        Target=destination,
    )


def delete(name: str, group: str) -> bool:
    """One DeleteSchedule call; False if it was gone already (fired, or deleted before)."""
    try:
        client("scheduler").delete_schedule(Name=name, GroupName=group)
    except ObjectMissing:
        return False
    return True


# --- recurring schedules (task configs: services/task_configs.py) ---------------------------------


def put_recurring(
    name: str,
    expression: str,
    zone: str,
    payload: dict[str, Any],
    target: Target,
    *,
    enabled: bool,
    create: bool,
) -> None:
    """One CreateSchedule (``create``) or UpdateSchedule call (a full replacement, as Scheduler's
    update is) for a ``rate(...)``/``cron(...)`` schedule. Flexible time window off: a run starts
    within the minute it is due. ``<aws.scheduler.scheduled-time>`` in ``payload`` strings is filled
    in by Scheduler at each firing."""
    destination: dict[str, Any] = {
        "Arn": target.function_arn,
        "RoleArn": target.role_arn,
        "Input": json.dumps(payload, separators=(",", ":")),
        # A firing that could not reach the function within an hour is dropped: the next one comes.
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": RETRY_ATTEMPTS},
    }
    if target.dead_letter_arn:
        destination["DeadLetterConfig"] = {"Arn": target.dead_letter_arn}
    call = client("scheduler").create_schedule if create else client("scheduler").update_schedule
    call(
        Name=name,
        GroupName=target.group,
        ScheduleExpression=expression,
        ScheduleExpressionTimezone=zone,
        FlexibleTimeWindow={"Mode": "OFF"},
        State="ENABLED" if enabled else "DISABLED",
        Target=destination,
    )
