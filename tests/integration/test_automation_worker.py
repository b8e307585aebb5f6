"""Automation actions under moto, through the real entry points: a message received by the inbound
function (SES event), its processing-log entry with pending actions (written per the CONTRACT), the
dispatcher invoked with the stream's INSERT, the worker with the queue's SQS batches; webhooks go to
a loopback receiver that verifies every request with the standardwebhooks library."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from local.streams import matches, parse_pattern
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store import mail as mail_store
from mailroom.store.table import Item, Table
from tests.support import automation as auto
from tests.support import inbound as sim
from tests.support.aws import template
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import sent_messages
from tests.support.webhooks import Receiver, always, fail_first, receiver, stream_event

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", CONFIGURATION_SET)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def queues(bucket: str, monkeypatch: pytest.MonkeyPatch) -> auto.AutomationAws:
    return auto.provision(monkeypatch, schedule="0,0")


@pytest.fixture
def inbox(org: NewOrganization, queues: auto.AutomationAws) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "inbox")


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def org_id(org: NewOrganization) -> str:
    return str(org.organization["id"])


def receive(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    *,
    subject: str = "Order 42",
    **kw: Any,
) -> Item:
    """A message received over SES and stored by the inbound function: its stored item."""
    raw = sim.message(
        subject, to=inbox["address"], message_id=f"<{subject.replace(' ', '-')}@example.net>", **kw
    )
    _, report = sim.receive(bucket, raw, [inbox["address"]])
    assert report["stored"] == 1, report
    (message,) = [
        m
        for m in mail_store.list_messages(table, org_id(org), inbox["id"], per_page=50, cursor=None).items
        if m["subject"] == subject
    ]
    return message


def entry_for(table: Table, org: NewOrganization, message: Item, *actions: Item, test: bool = False) -> Item:
    route = auto.new_route_id()
    entry = auto.log_entry(
        org_id(org), message, [(route, a) for a in actions], route_name="orders", test=test
    )
    table.put(entry)
    return entry


def run_all(queues: auto.AutomationAws, rounds: int = 10) -> None:
    for _ in range(rounds):
        received, _ = auto.work_round(queues)
        if not received and auto.queue_depth(queues.queue_url) == 0:
            return
    raise AssertionError("the queue did not drain")


def actrun(
    table: Table, org: NewOrganization, inbox: dict[str, Any], message: Item, entry: Item, i: int = 0
) -> Item:
    action = entry["automation"]["actions"][i]
    found = table.get(
        keys.mailbox_pk(org_id(org), inbox["id"]),
        keys.action_run_sk(str(message["id"]).partition("_")[2], action["route_id"], action["action_id"]),
    )
    assert found is not None
    return found


# ----------------------------------------------------------------------------- webhook


def test_a_webhook_action_posts_the_rendered_body_signed_with_its_own_secret(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    template_text = (
        '{"subject": {{ message.subject | tojson }}, "from": {{ message.from_address | tojson }},'
        ' "route": {{ route.name | tojson }}, "mailbox": {{ mailbox.address | tojson }},'
        ' "vip": {{ data.vips | tojson }}}'
    )
    auto.put_document(table, org_id(org), inbox["id"], "vips", ["ann@example.net"])
    action, secret = auto.put_action(
        table,
        org_id(org),
        "webhook",
        {"url": hook.url, "body_template": template_text, "data_keys": ["vips"]},
        name="notify",
    )
    hook.secret = secret
    message = receive(table, org, inbox, bucket, subject='Order "42"')
    entry = entry_for(table, org, message, action)

    result = auto.dispatch(entry)
    assert result == {"batchItemFailures": []}
    assert auto.queue_depth(queues.queue_url) == 1
    run_all(queues)

    (request,) = hook.received
    assert request.verified is True
    Webhook(secret).verify(request.body, request.headers)  # and once more, here, for the record
    assert request.json() == {
        "subject": 'Order "42"',
        "from": "ann@example.net",
        "route": "orders",
        "mailbox": inbox["address"],
        "vip": ["ann@example.net"],
    }
    (logged,), pending = auto.logged_actions(table, entry)
    assert pending == 0
    assert logged["status"] == "done" and logged["attempts"] == 1
    assert isinstance(logged["duration_ms"], int) and logged["detail"]["status_code"] == 204
    assert "error" not in logged
    run = actrun(table, org, inbox, message, entry)
    assert run["status"] == "done" and run["ttl"] > 0 and "token" not in run
    assert request.webhook_id == f"run_{run['message_ulid']}_{run['route_id']}_{run['action_id']}"


def test_without_a_template_the_default_payload_carries_the_template_context(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    action, secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url}, name="default body")
    hook.secret = secret
    message = receive(table, org, inbox, bucket, subject="Plain", body="line one\r\nline two")
    entry = entry_for(table, org, message, action, test=True)
    auto.dispatch(entry)
    run_all(queues)

    (request,) = hook.received
    assert request.verified is True
    payload = request.json()
    assert payload["type"] == "automation.action" and payload["test"] is True
    assert payload["id"] == request.webhook_id
    assert payload["message"]["id"] == message["id"]
    assert payload["message"]["subject"] == "Plain"
    assert payload["message"]["text"].startswith("line one")
    assert payload["message"]["to"] == [inbox["address"]]
    assert payload["message"]["size"] == message["size"]
    assert payload["mailbox"] == {"id": inbox["id"], "address": inbox["address"]}
    assert payload["action"] == {"id": action["id"], "name": "default body"}
    assert payload["route"]["name"] == "orders"


def test_a_duplicate_delivery_runs_the_action_once(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    action, secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
    hook.secret = secret
    message = receive(table, org, inbox, bucket)
    entry = entry_for(table, org, message, action)
    # The stream batch delivered twice (a retried batch): two messages of the same run in one batch.
    auto.dispatch(entry)
    auto.dispatch(entry)
    assert auto.queue_depth(queues.queue_url) == 2
    received, result = auto.work_round(queues)
    assert (received, result["batchItemFailures"]) == (2, [])
    assert len(hook.received) == 1
    (logged,), pending = auto.logged_actions(table, entry)
    assert (logged["status"], logged["attempts"], pending) == ("done", 1, 0)

    # One more copy long after (SQS delivers at least once): the run is done, no request is made.
    auto.dispatch(entry)
    run_all(queues)
    assert len(hook.received) == 1
    assert auto.queue_depth(queues.queue_url) == 0


def test_a_run_another_worker_holds_waits_for_its_lease(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    from mailroom import clock
    from mailroom.domain.automation_runs import pending_actions
    from mailroom.store import action_runs

    action, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
    message = receive(table, org, inbox, bucket)
    entry = entry_for(table, org, message, action)
    (pending,) = pending_actions(org_id(org), inbox["id"], str(message["id"]).partition("_")[2], entry)
    # Another worker (another delivery of the same message, in another batch) claimed it just now.
    assert action_runs.claim(table, pending, token="elsewhere", now=clock.utcnow(), lease_seconds=120)
    assert action_runs.claim(table, pending, token="again", now=clock.utcnow(), lease_seconds=120) is None
    auto.dispatch(entry)
    received, result = auto.work_round(queues)
    assert received == 1 and len(result["batchItemFailures"]) == 1  # kept until the lease runs out
    assert hook.received == []
    (logged,), pending_count = auto.logged_actions(table, entry)
    assert (logged["status"], pending_count) == ("pending", 1)


def test_a_failing_endpoint_is_retried_then_succeeds(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    with receiver(fail_first(1, 503)) as hook:
        action, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
        message = receive(table, org, inbox, bucket)
        entry = entry_for(table, org, message, action)
        auto.dispatch(entry)

        received, result = auto.work_round(queues)
        assert received == 1 and len(result["batchItemFailures"]) == 1  # kept for its retry
        (logged,), pending = auto.logged_actions(table, entry)
        assert (logged["status"], logged["attempts"], logged["error"], pending) == (
            "pending",
            1,
            "HTTP 503",
            1,
        )
        assert logged["next_attempt_at"]

        run_all(queues)
        assert [r.status for r in hook.received] == [503, 204]
        assert len({r.webhook_id for r in hook.received}) == 1  # the same webhook-id on the retry
        (logged,), pending = auto.logged_actions(table, entry)
        assert (logged["status"], logged["attempts"], pending) == ("done", 2, 0)
        assert "error" not in logged and "next_attempt_at" not in logged


def test_exhausted_retries_fail_the_action_and_park_the_message_for_a_redrive(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    outcome = {"status": 500}
    with receiver(lambda _n, _r: (outcome["status"], {})) as hook:
        action, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
        message = receive(table, org, inbox, bucket)
        entry = entry_for(table, org, message, action)
        auto.dispatch(entry)
        run_all(queues)

        assert len(hook.received) == 3  # the schedule "0,0": three attempts
        (logged,), pending = auto.logged_actions(table, entry)
        assert (logged["status"], logged["attempts"], pending) == ("failed", 3, 0)
        assert logged["error"] == "retries_exhausted: HTTP 500"
        sqs = boto3.client("sqs", region_name="us-east-1")
        (parked,) = sqs.receive_message(QueueUrl=queues.dlq_url, MessageAttributeNames=["All"])["Messages"]
        assert parked["MessageAttributes"]["reason"]["StringValue"] == "retries_exhausted"

        # The endpoint is fixed; the operator redrives the dead-letter queue: the run goes again.
        outcome["status"] = 200
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=parked["Body"])
        sqs.delete_message(QueueUrl=queues.dlq_url, ReceiptHandle=parked["ReceiptHandle"])
        run_all(queues)
        assert [r.status for r in hook.received] == [500, 500, 500, 200]
        (logged,), pending = auto.logged_actions(table, entry)
        assert (logged["status"], logged["attempts"], pending) == ("done", 4, 0)


def test_a_gone_endpoint_or_a_broken_template_fails_at_once(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    with receiver(always(410)) as hook:
        gone, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
        broken, _ = auto.put_action(
            table, org_id(org), "webhook", {"url": hook.url, "body_template": '{"a": {{ message.nope }}}'}
        )
        message = receive(table, org, inbox, bucket)
        entry = entry_for(table, org, message, gone, broken)
        auto.dispatch(entry)
        run_all(queues)

        assert len(hook.received) == 1
        (first, second), pending = auto.logged_actions(table, entry)
        assert pending == 0
        assert (first["status"], first["attempts"], first["error"]) == (
            "failed",
            1,
            "endpoint_gone: HTTP 410",
        )
        assert second["status"] == "failed" and second["detail"]["code"] == "template_variable_missing"
        assert "nope" in second["error"]
        assert auto.queue_depth(queues.dlq_url) == 0  # nothing for the operator: the action is wrong

        # Failed for good: another delivery of the same runs does not try again.
        auto.dispatch(entry)
        run_all(queues)
        assert len(hook.received) == 1
        (first, second), _ = auto.logged_actions(table, entry)
        assert (first["attempts"], second["attempts"]) == (1, 1)


def test_a_deleted_action_is_skipped_and_a_bad_message_is_reported_alone(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    kept, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
    dropped, _ = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
    message = receive(table, org, inbox, bucket)
    entry = entry_for(table, org, message, kept, dropped)
    table.delete(str(dropped["PK"]), str(dropped["SK"]))
    auto.dispatch(entry)
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody='{"v": 1, "what": "not ours"}')

    received, result = auto.work_round(queues)
    assert received == 3
    assert len(result["batchItemFailures"]) == 1  # only the foreign message stays (the redrive takes it)
    assert len(hook.received) == 1
    (first, second), pending = auto.logged_actions(table, entry)
    assert (first["status"], second["status"], second["error"], pending) == (
        "done",
        "skipped",
        "action_deleted",
        0,
    )


# ----------------------------------------------------------------------------- the dispatcher


def test_the_dispatcher_filter_passes_only_new_entries_with_pending_actions(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    mapping = template()["Resources"]["AutomationDispatchFunction"]["Properties"]["Events"]["PendingActions"]
    (pattern,) = [parse_pattern(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    action, _ = auto.put_action(table, org_id(org), "webhook", {"url": "https://hooks.example.com/x"})
    message = receive(table, org, inbox, bucket)
    pending = auto.log_entry(org_id(org), message, [("rte_1", action)])
    settled = {**pending, "automation_pending": 0}
    plain = {k: v for k, v in pending.items() if k not in ("automation", "automation_pending")}
    event_item = {"PK": "ORG#x#EVENTS", "SK": "01J", "type": "event"}
    records = stream_event([pending, settled, plain, event_item])["Records"]
    assert [matches(pattern, r) for r in records] == [True, False, False, False]
    modified = {**records[0], "eventName": "MODIFY"}
    assert not matches(pattern, modified)

    # The function itself ignores whatever has no pending async action.
    assert auto.dispatch(settled, plain) == {"batchItemFailures": []}
    assert auto.queue_depth(queues.queue_url) == 0


def test_a_dispatcher_that_cannot_reach_the_queue_fails_its_batch_for_the_stream_to_retry(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    action, _ = auto.put_action(table, org_id(org), "webhook", {"url": "https://hooks.example.com/x"})
    first = receive(table, org, inbox, bucket, subject="first")
    second = receive(table, org, inbox, bucket, subject="second")
    entries = [entry_for(table, org, m, action) for m in (first, second)]
    monkeypatch.setenv("MAILROOM_AUTOMATION_QUEUE_URL", queues.queue_url + "-gone")
    get_settings.cache_clear()
    with pytest.raises(Exception):  # noqa: B017 - the queue does not exist: the whole batch is retried
        auto.dispatch(*entries)


# ----------------------------------------------------------------------------- eventbridge


def test_an_eventbridge_action_puts_the_payload_on_an_allowed_bus(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = boto3.client("events", region_name="us-east-1")
    bus_arn = events.create_event_bus(Name="orders")["EventBusArn"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    target_url = sqs.create_queue(QueueName="bus-target")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventBusName="orders", EventPattern=json.dumps({"source": ["mailroom"]}))
    events.put_targets(Rule="all", EventBusName="orders", Targets=[{"Id": "q", "Arn": target_arn}])
    monkeypatch.setenv("MAILROOM_EVENTBRIDGE_ACCOUNTS", bus_arn.split(":")[4])
    get_settings.cache_clear()
    allowed, _ = auto.put_action(
        table, org_id(org), "eventbridge", {"event_bus_arn": bus_arn, "detail_type": "Order"}
    )
    foreign, _ = auto.put_action(
        table,
        org_id(org),
        "eventbridge",
        {"event_bus_arn": "arn:aws:events:us-east-1:999999999999:event-bus/x"},
    )
    message = receive(table, org, inbox, bucket)
    entry = entry_for(table, org, message, allowed, foreign)
    auto.dispatch(entry)
    run_all(queues)

    (put, refused), pending = auto.logged_actions(table, entry)
    assert pending == 0
    assert put["status"] == "done" and put["detail"]["event_id"]
    assert refused["status"] == "failed" and refused["error"].startswith("event_bus_not_allowed")
    (delivered,) = sqs.receive_message(QueueUrl=target_url)["Messages"]
    event = json.loads(delivered["Body"])
    assert event["detail-type"] == "Order" and event["source"] == "mailroom"
    assert event["detail"]["message"]["id"] == message["id"]


# ----------------------------------------------------------------------------- forward and reply


def test_a_forward_action_sends_the_message_on_once_and_never_in_a_loop(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    action, _ = auto.put_action(table, org_id(org), "forward", {"to": ["boss@elsewhere.example.org"]})
    message = receive(table, org, inbox, bucket, subject="Invoice")
    looped = receive(
        table, org, inbox, bucket, subject="Looped", extra_headers=[f"Delivered-To: {inbox['address']}"]
    )
    entries = [entry_for(table, org, m, action) for m in (message, looped)]
    before = len(sent_messages())
    auto.dispatch(*entries)
    auto.dispatch(*entries)  # delivered twice: forwarded once
    run_all(queues, rounds=20)

    forwards = sent_messages()[before:]
    assert len(forwards) == 1
    raw = forwards[0].raw_data
    assert f"Delivered-To: {inbox['address']}" in raw and "Subject: Invoice" in raw
    assert "Reply-To: Ann Example <ann@example.net>" in raw
    assert "boss@elsewhere.example.org" in forwards[0].destinations
    (sent,), _ = auto.logged_actions(table, entries[0])
    (loop,), _ = auto.logged_actions(table, entries[1])
    assert sent["status"] == "done" and sent["detail"]["to"] == ["boss@elsewhere.example.org"]
    assert (loop["status"], loop["error"]) == ("skipped", "loop")


def test_a_reply_action_answers_once_per_sender_and_never_lists(
    table: Table, org: NewOrganization, inbox: dict[str, Any], bucket: str, queues: auto.AutomationAws
) -> None:
    action, _ = auto.put_action(
        table,
        org_id(org),
        "reply",
        {"text": "Thanks {{ message.from_address }}, we got {{ message.subject }}.", "interval_days": 1},
    )
    first = receive(table, org, inbox, bucket, subject="Question one")
    second = receive(table, org, inbox, bucket, subject="Question two")
    listed = receive(
        table, org, inbox, bucket, subject="Digest", extra_headers=["List-Id: <news.example.net>"]
    )
    test = receive(table, org, inbox, bucket, subject="Testing")
    entries = [entry_for(table, org, m, action) for m in (first, second, listed)]
    entries.append(entry_for(table, org, test, action, test=True))
    before = len(sent_messages())
    for entry in entries:  # one by one: which message is answered first is then known
        auto.dispatch(entry)
        run_all(queues)

    replies = sent_messages()[before:]
    assert len(replies) == 1
    raw = replies[0].raw_data
    assert "Subject: Re: Question one" in raw and "Auto-Submitted: auto-replied" in raw
    assert "Thanks ann@example.net, we got Question one." in raw
    assert "In-Reply-To: <Question-one@example.net>" in raw
    outcomes = [auto.logged_actions(table, e)[0][0] for e in entries]
    assert [(o["status"], o.get("error")) for o in outcomes] == [
        ("done", None),
        ("skipped", "already_replied"),
        ("skipped", "list"),
        ("skipped", "test_message"),
    ]
    assert outcomes[3]["detail"]["subject"] == "Re: Testing"


def test_an_action_of_another_organization_is_never_run(
    table: Table,
    org: NewOrganization,
    other_org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    # A log entry naming another tenant's action id (however it came to): actions are read under the
    # entry's own organization's key, so there is nothing to run.
    foreign, _ = auto.put_action(table, org_id(other_org), "webhook", {"url": hook.url})
    message = receive(table, org, inbox, bucket)
    entry = entry_for(table, org, message, foreign)
    auto.dispatch(entry)
    run_all(queues)
    assert hook.received == []
    (logged,), pending = auto.logged_actions(table, entry)
    assert (logged["status"], logged["error"], pending) == ("skipped", "action_deleted", 0)


def test_the_aws_calls_of_a_webhook_action(
    table: Table,
    org: NewOrganization,
    inbox: dict[str, Any],
    bucket: str,
    queues: auto.AutomationAws,
    hook: Receiver,
) -> None:
    """What docs/automation-execution.md counts: per batch one BatchGetItem; per action a claim and a
    recording transaction; KMS once per action while its key is cached."""
    from tests.integration.test_send_calls import counted

    action, hook.secret = auto.put_action(table, org_id(org), "webhook", {"url": hook.url})
    entries = [
        entry_for(table, org, receive(table, org, inbox, bucket, subject=f"m{i}"), action) for i in range(2)
    ]
    auto.dispatch(entries[0])
    with counted() as cold:
        auto.work_round(queues)
    auto.dispatch(entries[1])
    with counted() as warm:
        auto.work_round(queues)
    assert all(r.verified for r in hook.received) and len(hook.received) == 2
    assert cold == {
        "dynamodb.BatchGetItem": 1,
        "dynamodb.UpdateItem": 1,
        "kms.Decrypt": 1,
        "dynamodb.TransactWriteItems": 1,
    }
    assert warm == {"dynamodb.BatchGetItem": 1, "dynamodb.UpdateItem": 1, "dynamodb.TransactWriteItems": 1}
