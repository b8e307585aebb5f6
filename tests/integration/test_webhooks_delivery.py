"""The webhook pipeline under moto: the fan-out function invoked with DynamoDB stream events, the
delivery function with SQS events (as the event source mappings would), posting to a loopback
receiver that verifies every delivery with the standardwebhooks library."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from local.pollers import succeeded
from mailroom import clock
from mailroom.services import webhook_deliveries
from mailroom.services import webhooks as service
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import events, webhook_queue, webhooks
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store.table import Item, Table
from tests.support.lambda_api import LambdaContext, call, function_module
from tests.support.webhooks import (
    Receiver,
    WebhookAws,
    always,
    fail_first,
    provision_webhook_aws,
    receiver,
    sqs_event,
    stream_event,
)

_keys = itertools.count()
_sequence = itertools.count(1000)


@pytest.fixture
def wh_aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> WebhookAws:
    return provision_webhook_aws(monkeypatch, schedule="0,0,0")


@pytest.fixture
def hook() -> Any:
    with receiver() as running:
        yield running


def schedule(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MAILROOM_WEBHOOK_RETRY_SCHEDULE", value)
    get_settings.cache_clear()


def new_webhook(table: Table, org: NewOrganization, url: str, *types: str, **extra: Any) -> tuple[Item, str]:
    return service.create_webhook(
        table,
        org.organization["id"],
        service.NewWebhook(url=url, event_types=list(types or ["domain.verified"]), mailbox_ids=[], **extra),
    )


def record_event(table: Table, org: NewOrganization, event_type: str, data: dict[str, Any]) -> Item:
    event = events.new_event(org.organization["id"], event_type, data)
    table.put(event, condition="attribute_not_exists(PK)")
    return event


def fan_out(*items: Item, first_sequence: int | None = None) -> dict[str, Any]:
    if first_sequence is None:
        first_sequence = next(_sequence) * 100
    event = stream_event(list(items), first_sequence=first_sequence)
    return function_module("event_fanout").handler(event, LambdaContext(function_name="fanout"))


def created_later(table: Table, webhook: Item) -> None:
    """As if the webhook had been created after the events just recorded (same millisecond or not)."""
    future = clock.isoformat(clock.utcnow() + timedelta(seconds=5))
    webhooks.update(table, webhook["org_id"], webhook["id"], {"created_at": future})


def queue_counts(url: str) -> tuple[int, int]:
    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def deliver_round(wh_aws: WebhookAws, *, wait: int = 0) -> int:
    """One receive and one invocation of the delivery function, deleting what it did not report."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(
        QueueUrl=wh_aws.queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return 0
    result = function_module("webhook_delivery").handler(
        sqs_event(messages, queue_arn=wh_aws.queue_arn), LambdaContext(function_name="delivery")
    )
    done = succeeded([m["MessageId"] for m in messages], result, report_batch_item_failures=True)
    for m in messages:
        if m["MessageId"] in done:
            sqs.delete_message(QueueUrl=wh_aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return len(messages)


def deliver_until(wh_aws: WebhookAws, condition: Callable[[], bool], *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the delivery did not reach the expected state in time")
        deliver_round(wh_aws, wait=1)


def delivery_of(table: Table, webhook: Item, event: Item) -> Item:
    found = deliveries.get(
        table, webhook["org_id"], webhook["id"], deliveries.delivery_id_for(event["event_id"])
    )
    assert found is not None
    return found


def test_an_event_becomes_one_signed_delivery(org, wh_aws, table, hook: Receiver):
    webhook, secret = new_webhook(table, org, hook.url)
    event = record_event(
        table, org, "domain.verified", {"id": "dom_1", "domain": "example.org", "status": "verified"}
    )
    assert fan_out(event) == {"batchItemFailures": []}
    deliver_until(wh_aws, lambda: len(hook.received) == 1)

    (request,) = hook.received
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {
        "type": "event",
        "event_id": event["event_id"],
        "event_type": "domain.verified",
        "created_at": event["created_at"],
        "data": {"id": "dom_1", "domain": "example.org", "status": "verified"},
    }
    assert request.webhook_id == event["event_id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60

    listing = call(
        "webhooks", "GET", f"/api/v1/webhooks/{webhook['id']}/deliveries", token=org.admin_token
    ).json()
    (delivery,) = listing["data"]
    assert listing["meta"]["total"] == 1
    assert delivery["state"] == "succeeded" and delivery["event_id"] == event["event_id"]
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] == 204 and attempt["error"] is None and attempt["duration_ms"] >= 0
    assert queue_counts(wh_aws.queue_url) == (0, 0)


def test_fan_out_is_idempotent_and_follows_subscriptions(org, wh_aws, table, hook: Receiver):
    inbox, _ = new_webhook(table, org, hook.url, "message.received")
    webhooks.update(table, inbox["org_id"], inbox["id"], {"mailbox_ids": ["mbx_a"]})
    disabled, _ = new_webhook(table, org, hook.url, "domain.verified", enabled=False)
    verified = record_event(table, org, "domain.verified", {"id": "dom_1"})
    other_box = record_event(table, org, "message.received", {"message_id": "m1", "mailbox_id": "mbx_b"})
    our_box = record_event(table, org, "message.received", {"message_id": "m2", "mailbox_id": "mbx_a"})
    later, _ = new_webhook(table, org, hook.url, "domain.verified")
    created_later(table, later)

    fan_out(verified, other_box, our_box)
    fan_out(verified, other_box, our_box)  # the stream retried the batch
    assert queue_counts(wh_aws.queue_url)[0] == 2  # the never-attempted delivery is sent again
    deliver_until(wh_aws, lambda: queue_counts(wh_aws.queue_url) == (0, 0))
    ids = {r.webhook_id for r in hook.received}
    assert ids == {our_box["event_id"]}  # duplicates carry the same webhook-id
    fan_out(verified, other_box, our_box)  # after it was attempted: nothing is sent again
    assert queue_counts(wh_aws.queue_url) == (0, 0)

    for webhook, expected in ((inbox, 1), (disabled, 0), (later, 0)):
        item = webhooks.get(table, webhook["org_id"], webhook["id"])
        assert item is not None and int(item.get("delivery_count", 0)) == expected


def test_a_delivery_whose_message_was_not_sent_is_sent_on_the_retry(org, wh_aws, table, hook, monkeypatch):
    new_webhook(table, org, hook.url)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    real_send = webhook_queue.send

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(webhook_queue, "send", broken)
    first = fan_out(event, first_sequence=4242)
    assert first["batchItemFailures"] == [{"itemIdentifier": "4242"}]
    monkeypatch.setattr(webhook_queue, "send", real_send)
    assert fan_out(event) == {"batchItemFailures": []}
    deliver_until(wh_aws, lambda: len(hook.received) == 1)


def test_a_failing_endpoint_gets_the_same_webhook_id_until_it_succeeds(org, wh_aws, table):
    with receiver(fail_first(2)) as hook:
        webhook, secret = new_webhook(table, org, hook.url)
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_round(wh_aws)
        failing = webhooks.get(table, webhook["org_id"], webhook["id"])
        assert failing is not None and failing.get("first_failure_at")
        deliver_until(wh_aws, lambda: delivery_of(table, webhook, event)["state"] == "succeeded")

    assert [r.webhook_id for r in hook.received] == [event["event_id"]] * 3
    for request in hook.received:
        Webhook(secret).verify(request.body, request.headers)
    delivery = delivery_of(table, webhook, event)
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 204]
    assert delivery["attempt_count"] == 3
    recovered = webhooks.get(table, webhook["org_id"], webhook["id"])
    assert recovered is not None and "first_failure_at" not in recovered


def test_a_message_whose_handling_failed_comes_back_soon_not_after_the_visibility_timeout(
    org, wh_aws, table, hook, monkeypatch
):
    """An AWS failure that outlasted its retries (here: recording the attempt after the POST) fails
    the record; its message is made visible again after the schedule's first step (0 s here), not
    after the queue's 360 s, and the retry delivers the same webhook-id."""
    from mailroom.store.errors import ServiceUnavailable

    webhook, _ = new_webhook(table, org, hook.url)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    fan_out(event)
    real = deliveries.record_attempt

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("down")

    monkeypatch.setattr(deliveries, "record_attempt", down)
    assert deliver_round(wh_aws) == 1
    assert queue_counts(wh_aws.queue_url) == (1, 0)  # back at once
    monkeypatch.setattr(deliveries, "record_attempt", real)
    assert deliver_round(wh_aws) == 1
    assert [r.webhook_id for r in hook.received] == [event["event_id"]] * 2
    assert delivery_of(table, webhook, event)["state"] == "succeeded"
    assert queue_counts(wh_aws.queue_url) == (0, 0)


def test_410_disables_the_webhook_at_once(org, wh_aws, table):
    with receiver(always(410)) as hook:
        webhook, _ = new_webhook(table, org, hook.url)
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_until(wh_aws, lambda: delivery_of(table, webhook, event)["state"] == "failed")
        later = record_event(table, org, "domain.verified", {"id": "dom_2"})
        fan_out(later)
    assert len(hook.received) == 1
    delivery = delivery_of(table, webhook, event)
    assert delivery["failure_reason"] == "endpoint_gone"
    view = call("webhooks", "GET", f"/api/v1/webhooks/{webhook['id']}", token=org.admin_token).json()["data"]
    assert view["enabled"] is False and view["disabled_reason"] == "endpoint_gone" and view["disabled_at"]
    assert queue_counts(wh_aws.queue_url) == (0, 0)  # the next event was not fanned out to it
    assert queue_counts(wh_aws.dlq_url) == (0, 0)


def test_after_the_last_attempt_the_delivery_fails_into_the_dead_letter_queue(
    org, wh_aws, table, monkeypatch
):
    schedule(monkeypatch, "0")
    with receiver(always(500)) as hook:
        webhook, _ = new_webhook(table, org, hook.url)
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_until(wh_aws, lambda: delivery_of(table, webhook, event)["state"] == "failed")
    assert len(hook.received) == 2
    delivery = delivery_of(table, webhook, event)
    assert delivery["failure_reason"] == "retries_exhausted"
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500", "HTTP 500"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    (parked,) = sqs.receive_message(QueueUrl=wh_aws.dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "retries_exhausted"
    assert json.loads(parked["Body"])["delivery_id"] == delivery["id"]
    assert queue_counts(wh_aws.queue_url) == (0, 0)


def test_retry_after_is_honoured_with_the_message_kept_invisible(org, wh_aws, table, monkeypatch):
    schedule(monkeypatch, "1,1")
    with receiver(always(429, {"Retry-After": "120"})) as hook:
        webhook, _ = new_webhook(table, org, hook.url)
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_round(wh_aws)
    delivery = delivery_of(table, webhook, event)
    assert delivery["state"] == "pending"
    waited = clock.parse_iso(delivery["next_attempt_at"]) - clock.parse_iso(delivery["last_attempt_at"])
    assert 119 <= waited.total_seconds() <= 121
    assert queue_counts(wh_aws.queue_url) == (0, 1)  # kept, invisible until then
    assert deliver_round(wh_aws) == 0


def test_five_days_of_failures_disable_the_webhook(org, wh_aws, table):
    with receiver(always(500)) as hook:
        webhook, _ = new_webhook(table, org, hook.url)
        six_days_ago = clock.isoformat(clock.utcnow() - timedelta(days=6))
        webhooks.update(table, webhook["org_id"], webhook["id"], {"first_failure_at": six_days_ago})
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_round(wh_aws)
    assert len(hook.received) == 1
    view = call("webhooks", "GET", f"/api/v1/webhooks/{webhook['id']}", token=org.admin_token).json()["data"]
    assert view["enabled"] is False and view["disabled_reason"] == "failing_continuously"
    assert view["failing_since"] == six_days_ago
    delivery = delivery_of(table, webhook, event)
    assert delivery["state"] == "failed" and delivery["failure_reason"] == "webhook_disabled"


def test_manual_retry_supersedes_the_scheduled_chain(org, wh_aws, table, monkeypatch):
    schedule(monkeypatch, "300")  # the scheduled retry would come in five minutes
    status = {"code": 500}
    with receiver(lambda _n, _r: (status["code"], {})) as hook:
        webhook, secret = new_webhook(table, org, hook.url)
        event = record_event(table, org, "domain.verified", {"id": "dom_1"})
        fan_out(event)
        deliver_round(wh_aws)
        assert delivery_of(table, webhook, event)["state"] == "pending"
        status["code"] = 200
        delivery_id = deliveries.delivery_id_for(event["event_id"])
        retried = call(
            "webhooks",
            "POST",
            f"/api/v1/webhooks/{webhook['id']}/deliveries/{delivery_id}:retry",
            token=org.admin_token,
            headers={"Idempotency-Key": f"retry-{next(_keys)}"},
        )
        assert retried.status == 202, retried.body
        assert retried.json()["data"]["state"] == "pending"
        deliver_until(wh_aws, lambda: delivery_of(table, webhook, event)["state"] == "succeeded")
        # The first chain's message wakes up later and finds itself superseded: no second POST.
        stale = webhook_queue.DeliveryMessage(
            org_id=webhook["org_id"],
            webhook_id=webhook["id"],
            delivery_id=delivery_id,
            event_id=event["event_id"],
            generation=1,
            not_before=0,
            payload=None,
        )
        webhook_queue.send([stale])
        assert deliver_round(wh_aws, wait=1) == 1
        assert queue_counts(wh_aws.queue_url)[0] == 0
    assert [r.webhook_id for r in hook.received] == [event["event_id"]] * 2
    Webhook(secret).verify(hook.received[-1].body, hook.received[-1].headers)
    delivery = delivery_of(table, webhook, event)
    assert delivery["generation"] == 2 and delivery["attempt_count"] == 2
    assert [a["trigger"] for a in delivery["attempts"]] == ["event", "retry"]


def test_replay_sends_what_the_webhook_missed(org, wh_aws, table, hook: Receiver):
    missed = [record_event(table, org, "domain.verified", {"id": f"dom_{i}"}) for i in range(3)]
    other = record_event(table, org, "message.sent", {"message_id": "m1"})
    webhook, _ = new_webhook(table, org, hook.url, "domain.verified")
    created_later(table, webhook)
    webhook = webhooks.get(table, webhook["org_id"], webhook["id"]) or webhook
    fan_out(*missed, other)  # created after these events: the fan-out does not send them
    assert queue_counts(wh_aws.queue_url) == (0, 0)

    def replay(**body: Any) -> dict[str, Any]:
        response = call(
            "webhooks",
            "POST",
            f"/api/v1/webhooks/{webhook['id']}:replay",
            token=org.admin_token,
            json_body={"since": missed[0]["created_at"], **body},
            headers={"Idempotency-Key": f"replay-{next(_keys)}"},
        )
        assert response.status == 202, response.body
        return response.json()["data"]

    assert replay() == {"scanned": 4, "matched": 3, "replayed": 3, "skipped": 0, "next_cursor": None}
    deliver_until(wh_aws, lambda: len(hook.received) == 3)
    assert sorted(r.webhook_id for r in hook.received) == sorted(e["event_id"] for e in missed)
    assert replay()["skipped"] == 3  # delivered already
    assert replay(include_succeeded=True)["replayed"] == 3
    deliver_until(wh_aws, lambda: len(hook.received) == 6)


def test_replay_pages_with_a_cursor(org, wh_aws, table, hook: Receiver):
    missed = [record_event(table, org, "domain.verified", {"id": f"dom_{i}"}) for i in range(3)]
    webhook, _ = new_webhook(table, org, hook.url)
    since = clock.parse_iso(missed[0]["created_at"])
    until = clock.utcnow()
    first = webhook_deliveries.replay(table, webhook, since=since, until=until, max_events=2)
    assert first.replayed == 2 and first.next_cursor
    second = webhook_deliveries.replay(
        table, webhook, since=since, until=until, max_events=2, cursor=first.next_cursor
    )
    assert second.replayed == 1 and second.next_cursor is None


def test_a_disabled_webhook_stops_its_pending_deliveries_but_still_gets_tests(org, wh_aws, table, hook):
    webhook, secret = new_webhook(table, org, hook.url)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    fan_out(event)
    path = f"/api/v1/webhooks/{webhook['id']}"
    assert call("webhooks", "PATCH", path, token=org.admin_token, json_body={"enabled": False}).status == 200
    deliver_round(wh_aws)
    assert hook.received == []
    assert delivery_of(table, webhook, event)["failure_reason"] == "webhook_disabled"

    sent = call("webhooks", "POST", f"{path}:test", token=org.admin_token, headers={"Idempotency-Key": "t-1"})
    assert sent.status == 202
    test = sent.json()["data"]
    assert test["event_type"] == "webhook.test" and test["delivery_id"] == deliveries.delivery_id_for(
        test["event_id"]
    )
    test_event = table.get(f"ORG#{org.organization['id']}#EVENTS", test["event_id"].partition("_")[2])
    assert test_event is not None
    fan_out(test_event)
    deliver_until(wh_aws, lambda: len(hook.received) == 1)
    payload = Webhook(secret).verify(hook.received[0].body, hook.received[0].headers)
    assert payload["event_type"] == "webhook.test" and payload["data"]["webhook_id"] == webhook["id"]
    one = call("webhooks", "GET", f"{path}/deliveries/{test['delivery_id']}", token=org.admin_token).json()[
        "data"
    ]
    assert one["state"] == "succeeded" and one["trigger"] == "test"


def test_a_test_event_goes_to_its_webhook_only(org, wh_aws, table, hook):
    target, _ = new_webhook(table, org, hook.url)
    bystander, _ = new_webhook(table, org, hook.url)
    event = webhook_deliveries.send_test(table, target)
    fan_out(event)
    deliver_until(wh_aws, lambda: len(hook.received) == 1)
    assert deliver_round(wh_aws) == 0
    bystander_item = webhooks.get(table, bystander["org_id"], bystander["id"])
    assert bystander_item is not None and int(bystander_item.get("delivery_count", 0)) == 0


def test_a_message_not_yet_due_waits_invisible(org, wh_aws, table, hook):
    webhook, _ = new_webhook(table, org, hook.url)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    delivery = deliveries.new_delivery(
        event, webhook, trigger="event", now_iso=clock.now_iso(), now_epoch=int(time.time())
    )
    deliveries.create(table, delivery)
    webhook_queue.send(
        [
            webhook_queue.DeliveryMessage(
                org_id=webhook["org_id"],
                webhook_id=webhook["id"],
                delivery_id=delivery["id"],
                event_id=event["event_id"],
                generation=1,
                not_before=time.time() + 600,
                payload=None,
            )
        ]
    )
    assert deliver_round(wh_aws) == 1
    assert hook.received == []
    assert queue_counts(wh_aws.queue_url) == (0, 1)
    assert delivery_of(table, webhook, event)["attempt_count"] == 0


def test_large_message_bodies_are_left_out_of_the_payload(org, wh_aws, table, hook):
    _, secret = new_webhook(table, org, hook.url, "message.received")
    data = {
        "message_id": "msg_1",
        "preview": "Hello",
        "text": "x" * 100_000,
        "links": {"self": "/api/v1/messages/1"},
    }
    event = record_event(table, org, "message.received", data)
    fan_out(event)
    deliver_until(wh_aws, lambda: len(hook.received) == 1)
    payload = Webhook(secret).verify(hook.received[0].body, hook.received[0].headers)
    assert payload["data"] == {
        "message_id": "msg_1",
        "preview": "Hello",
        "links": {"self": "/api/v1/messages/1"},
        "body_omitted": True,
    }


def test_after_a_rotation_both_secrets_verify_each_delivery(org, wh_aws, table, hook):
    webhook, old = new_webhook(table, org, hook.url)
    item = webhooks.get(table, webhook["org_id"], webhook["id"])
    assert item is not None
    _, new = service.rotate_secret(table, item)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    fan_out(event)
    deliver_until(wh_aws, lambda: len(hook.received) == 1)
    request = hook.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)


def test_a_retry_needs_an_enabled_webhook_and_a_kept_event(org, wh_aws, table, hook):
    webhook, _ = new_webhook(table, org, hook.url)
    event = record_event(table, org, "domain.verified", {"id": "dom_1"})
    fan_out(event)
    path = f"/api/v1/webhooks/{webhook['id']}"
    retry = f"{path}/deliveries/{delivery_of(table, webhook, event)['id']}:retry"

    def post(route: str, body: Any = None) -> Any:
        key = {"Idempotency-Key": f"retry-{next(_keys)}"}
        return call("webhooks", "POST", route, token=org.admin_token, json_body=body, headers=key)

    assert call("webhooks", "PATCH", path, token=org.admin_token, json_body={"enabled": False}).status == 200
    for refused in (post(retry), post(f"{path}:replay", {"since": event["created_at"]})):
        assert (refused.status, refused.error_code) == (409, "webhook_disabled"), refused.body
    assert call("webhooks", "PATCH", path, token=org.admin_token, json_body={"enabled": True}).status == 200
    assert post(retry).status == 202

    table.delete(event["PK"], event["SK"])  # past its retention: the TTL removed it
    expired = post(retry)
    assert (expired.status, expired.error_code) == (409, "event_expired"), expired.body
