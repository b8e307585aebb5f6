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
