"""Scheduled send through ComposeFunction's handler and the scheduled-send function's (invoked with
the input its one-off schedule carries) under moto: the schedule as EventBridge Scheduler gets it,
the send at the firing and only then, once; cancels, races, and failures recorded with a reason."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys, mailboxes
from mailroom.store import events as event_store
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
    post,
)
from tests.support.sending import message_token, send, sent_messages

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"
GROUP = "mailroom-test-scheduled-send"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:mailroom-test-ScheduledSendFunction"
ROLE_ARN = "arn:aws:iam::123456789012:role/mailroom-test-ScheduledSendSchedulerRole"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:mailroom-test-ScheduledSendDeadLetterQueue"


@dataclass
class World:
    org: NewOrganization
    table: Table
    alice: dict[str, Any]
    token: str

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    for name, value in {
        "MAILROOM_MAIL_BUCKET": bucket,
        "MAILROOM_SES_CONFIGURATION_SET": CONFIGURATION_SET,
        "MAILROOM_SCHEDULED_SEND_FUNCTION_ARN": FUNCTION_ARN,
        "MAILROOM_SCHEDULER_ROLE_ARN": ROLE_ARN,
        "MAILROOM_SCHEDULED_SEND_DLQ_ARN": DLQ_ARN,
        "MAILROOM_SCHEDULE_GROUP": GROUP,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws.client("scheduler").create_schedule_group(Name=GROUP)
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice", name="Alice Example")
    new_mailbox(org, "bob", name="Bob")
    yield World(org=org, table=table, alice=alice, token=message_token(org, alice["id"]))
    get_settings.cache_clear()


def ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def schedule(world: World, body: dict[str, Any], status: int = 201) -> Any:
    result = post("compose", world.token, "/api/v1/messages/scheduled", body)
    if status != 201:
        assert result.status == status, result.body
        return result.json()["error"]
    return ok(result, 201)


def schedules() -> list[dict[str, Any]]:
    scheduler = aws.client("scheduler")
    listed = scheduler.list_schedules(GroupName=GROUP)["Schedules"]
    return [scheduler.get_schedule(GroupName=GROUP, Name=s["Name"]) for s in listed]


def fire(world: World, scheduled_id: str, mailbox_id: str | None = None) -> str:
    """What the one-off schedule does at its time: invoke the function with its Input."""
    (created,) = [s for s in schedules() if s["Name"].endswith(scheduled_id)] or [None]
    payload = {
        "org_id": world.org_id,
        "mailbox_id": mailbox_id or world.alice["id"],
        "scheduled_id": scheduled_id,
    }
    if created is not None:
        import json

        assert json.loads(created["Target"]["Input"]) == payload
    result = function_module("scheduled_send").handler(payload, LambdaContext(function_name="scheduled_send"))
    return str(result["outcome"])


def listed(world: World, **query: Any) -> list[dict[str, Any]]:
    return ok(get("compose", world.token, "/api/v1/messages/scheduled", **query))  # type: ignore[no-any-return]


def sent_events(world: World) -> list[dict[str, Any]]:
    page = event_store.list_page(world.table, world.org_id, per_page=100)
    return [e for e in page.items if e.get("event_type") == "message.sent"]


def test_a_scheduled_send_is_a_one_off_schedule_and_goes_out_once_when_it_fires(world: World) -> None:
    send_at = (datetime.now(UTC) + timedelta(hours=2)).astimezone().replace(microsecond=0)
    created = schedule(
        world,
        {
            "to": "bob@example.com",
            "subject": "Later",
            "text": "See you",
            "send_at": send_at.isoformat(),
            "time_zone": "Europe/Paris",
        },
    )
    assert created["status"] == "pending" and created["to"] == ["bob@example.com"]
    assert created["time_zone"] == "Europe/Paris" and created["subject"] == "Later"
    (made,) = schedules()
    paris = send_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).replace(tzinfo=None)
    assert made["ScheduleExpression"] == f"at({paris.isoformat(timespec='seconds')})"
    assert made["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert made["ActionAfterCompletion"] == "DELETE" and made["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert made["Target"]["Arn"] == FUNCTION_ARN and made["Target"]["RoleArn"] == ROLE_ARN
    assert made["Target"]["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert made["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    before = len(sent_messages())
    assert sent_events(world) == [] and len(sent_messages()) == before  # nothing at scheduling

    assert fire(world, created["id"]) == "sent"
    assert len(sent_messages()) == before + 1
    assert fire(world, created["id"]) == "skipped"  # a schedule delivered twice sends once
    assert len(sent_messages()) == before + 1
    (done,) = listed(world)
    assert done["status"] == "sent" and done["sent_at"] and done["sent_message_id"]
    sent_copy = ok(get("messages", world.token, f"/api/v1/messages/{done['sent_message_id']}"))
    assert sent_copy["subject"] == "Later" and sent_copy["folder"] == "Sent"
    assert len(sent_events(world)) == 1
    assert listed(world, status="pending") == [] and [s["id"] for s in listed(world, status="sent")] == [
        created["id"]
    ]


def test_what_a_send_refuses_is_refused_at_scheduling(world: World) -> None:
    body = {"to": "bob@example.com", "subject": "x", "text": "y"}
    assert schedule(world, {**body, "send_at": ahead(seconds=20)}, 422)["code"] == "validation_error"
    assert schedule(world, {**body, "send_at": ahead(days=400)}, 422)["code"] == "validation_error"
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert schedule(world, {**body, "send_at": naive}, 422)["code"] == "validation_error"
    unknown_zone = schedule(world, {**body, "send_at": ahead(hours=1), "time_zone": "Mars/Olympus"}, 422)
    assert unknown_zone["code"] == "validation_error"
    no_recipient = {"subject": "x", "text": "y", "send_at": ahead(hours=1)}
    assert schedule(world, no_recipient, 422)["code"] in {"validation_error", "no_recipients"}
    template = ok(
        post(
            "compose",
            world.token,
            "/api/v1/messages/templates",
            {"name": "hello", "subject": "Hi {{ name }}", "text": "Dear {{ name }}"},
        ),
        201,
    )
    missing = {
        "to": "bob@example.com",
        "template_id": template["id"],
        "variables": {},
        "send_at": ahead(hours=1),
    }
    assert schedule(world, missing, 422)["code"] == "template_variable_missing"
    mixed = {"draft_uid": "msg_01HZZZZZZZZZZZZZZZZZZZZZZZ", "subject": "x", "send_at": ahead(hours=1)}
    assert schedule(world, mixed, 422)["code"] == "validation_error"
    assert schedules() == [] and listed(world) == []


def test_a_cancelled_send_never_goes_out_and_a_fired_one_cannot_be_cancelled(world: World) -> None:
    body = {"to": "bob@example.com", "subject": "Maybe", "text": "t", "send_at": ahead(hours=1)}
    created = schedule(world, body)
    cancelled = ok(delete("compose", world.token, f"/api/v1/messages/scheduled/{created['id']}"))
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert schedules() == []  # the timer is gone too
    before = len(sent_messages())
    assert fire(world, created["id"]) == "skipped" and len(sent_messages()) == before
    again = delete("compose", world.token, f"/api/v1/messages/scheduled/{created['id']}")
    assert again.status == 409 and again.error_code == "scheduled_send_not_pending"

    fired = schedule(world, {**body, "subject": "Surely"})
    assert fire(world, fired["id"]) == "sent"
    late = delete("compose", world.token, f"/api/v1/messages/scheduled/{fired['id']}")
    assert late.status == 409 and late.error_code == "scheduled_send_not_pending"
    unknown = delete("compose", world.token, "/api/v1/messages/scheduled/sch_01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert unknown.status == 404


def race(world: World, scheduled_id: str) -> dict[str, Any]:
    """Two firings of the schedule (delivered twice) and a cancel, released at once."""
    outcomes: dict[str, Any] = {}
    barrier = threading.Barrier(3)

    def firing(name: str) -> None:
        barrier.wait()
        outcomes[name] = fire(world, scheduled_id)

    def cancelling() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs on the thread's loop
        barrier.wait()
        outcomes["cancel"] = delete(
            "compose", world.token, f"/api/v1/messages/scheduled/{scheduled_id}"
        ).status

    threads = [
        threading.Thread(target=firing, args=("a",)),
        threading.Thread(target=firing, args=("b",)),
        threading.Thread(target=cancelling),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_cancel_racing_the_firing_either_wins_or_loses_cleanly(world: World) -> None:
    before = len(sent_messages())
    for round_number in range(4):
        body = {
            "to": "bob@example.com",
            "subject": f"Race {round_number}",
            "text": "t",
            "send_at": ahead(hours=1),
        }
        outcomes = race(world, schedule(world, body)["id"])
        fired = [outcomes["a"], outcomes["b"]].count("sent")
        assert fired + (outcomes["cancel"] == 200) == 1, outcomes
        assert outcomes["cancel"] in (200, 409), outcomes
        final = listed(world)[0]
        assert final["status"] == ("sent" if fired else "cancelled")
    sends = len(sent_messages()) - before
    assert sends == sum(1 for s in listed(world) if s["status"] == "sent") <= 4


def test_a_mailbox_paused_or_deleted_before_the_time_fails_the_send_with_its_reason(world: World) -> None:
    body = {"to": "bob@example.com", "subject": "Paused", "text": "t", "send_at": ahead(hours=1)}
    created = schedule(world, body)
    Update(keys.org_pk(world.org_id), keys.mailbox_sk(world.alice["id"])).set(paused=True).apply(world.table)
    before = len(sent_messages())
    assert fire(world, created["id"]) == "failed" and len(sent_messages()) == before
    Update(keys.org_pk(world.org_id), keys.mailbox_sk(world.alice["id"])).remove("paused").apply(world.table)
    (failed,) = listed(world)
    assert failed["status"] == "failed" and failed["failure"]["code"] == "mailbox_paused"
    assert failed["subject"] == "Paused"  # the body stays on record

    carol = new_mailbox(world.org, "carol")
    carol_token = message_token(world.org, carol["id"])
    gone = ok(post("compose", carol_token, "/api/v1/messages/scheduled", body), 201)
    world.table.delete(keys.org_pk(world.org_id), keys.mailbox_sk(carol["id"]))
    assert mailboxes.get(world.table, world.org_id, carol["id"]) is None
    assert fire(world, gone["id"], mailbox_id=carol["id"]) == "failed"
    from mailroom.store import scheduled_sends

    item = scheduled_sends.get(world.table, world.org_id, carol["id"], gone["id"])
    assert item is not None and item["failure"]["code"] == "mailbox_deleted"
    assert len(sent_messages()) == before


def test_a_scheduled_draft_is_sent_as_it_is_then_and_leaves_drafts(world: World) -> None:
    identity = ok(
        post(
            "compose",
            world.token,
            "/api/v1/messages/identities",
            {"address": world.alice["address"], "name": "Alice", "signature_text": "Alice of Example"},
        ),
        201,
    )
    draft = ok(
        post(
            "compose",
            world.token,
            "/api/v1/messages/drafts",
            {"to": "bob@example.com", "subject": "Draft", "text": "Body", "identity_id": identity["id"]},
        ),
        201,
    )
    created = schedule(world, {"draft_uid": draft["id"], "send_at": ahead(minutes=5)})
    assert created["draft_uid"] == draft["id"] and created["subject"] == "Draft"
    assert fire(world, created["id"]) == "sent"
    raw = sent_messages()[-1].raw_data
    text = raw if isinstance(raw, str) else raw.decode()
    assert text.count("Alice of Example") == 1  # the signature once (it is in the draft already)
    drafts = get("messages", world.token, "/api/v1/messages", folder="drafts").json()["data"]
    assert drafts == []
    again = send(world.token, {"draft_uid": draft["id"]})
    assert again.status == 409 and again.error_code == "draft_already_sent"


def test_a_failure_that_is_not_the_messages_fault_is_retried_then_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SES throttling at the time: the claim is given back and the invocation fails, so Lambda's
    retry fires it again; it goes out once SES takes it, and on the last attempt it is recorded."""
    from botocore.exceptions import ClientError

    from mailroom.store import ses_outbound
    from mailroom.store.errors import translate

    real_send = ses_outbound.send_raw
    throttled = translate(
        ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "SendEmail"), service="sesv2"
    )
    failures = [throttled]

    def flaky(*args: Any, **kwargs: Any) -> str:
        if failures:
            raise failures.pop()
        return real_send(*args, **kwargs)

    monkeypatch.setattr(ses_outbound, "send_raw", flaky)
    body = {"to": "bob@example.com", "subject": "Retried", "text": "t", "send_at": ahead(hours=1)}
    created = schedule(world, body)
    with pytest.raises(Exception, match="throttl"):
        fire(world, created["id"])
    assert listed(world)[0]["status"] == "pending"  # given back for the retry
    assert fire(world, created["id"]) == "sent"

    failures.extend([throttled] * 3)
    doomed = schedule(world, {**body, "subject": "Doomed"})
    for _ in range(2):
        with pytest.raises(Exception, match="throttl"):
            fire(world, doomed["id"])
    assert fire(world, doomed["id"]) == "failed"  # the third and last attempt
    (failed,) = [s for s in listed(world) if s["id"] == doomed["id"]]
    assert failed["failure"]["code"] == "send_throttled"


def test_a_scheduled_follow_up_threads_with_what_it_follows(world: World) -> None:
    first = ok(send(world.token, {"to": "bob@example.com", "subject": "Plan", "text": "first"}), 201)
    body = {
        "to": "bob@example.com",
        "subject": "Re: Plan",
        "text": "following up",
        "in_reply_to": first["rfc_message_id"],
        "send_at": ahead(days=2),
    }
    created = schedule(world, body)
    assert fire(world, created["id"]) == "sent"
    (done,) = listed(world)
    follow_up = ok(get("messages", world.token, f"/api/v1/messages/{done['sent_message_id']}"))
    assert follow_up["thread_id"] == first["thread_id"] and follow_up["folder"] == "Sent"
