"""Task configs through TaskConfigsFunction's handler and the task runner's (invoked with what its
schedule or action/execute hands Lambda) under moto: the schedule as EventBridge Scheduler gets it,
created, replaced, disabled and deleted with the task; validation; the 100-task limit on the HEAD
item (its other counters untouched); runs (webhook digest verified with standardwebhooks, move,
label, delete, eventbridge), the lease against overlapping runs and a firing delivered twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import boto3
import pytest

from local import stepfunctions
from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys, mailboxes
from mailroom.store import mail as mail_store
from mailroom.store.table import Table
from mailroom.store.txn import Update
from tests.support.lambda_api import LambdaContext, function_module
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    delete,
    get,
    new_mailbox,
    ok,
    patch,
    post,
    put,
)
from tests.support.task_actions import Action, put_action
from tests.support.webhooks import provision_webhook_aws, receiver

GROUP = "mailroom-test-tasks"
RUNNER = "mailroom-test-TaskRunnerFunction"
RUNNER_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{RUNNER}:live"
ROLE_ARN = "arn:aws:iam::123456789012:role/mailroom-test-TaskSchedulerRole"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:mailroom-test-TaskRunnerDeadLetterQueue"
TABLE = "mailroom-test-Table"


@dataclass
class Invocations:
    """Lambda's asynchronous invocations of the runner (local/stepfunctions.py routes moto's Invoke)."""

    events: list[Any] = field(default_factory=list)

    def invoke(self, ref: str, event: Any) -> Any:
        raise AssertionError("the runner is only invoked asynchronously")

    def submit(self, ref: str, event: Any) -> None:
        assert ref == RUNNER
        self.events.append(event)

    def spec(self, ref: str) -> Any:
        if ref != RUNNER:
            raise KeyError(ref)
        return ref


@dataclass
class World:
    org: NewOrganization
    table: Table
    mailbox: dict[str, Any]
    key_alias: str
    invocations: Invocations

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def action(self, action_type: str, **parameters: Any) -> Action:
        return put_action(
            aws.dynamodb(),
            TABLE,
            self.org_id,
            action_type,
            parameters,
            kms=boto3.client("kms", region_name="us-east-1"),
            key_id=self.key_alias,
        )


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    webhook_aws = provision_webhook_aws(monkeypatch)
    for name, value in {
        "MAILROOM_MAIL_BUCKET": bucket,
        "MAILROOM_TASK_RUNNER_FUNCTION_ARN": RUNNER_ARN,
        "MAILROOM_TASK_SCHEDULER_ROLE_ARN": ROLE_ARN,
        "MAILROOM_TASK_RUNNER_DLQ_ARN": DLQ_ARN,
        "MAILROOM_TASK_SCHEDULE_GROUP": GROUP,
        "MAILROOM_EVENTBRIDGE_ACCOUNTS": "123456789012",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws.client("scheduler").create_schedule_group(Name=GROUP)
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="runner", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.create_function(
        FunctionName=RUNNER, Runtime="python3.13", Role=role, Handler="app.handler", Code={"ZipFile": b"PK"}
    )
    lam.create_alias(
        FunctionName=RUNNER, Name="live", FunctionVersion=lam.publish_version(FunctionName=RUNNER)["Version"]
    )
    invocations = Invocations()
    stepfunctions.install(invocations)
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "alice")
    yield World(org, table, mailbox, webhook_aws.key_alias, invocations)
    stepfunctions.uninstall()
    get_settings.cache_clear()


def mail(
    world: World, subject: str, *, days_ago: float = 0, sender: str = "ann@example.net", seen: bool = False
) -> dict[str, Any]:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "alice@example.com", subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@example.net>"
    message.set_content(f"{subject}\n")
    raw = message.as_bytes()
    box = mailboxes.get(world.table, world.org_id, world.mailbox["id"])
    assert box is not None
    outcome = deliver(
        world.table,
        Incoming(
            org_id=world.org_id,
            mailbox=box,
            raw=raw,
            parsed=parse(raw),
            folder_key="inbox",
            direction="inbound",
            received_at=datetime.now(UTC) - timedelta(days=days_ago),
            source_id=f"src-{subject}",
            seen=seen,
        ),
    )
    return outcome.message


def create(world: World, status: int = 201, **body: Any) -> Any:
    result = post("task_configs", world.org.admin_token, "/api/v1/task-configs", body)
    if status != 201:
        assert result.status == status, result.body[:2000]
        return result.json()["error"]
    return ok(result, 201)


def task_body(world: World, action: Action, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Digest",
        "mailbox_id": world.mailbox["id"],
        "schedule": "cron(0 8 * * ? *)",
        "timezone": "Europe/Paris",
        "action_id": action.id,
        **extra,
    }


def schedule_of(task_id: str) -> dict[str, Any]:
    return dict(aws.client("scheduler").get_schedule(GroupName=GROUP, Name=f"mailroom-task-{task_id}"))


def fire(world: World, task_id: str, scheduled_time: str = "2026-12-07T08:00:00Z") -> str:
    """What the task's schedule does at a firing: invoke the runner with its Input, time filled in."""
    text = schedule_of(task_id)["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", scheduled_time)
    result = function_module("task_runner").handler(
        json.loads(text), LambdaContext(function_name="task_runner")
    )
    return str(result["outcome"])


def execute(world: World, task_id: str) -> dict[str, Any]:
    """action/execute, then what Lambda does with the queued invocation."""
    run = ok(
        post("task_configs", world.org.admin_token, f"/api/v1/task-configs/{task_id}/action/execute"), 202
    )
    assert run["status"] == "queued" and run["trigger"] == "manual"
    event = world.invocations.events.pop()
    assert event == {"org_id": world.org_id, "task_id": task_id, "run_id": run["id"]}
    function_module("task_runner").handler(event, LambdaContext(function_name="task_runner"))
    return ok(get("task_configs", world.org.admin_token, f"/api/v1/task-configs/{task_id}/runs/{run['id']}"))  # type: ignore[no-any-return]


def runs(world: World, task_id: str) -> list[dict[str, Any]]:
    return ok(get("task_configs", world.org.admin_token, f"/api/v1/task-configs/{task_id}/runs"))  # type: ignore[no-any-return]


# --- the task and its schedule ------------------------------------------------------------------------


def test_a_task_is_created_changed_disabled_and_deleted_with_its_schedule(world: World) -> None:
    action = world.action("label", labels=["digest"])
    task = create(world, **task_body(world, action, query={"unread": True, "limit": 50}))
    assert task["id"].startswith("tsk_") and task["action_type"] == "label" and task["last_run"] is None
    assert task["query"] == {
        "folder": None,
        "unread": True,
        "older_than_days": None,
        "from_contains": None,
        "subject_contains": None,
        "limit": 50,
    }
    schedule = schedule_of(task["id"])
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        "cron(0 8 * * ? *)",
        "Europe/Paris",
    )
    assert schedule["State"] == "ENABLED" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == RUNNER_ARN and schedule["Target"]["RoleArn"] == ROLE_ARN
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert json.loads(schedule["Target"]["Input"]) == {
        "org_id": world.org_id,
        "task_id": task["id"],
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }

    token, path = world.org.admin_token, f"/api/v1/task-configs/{task['id']}"
    changed = ok(patch("task_configs", token, path, {"schedule": "rate(15 minutes)", "enabled": False}))
    assert (changed["schedule"], changed["enabled"], changed["query"]["limit"]) == (
        "rate(15 minutes)",
        False,
        50,
    )
    schedule = schedule_of(task["id"])
    assert (schedule["ScheduleExpression"], schedule["State"]) == ("rate(15 minutes)", "DISABLED")
    replaced = ok(put("task_configs", token, path, task_body(world, action, name="Renamed", timezone="UTC")))
    assert (replaced["name"], replaced["enabled"], replaced["query"]["limit"]) == ("Renamed", True, 100)
    assert schedule_of(task["id"])["State"] == "ENABLED"
    assert ok(get("task_configs", token, path))["name"] == "Renamed"
    listed = get("task_configs", token, "/api/v1/task-configs")
    assert [t["id"] for t in ok(listed)] == [task["id"]] and listed.json()["meta"]["total"] == 1

    assert delete("task_configs", token, path).status == 204
    assert get("task_configs", token, path).status == 404
    assert aws.client("scheduler").list_schedules(GroupName=GROUP)["Schedules"] == []
    assert get("task_configs", token, "/api/v1/task-configs").json()["meta"]["total"] == 0


INVALID: list[tuple[dict[str, Any], str, str | None]] = [
    ({"schedule": "rate(0 minutes)"}, "invalid_schedule", "schedule"),
    ({"schedule": "rate(1 minutes)"}, "invalid_schedule", "schedule"),
    ({"schedule": "cron(0 8 * * *)"}, "invalid_schedule", "schedule"),
    ({"schedule": "cron(0 8 * * MON *)"}, "invalid_schedule", "schedule"),
    ({"schedule": "cron(61 8 * * ? *)"}, "invalid_schedule", "schedule"),
    ({"schedule": "at(2027-01-01T00:00:00)"}, "invalid_schedule", "schedule"),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone", "timezone"),
    ({"timezone": "../etc/passwd"}, "invalid_timezone", "timezone"),
    ({"mailbox_id": "mbx_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "unknown_mailbox", "mailbox_id"),
    ({"action_id": "act_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "unknown_action", "action_id"),
    ({"query": {"folder": "Nowhere"}}, "unknown_folder", "query.folder"),
    ({"query": {"limit": 1001}}, "validation_error", None),
    ({"query": {"older_than_days": -1}}, "validation_error", None),
]


def test_what_a_task_cannot_be_is_a_422_naming_the_field(world: World) -> None:
    action = world.action("delete")
    for change, code, named in INVALID:
        error = create(world, 422, **{**task_body(world, action), **change})
        assert error["code"] == code, (change, error)
        if named:
            assert error["fields"][0]["field"] == named, (change, error)
    assert aws.client("scheduler").list_schedules(GroupName=GROUP)["Schedules"] == []


def test_only_webhook_eventbridge_move_label_and_delete_actions_run_as_tasks(world: World) -> None:
    forward = world.action("forward", to=["bob@example.net"])
    assert create(world, 422, **task_body(world, forward))["code"] == "unsupported_action"
    move = world.action("move", folder="Nowhere")
    assert create(world, 422, **task_body(world, move))["code"] == "unknown_folder"
    for schedule in (
        "rate(1 minute)",
        "rate(2 hours)",
        "cron(0/15 9-17 ? * MON-FRI *)",
        "cron(0 10 L * ? *)",
        "cron(0 9 ? * 2#1 *)",
    ):
        create(world, **task_body(world, world.action("delete"), schedule=schedule))


def test_the_limit_is_a_conditional_add_on_task_count_alone(world: World) -> None:
    head_key = (keys.automation_pk(world.org_id), keys.AUTOMATION_HEAD_SK)
    Update(*head_key, upsert=True).set(version=7, rule_count=3).add(task_count=99).apply(world.table)
    action = world.action("delete")
    last = create(world, **task_body(world, action))
    assert create(world, 422, **task_body(world, action))["code"] == "task_limit_reached"
    head = world.table.get(*head_key)
    assert head is not None and (head["task_count"], head["rule_count"], head["version"]) == (100, 3, 7)
    assert len(aws.client("scheduler").list_schedules(GroupName=GROUP)["Schedules"]) == 1
    assert delete("task_configs", world.org.admin_token, f"/api/v1/task-configs/{last['id']}").status == 204
    head = world.table.get(*head_key)
    assert head is not None and (head["task_count"], head["rule_count"], head["version"]) == (99, 3, 7)


def test_another_organization_sees_no_task(world: World, other_org: NewOrganization) -> None:
    task = create(world, **task_body(world, world.action("delete")))
    for method, path in (
        ("GET", f"/api/v1/task-configs/{task['id']}"),
        ("GET", f"/api/v1/task-configs/{task['id']}/runs"),
        ("POST", f"/api/v1/task-configs/{task['id']}/action/execute"),
    ):
        call = get if method == "GET" else post
        assert call("task_configs", other_org.admin_token, path).status == 404
    assert ok(get("task_configs", other_org.admin_token, "/api/v1/task-configs")) == []
    # Its actions and mailboxes are not the other organization's to use either.
    other = dict(task_body(world, world.action("delete")))
    assert post("task_configs", other_org.admin_token, "/api/v1/task-configs", other).json()["error"][
        "code"
    ] in (
        "unknown_mailbox",
        "unknown_action",
    )


# --- runs ---------------------------------------------------------------------------------------------------


def test_a_webhook_task_posts_one_signed_digest_of_the_matching_messages(world: World) -> None:
    mail(world, "Unread one")
    mail(world, "Unread two", sender="bob@example.org")
    mail(world, "Read already", seen=True)
    with receiver() as hook:
        action = world.action("webhook", url=hook.url)
        hook.secret = action.secret
        task = create(world, **task_body(world, action, query={"unread": True}))
        run = execute(world, task["id"])
        assert run["status"] == "succeeded", run
        assert run["counts"] == {"matched": 2, "done": 2, "failed": 0} and run["duration_ms"] >= 0
        (received,) = hook.received
    assert received.verified is True
    body = received.json()
    assert body["type"] == "task.digest" and body["task"] == {"id": task["id"], "name": "Digest"}
    assert body["run_id"] == run["id"] and body["count"] == 2
    assert body["mailbox"] == {"id": world.mailbox["id"], "address": "alice@example.com"}
    assert [m["subject"] for m in body["messages"]] == ["Unread two", "Unread one"]
    assert (
        ok(get("task_configs", world.org.admin_token, f"/api/v1/task-configs/{task['id']}"))["last_run"]["id"]
        == run["id"]
    )


def test_a_webhook_body_template_renders_the_digest_and_a_refusal_fails_the_run(world: World) -> None:
    mail(world, "Invoice 7")
    with receiver() as hook:
        template = "{\"text\": \"{{ count }} new: {{ messages | map(attribute='subject') | join(', ') }}\"}"
        action = world.action("webhook", url=hook.url, body_template=template)
        hook.secret = action.secret
        task = create(world, **task_body(world, action))
        assert execute(world, task["id"])["status"] == "succeeded"
        assert hook.received[0].json() == {"text": "1 new: Invoice 7"}
    with receiver(lambda _n, _r: (410, {})) as gone:
        action = world.action("webhook", url=gone.url)
        task = create(world, **task_body(world, action))
        run = execute(world, task["id"])
        assert run["status"] == "failed" and run["counts"] == {"matched": 1, "done": 0, "failed": 1}
        assert "HTTP 410" in run["error"] and len(gone.received) == 1  # a 4xx is not retried


def test_move_label_and_delete_act_on_each_message_the_query_names(world: World, table: Table) -> None:
    old = [mail(world, f"Old {i}", days_ago=40) for i in range(3)]
    new = mail(world, "New", days_ago=1)
    from_bob = mail(world, "From Bob", days_ago=45, sender="bob@example.org")
    folder = ok(post("messages", _token(world), "/api/v1/messages/folders", {"path": "Receipts"}), 201)
    move = world.action("move", folder="Receipts")
    archive = create(world, **task_body(world, move, query={"older_than_days": 30, "from_contains": "ann@"}))
    run = execute(world, archive["id"])
    assert run["status"] == "succeeded" and run["counts"] == {"matched": 3, "done": 3, "failed": 0}

    def folder_of(message: dict[str, Any]) -> str:
        stored = mail_store.get_message(table, world.org_id, world.mailbox["id"], message["id"])
        assert stored is not None
        return str(stored["folder_key"])

    assert {folder_of(m) for m in old} == {folder["key"]} and folder_of(new) == folder_of(from_bob) == "inbox"
    # Already there: not matched again.
    assert execute(world, archive["id"])["counts"] == {"matched": 0, "done": 0, "failed": 0}

    label = create(
        world, **task_body(world, world.action("label", labels=["bob"]), query={"subject_contains": "bob"})
    )
    assert execute(world, label["id"])["counts"]["done"] == 1
    stored = mail_store.get_message(table, world.org_id, world.mailbox["id"], from_bob["id"])
    assert stored is not None and stored["labels"] == ["bob"]

    trash = create(world, **task_body(world, world.action("delete"), query={"folder": "INBOX", "limit": 1}))
    assert execute(world, trash["id"])["counts"] == {"matched": 1, "done": 1, "failed": 0}
    assert folder_of(new) == "trash"  # newest first, limit 1


def test_an_eventbridge_task_puts_one_event_per_ten_messages(world: World) -> None:
    for i in range(12):
        mail(world, f"Event {i}")
    events = boto3.client("events", region_name="us-east-1")
    bus = events.create_event_bus(Name="tasks")["EventBusArn"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="bus-copy")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventBusName="tasks", EventPattern=json.dumps({"source": ["mailroom"]}))
    events.put_targets(Rule="all", EventBusName="tasks", Targets=[{"Id": "q", "Arn": queue_arn}])
    task = create(
        world, **task_body(world, world.action("eventbridge", event_bus_arn=bus, detail_type="Digest"))
    )
    run = execute(world, task["id"])
    assert run["status"] == "succeeded" and run["counts"] == {"matched": 12, "done": 12, "failed": 0}
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    details = sorted((json.loads(m["Body"]) for m in received), key=lambda e: -e["detail"]["count"])
    assert [(e["detail-type"], e["detail"]["count"]) for e in details] == [("Digest", 10), ("Digest", 2)]


def test_overlapping_runs_skip_and_a_firing_delivered_twice_runs_once(world: World) -> None:
    mail(world, "Only")
    task = create(world, **task_body(world, world.action("label", labels=["seen-by-task"])))
    assert fire(world, task["id"]) == "succeeded"
    assert fire(world, task["id"]) == "duplicate"  # the same firing again: no second run
    assert [r["trigger"] for r in runs(world, task["id"])] == ["schedule"]

    # A run holds the lease (as one still running would): the next firing records a skipped run.
    pk, sk = keys.automation_pk(world.org_id), keys.automation_task_sk(task["id"])
    far = int(datetime.now(UTC).timestamp()) + 600
    Update(pk, sk).set(lease_run="run_01ARZ3NDEKTSV4RRFFQ69G5FAV", lease_until=far).apply(world.table)
    assert fire(world, task["id"], "2026-12-07T08:15:00Z") == "skipped"
    skipped = execute(world, task["id"])
    assert skipped["status"] == "skipped" and "in progress" in skipped["error"]
    assert [r["status"] for r in runs(world, task["id"])] == ["skipped", "skipped", "succeeded"]

    # Two firings at once, each a real run: exactly one takes the lease.
    Update(pk, sk).remove("lease_run", "lease_until").apply(world.table)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda t=t: outcomes.append(fire(world, task["id"], t)))
        for t in ("2026-12-07T09:00:00Z", "2026-12-07T09:00:01Z")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["skipped", "succeeded"], ["succeeded", "succeeded"])
    # (Both succeed only if the first finished before the second took the lease.)


def test_a_run_whose_runner_died_is_closed_by_the_run_that_takes_its_expired_lease(world: World) -> None:
    task = create(world, **task_body(world, world.action("label", labels=["x"])))
    assert fire(world, task["id"], "2026-12-07T08:00:00Z") == "succeeded"
    (first,) = runs(world, task["id"])
    # As if that run had died mid-way: still running, its lease expired.
    pk, sk = keys.automation_pk(world.org_id), keys.automation_task_sk(task["id"])
    Update(pk, sk).set(lease_run=first["id"], lease_until=1).apply(world.table)
    Update(keys.task_runs_pk(world.org_id, task["id"]), first["id"].removeprefix("run_")).set(
        status="running", finished_at=None
    ).apply(world.table)
    assert fire(world, task["id"], "2026-12-07T08:01:00Z") == "succeeded"
    newer, dead = runs(world, task["id"])
    assert newer["status"] == "succeeded" and dead["id"] == first["id"]
    assert dead["status"] == "failed" and "runner stopped" in dead["error"] and dead["finished_at"]


def test_a_schedule_whose_task_is_gone_deletes_itself(world: World) -> None:
    task = create(world, **task_body(world, world.action("delete")))
    world.table.delete(keys.automation_pk(world.org_id), keys.automation_task_sk(task["id"]))
    assert fire(world, task["id"]) == "gone"
    assert aws.client("scheduler").list_schedules(GroupName=GROUP)["Schedules"] == []


def _token(world: World) -> str:
    from tests.support.sending import message_token

    return message_token(world.org, world.mailbox["id"])
