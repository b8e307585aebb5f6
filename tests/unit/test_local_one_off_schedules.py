"""The local stack fires the one-off schedules functions create (a scheduled send's timer) at their
time, once, with the target's input; deletes them after when they say so; and, after a restart
(the snapshot restored into a fresh account), fires those that came due while it was down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.aws import Clients
from local.one_off_schedules import OneOffSchedules
from local.persistence import StateStore

ACCOUNT, REGION = "123456789012", "us-east-1"
TARGET = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mailroom-local-ScheduledSendFunction"


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def at(moment: datetime, zone: str = "UTC") -> str:
    from zoneinfo import ZoneInfo

    return f"at({moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat(timespec='seconds')})"


def create(
    scheduler: Any, name: str, moment: datetime, *, zone: str = "UTC", delete_after: bool = True
) -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName="sends",
        ScheduleExpression=at(moment, zone),
        ScheduleExpressionTimezone=zone,
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE" if delete_after else "NONE",
        Target={
            "Arn": TARGET,
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
            "Input": json.dumps({"id": name}),
        },
    )


def names(scheduler: Any) -> list[str]:
    return sorted(s["Name"] for s in scheduler.list_schedules(GroupName="sends")["Schedules"])


def test_due_schedules_fire_once_with_their_input_and_are_deleted() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    fired: list[tuple[str, Any]] = []
    with mock_aws():
        scheduler = Clients(region=REGION)("scheduler")
        scheduler.create_schedule_group(Name="sends")
        create(scheduler, "soon", now + timedelta(seconds=30), zone="Europe/Paris")
        create(scheduler, "later", now + timedelta(hours=1))
        create(scheduler, "kept", now + timedelta(seconds=10), delete_after=False)
        runner = OneOffSchedules(scheduler, lambda arn, event: fired.append((arn, event)))

        assert runner.run_due(now) == [] and fired == []
        assert sorted(runner.run_due(now + timedelta(seconds=31))) == ["kept", "soon"]
        assert sorted(fired, key=str) == [(TARGET, {"id": "kept"}), (TARGET, {"id": "soon"})]
        assert names(scheduler) == ["kept", "later"]  # "soon" deleted after firing; "kept" says NONE
        assert runner.run_due(now + timedelta(seconds=40)) == []  # fired once, even when kept
        assert runner.run_due(now + timedelta(hours=2)) == ["later"]
        assert names(scheduler) == ["kept"]


def test_a_schedule_that_came_due_while_the_stack_was_down_fires_after_the_restart(tmp_path: Path) -> None:
    fired: list[Any] = []
    with mock_aws():
        clients = Clients(region=REGION)
        scheduler = clients("scheduler")
        scheduler.create_schedule_group(Name="sends")
        create(scheduler, "overnight", datetime.now(UTC) + timedelta(minutes=5))
        StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).save()

    with mock_aws():  # the restart: a fresh account, the snapshot restored
        clients = Clients(region=REGION)
        StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).restore()
        scheduler = clients("scheduler")
        runner = OneOffSchedules(scheduler, lambda arn, event: fired.append(event))
        assert runner.run_due(datetime.now(UTC) + timedelta(minutes=6)) == ["overnight"]
        assert fired == [{"id": "overnight"}] and names(scheduler) == []


def create_recurring(scheduler: Any, name: str, expression: str, *, zone: str = "UTC") -> None:
    scheduler.create_schedule(
        Name=name,
        GroupName="sends",
        ScheduleExpression=expression,
        ScheduleExpressionTimezone=zone,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": TARGET,
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
            "Input": json.dumps({"id": name, "at": "<aws.scheduler.scheduled-time>"}),
        },
    )


def test_recurring_schedules_fire_at_each_due_time_with_the_scheduled_time_filled_in() -> None:
    start = datetime(2030, 1, 1, 6, 58, 30, tzinfo=UTC)  # 07:58:30 in Paris
    fired: list[Any] = []
    with mock_aws():
        scheduler = Clients(region=REGION)("scheduler")
        scheduler.create_schedule_group(Name="sends")
        create_recurring(scheduler, "every-minute", "rate(1 minute)")
        create_recurring(scheduler, "at-eight", "cron(0 8 * * ? *)", zone="Europe/Paris")
        # A rate minute lasts 6 seconds here (as MAILROOM_LOCAL_RATE_MINUTE_SECONDS=6 makes it).
        runner = OneOffSchedules(scheduler, lambda _arn, event: fired.append(event), rate_minute_seconds=6)

        # A rate schedule starts at once (no StartDate), then every (shortened) minute.
        assert runner.run_due(start) == ["every-minute"]
        assert runner.run_due(start + timedelta(seconds=5)) == []
        assert runner.run_due(start + timedelta(seconds=6)) == ["every-minute"]
        assert fired == [
            {"id": "every-minute", "at": "2030-01-01T06:58:30Z"},
            {"id": "every-minute", "at": "2030-01-01T06:58:36Z"},
        ]
        # Missed firings coalesce into one; cron follows its zone's wall clock.
        fired.clear()
        assert sorted(runner.run_due(start + timedelta(minutes=2))) == ["at-eight", "every-minute"]
        assert {e["id"]: e["at"] for e in fired} == {
            "every-minute": "2030-01-01T06:58:42Z",
            "at-eight": "2030-01-01T07:00:00Z",
        }
        assert runner.run_due(start + timedelta(minutes=2, seconds=1)) == []

        # Disabled: no firing; changed: due again from the change.
        scheduler.update_schedule(
            Name="every-minute",
            GroupName="sends",
            ScheduleExpression="rate(2 minutes)",
            FlexibleTimeWindow={"Mode": "OFF"},
            State="DISABLED",
            Target={"Arn": TARGET, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "Input": "{}"},
        )
        assert runner.run_due(start + timedelta(minutes=5)) == []
        scheduler.delete_schedule(Name="at-eight", GroupName="sends")
        scheduler.update_schedule(
            Name="every-minute",
            GroupName="sends",
            ScheduleExpression="rate(2 minutes)",
            FlexibleTimeWindow={"Mode": "OFF"},
            State="ENABLED",
            Target={"Arn": TARGET, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "Input": "{}"},
        )
        changed = start + timedelta(minutes=6)
        assert runner.run_due(changed) == ["every-minute"]  # changed: starts again at once
        assert runner.run_due(changed + timedelta(seconds=11)) == []
        assert runner.run_due(changed + timedelta(seconds=12)) == ["every-minute"]
