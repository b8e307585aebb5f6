"""EventBridge destinations under moto: a webhook whose destination is an event bus gets each event
through the same fan-out, queue, delivery function and ledger as a URL webhook, put on its bus with
source ``mailroom``; a rule on the bus forwards it to an SQS queue, read back here."""

from __future__ import annotations

import itertools
import json
from typing import Any

import boto3
import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store import webhooks
from mailroom.store.table import Table
from tests.integration.test_webhooks_delivery import deliver_round, delivery_of, fan_out, record_event
from tests.support.lambda_api import Result, call
from tests.support.webhooks import WebhookAws, provision_webhook_aws

ACCOUNT = "123456789012"  # moto's
_keys = itertools.count()


@pytest.fixture
def wh_aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> WebhookAws:
    aws = provision_webhook_aws(monkeypatch, schedule="0,0,0")
    monkeypatch.setenv("MAILROOM_EVENTBRIDGE_ACCOUNTS", f"{ACCOUNT},111122223333")
    get_settings.cache_clear()
    return aws


def bus_to_queue(name: str, region: str = "us-east-1") -> tuple[str, str]:
    """A customer's event bus whose rule sends mailroom's events to a queue: (bus ARN, queue URL)."""
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    bus_arn = events.create_event_bus(Name=name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=f"{name}-mailroom", EventBusName=name, EventPattern=json.dumps({"source": ["mailroom"]})
    )
    events.put_targets(
        Rule=f"{name}-mailroom", EventBusName=name, Targets=[{"Id": "inbox", "Arn": queue_arn}]
    )
    return bus_arn, queue_url


def on_queue(queue_url: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=region)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def post(token: str, path: str, body: Any) -> Result:
    return call(
        "webhooks", "POST", path, token=token, json_body=body, headers={"Idempotency-Key": f"k-{next(_keys)}"}
    )


def create(org: NewOrganization, **body: Any) -> Result:
    return post(org.admin_token, "/api/v1/webhooks", {"event_types": ["domain.verified"], **body})


def test_events_are_put_on_the_bus_with_the_webhook_payload(org, wh_aws, table: Table):
    bus_arn, queue_url = bus_to_queue("customer-bus")
    created = create(org, event_bus_arn=bus_arn)
    assert created.status == 201, created.body
    view = created.json()["data"]
    assert view["destination"] == "eventbridge" and view["event_bus_arn"] == bus_arn and view["url"] is None

    event = record_event(table, org, "domain.verified", {"id": "dom_1", "domain": "example.org"})
    assert fan_out(event) == {"batchItemFailures": []}
    assert deliver_round(wh_aws) == 1

    (received,) = on_queue(queue_url)
    assert received["source"] == "mailroom" and received["detail-type"] == "domain.verified"
    assert received["detail"] == {
        "type": "event",
        "event_id": event["event_id"],
        "event_type": "domain.verified",
        "created_at": event["created_at"],
        "data": {"id": "dom_1", "domain": "example.org"},
    }
    delivery = delivery_of(table, webhooks.get(table, org.organization["id"], view["id"]) or {}, event)
    assert delivery["state"] == deliveries.SUCCEEDED
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] is None and attempt["error"] is None
    assert attempt["response"].startswith("EventBridge event ")

    listed = call("webhooks", "GET", f"/api/v1/webhooks/{view['id']}/deliveries", token=org.admin_token)
    assert listed.json()["data"][0]["state"] == "succeeded"


def test_a_bus_in_another_region_is_reached_there(org, wh_aws, table: Table):
    bus_arn, queue_url = bus_to_queue("eu-bus", region="eu-west-1")
    assert ":eu-west-1:" in bus_arn
    assert create(org, event_bus_arn=bus_arn).status == 201
    fan_out(record_event(table, org, "domain.verified", {"id": "dom_2"}))
    deliver_round(wh_aws)
    (received,) = on_queue(queue_url, region="eu-west-1")
    assert received["detail"]["data"] == {"id": "dom_2"}


def test_a_bus_that_does_not_exist_ends_the_delivery_and_disables_the_webhook(org, wh_aws, table: Table):
    missing = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/never-created"
    view = create(org, event_bus_arn=missing).json()["data"]
    event = record_event(table, org, "domain.verified", {"id": "dom_3"})
    fan_out(event)
    deliver_round(wh_aws)
    webhook = webhooks.get(table, org.organization["id"], view["id"])
    assert webhook is not None
    delivery = delivery_of(table, webhook, event)
    assert delivery["state"] == deliveries.FAILED and delivery["failure_reason"] == "endpoint_gone"
    assert "ResourceNotFound" in delivery["attempts"][0]["error"]
    assert webhook["enabled"] is False and webhook["disabled_reason"] == "endpoint_gone"


def test_a_bus_whose_account_was_taken_off_the_list_gets_nothing(org, wh_aws, table, monkeypatch):
    bus_arn, queue_url = bus_to_queue("dropped-bus")
    view = create(org, event_bus_arn=bus_arn).json()["data"]
    monkeypatch.setenv("MAILROOM_EVENTBRIDGE_ACCOUNTS", "111122223333")
    get_settings.cache_clear()
    event = record_event(table, org, "domain.verified", {"id": "dom_4"})
    fan_out(event)
    deliver_round(wh_aws)
    assert on_queue(queue_url) == []
    webhook = webhooks.get(table, org.organization["id"], view["id"])
    assert webhook is not None and webhook["disabled_reason"] == "endpoint_gone"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"event_bus_arn": "arn:aws:sqs:us-east-1:123456789012:queue"}, "invalid_event_bus_arn"),
        (
            {"event_bus_arn": "arn:aws:events:us-east-1:12345:event-bus/short-account"},
            "invalid_event_bus_arn",
        ),
        ({"event_bus_arn": "arn:aws:events:us-east-1:999999999999:event-bus/x"}, "event_bus_not_allowed"),
        (
            {"event_bus_arn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/b", "url": "https://x.example"},
            None,
        ),
        ({}, None),
    ],
)
def test_destinations_are_validated(org, wh_aws, body: dict[str, Any], code: str | None):
    refused = create(org, **body)
    assert refused.status == 422, refused.body
    if code:
        assert refused.error_code == code
        assert refused.json()["error"]["fields"][0]["field"] == "event_bus_arn"


def test_no_listed_account_means_no_eventbridge_destinations(org, wh_aws, monkeypatch):
    monkeypatch.setenv("MAILROOM_EVENTBRIDGE_ACCOUNTS", "")
    get_settings.cache_clear()
    refused = create(org, event_bus_arn=f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default")
    assert refused.status == 422 and refused.error_code == "event_bus_not_allowed"
    assert "not enabled" in refused.json()["error"]["message"]


def test_patch_switches_the_destination(org, wh_aws, table: Table, monkeypatch):
    monkeypatch.setenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    bus_arn, _ = bus_to_queue("switch-bus")
    view = create(org, url="http://127.0.0.1:9/hook").json()["data"]
    assert view["destination"] == "https"
    path = f"/api/v1/webhooks/{view['id']}"

    def patch(body: dict[str, Any]) -> Result:
        return call(
            "webhooks",
            "PATCH",
            path,
            token=org.admin_token,
            json_body=body,
            headers={"Idempotency-Key": f"k-{next(_keys)}"},
        )

    to_bus = patch({"event_bus_arn": bus_arn}).json()["data"]
    assert to_bus["destination"] == "eventbridge" and to_bus["url"] is None
    item = webhooks.get(table, org.organization["id"], view["id"])
    assert item is not None and "url" not in item

    v0 = call("agent_webhooks", "GET", f"/api/v0/webhooks/{view['id']}", token=org.admin_token)
    assert v0.status == 200 and v0.json()["url"] == bus_arn  # v0 has one field for the destination

    back = patch({"url": "http://127.0.0.1:9/other"}).json()["data"]
    assert back["destination"] == "https" and back["event_bus_arn"] is None
    both = patch({"url": "http://127.0.0.1:9/x", "event_bus_arn": bus_arn})
    assert both.status == 422
