"""Automation test support (until the automation API and the inbound stage are merged, tests write
what they write, per WAVE5.md's CONTRACT): action items, processing-log entries with pending async
actions, mailbox data documents; and the AWS the worker needs (the template's queue and DLQ, a KMS
key), with the dispatcher and worker functions driven the way their event sources drive them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailroom import clock, ids
from mailroom.services import automation_webhooks
from mailroom.store import keys
from mailroom.store import rules as rule_store
from mailroom.store.table import Item, Table
from tests.support.aws import template
from tests.support.lambda_api import LambdaContext, function_module
from tests.support.webhooks import sqs_event, stream_event

_sequence = itertools.count(5000)


@dataclass(frozen=True)
class AutomationAws:
    queue_url: str
    queue_arn: str
    dlq_url: str
    key_alias: str


def provision(monkeypatch: Any, *, schedule: str = "0,0") -> AutomationAws:
    """Inside moto: the template's automation queue (its visibility and redrive as declared) with
    its DLQ, a KMS key, and the settings naming them (loopback receivers allowed)."""
    import boto3

    from mailroom.settings import get_settings

    resources = template()["Resources"]
    declared = resources["AutomationActionsQueue"]["Properties"]
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="action secrets")["KeyMetadata"]["KeyId"]
    alias = "alias/mailroom-automation-test"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="mailroom-test-AutomationActionsDeadLetterQueue")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": declared["RedrivePolicy"]["maxReceiveCount"],
    }
    queue_url = sqs.create_queue(
        QueueName="mailroom-test-AutomationActionsQueue",
        Attributes={
            "VisibilityTimeout": str(declared["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for name, value in {
        "MAILROOM_KMS_KEY_ID": alias,
        "MAILROOM_AUTOMATION_QUEUE_URL": queue_url,
        "MAILROOM_AUTOMATION_DLQ_URL": dlq_url,
        "MAILROOM_AUTOMATION_RETRY_SCHEDULE": schedule,
        "MAILROOM_WEBHOOK_ALLOW_PRIVATE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return AutomationAws(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, key_alias=alias)


# ----------------------------------------------------------------------------- CONTRACT items


def put_action(
    table: Table, org_id: str, action_type: str, parameters: dict[str, Any], *, name: str = "an action"
) -> tuple[Item, str | None]:
    """An action item as the automation API writes it; a webhook's secret is sealed and returned."""
    action_id = f"act_{ids.ulid()}"
    now = clock.now_iso()
    item: Item = {
        "PK": keys.automation_pk(org_id),
        "SK": keys.automation_action_sk(action_id),
        "type": "action",
        "id": action_id,
        "org_id": org_id,
        "name": name,
        "action_type": action_type,
        "parameters": parameters,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    secret = None
    if action_type == "webhook":
        secret = automation_webhooks.new_secret()
        item["secret_ciphertext"] = automation_webhooks.seal(secret, org_id, action_id)
    table.put(item)
    return item, secret


def put_document(table: Table, org_id: str, mailbox_id: str, key: str, value: Any) -> None:
    text = json.dumps(value, separators=(",", ":"))
    table.put(
        {
            "PK": keys.mailbox_pk(org_id, mailbox_id),
            "SK": keys.mailbox_data_sk(key),
            "type": "mailbox_data",
            "key": key,
            "value": text,
            "bytes": len(text.encode()),
            "version": 1,
            "updated_at": clock.now_iso(),
        }
    )


def log_entry(
    org_id: str,
    message: Item,
    actions: Sequence[tuple[str, Item]],
    *,
    route_name: str = "a route",
    test: bool = False,
) -> Item:
    """The processing-log entry of a stored ``message`` whose route ran ``actions`` ((route id, action
    item) pairs; async types pending, inline ones done), as the inbound stage writes it."""
    routes = list(dict.fromkeys(route_id for route_id, _ in actions))
    listed = []
    for route_id, action in actions:
        kind = str(action["action_type"])
        is_async = kind in ("webhook", "eventbridge", "forward", "reply")
        listed.append(
            {
                "route_id": route_id,
                "action_id": action["id"],
                "action_type": kind,
                "mode": "async" if is_async else "inline",
                "status": "pending" if is_async else "done",
            }
        )
    entry = {
        "message_id": message["id"],
        "ses_message_id": message.get("ses_message_id"),
        "from": message.get("from_address"),
        "subject": message.get("subject"),
        "rules_matched": [],
        "actions": [],
        "outcome": "delivered",
        "test": test,
        "automation_pending": sum(1 for a in listed if a["mode"] == "async"),
        "automation": {
            "routes": [{"id": r, "name": route_name, "matched": True} for r in routes],
            "actions": listed,
        },
        "created_at": clock.now_iso(),
    }
    ulid = str(message["id"]).partition("_")[2]
    return rule_store.log_item(org_id, str(message["mailbox_id"]), ulid, entry, datetime.now(UTC))


def new_route_id() -> str:
    return f"rte_{ids.ulid()}"


# ----------------------------------------------------------------------------- the functions


def dispatch(*entries: Item) -> dict[str, Any]:
    """The dispatcher invoked with a stream batch of INSERTs of ``entries``."""
    event = stream_event(list(entries), first_sequence=next(_sequence) * 100)
    return function_module("automation_dispatch").handler(event, LambdaContext(function_name="dispatch"))  # type: ignore[no-any-return]


def work_round(aws_: AutomationAws, *, delete_done: bool = True) -> tuple[int, dict[str, Any]]:
    """One receive (up to ten) and one worker invocation, deleting what it did not report failed,
    as the SQS event source does: (messages received, the worker's response)."""
    import boto3

    from local.pollers import succeeded

    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(
        QueueUrl=aws_.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return 0, {}
    result = function_module("automation_worker").handler(
        sqs_event(messages, queue_arn=aws_.queue_arn), LambdaContext(function_name="worker")
    )
    done = succeeded([m["MessageId"] for m in messages], result, report_batch_item_failures=True)
    for m in messages:
        if delete_done and m["MessageId"] in done:
            sqs.delete_message(QueueUrl=aws_.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return len(messages), result


def queue_depth(url: str) -> int:
    """Visible plus in-flight messages."""
    import boto3

    attributes = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def logged_actions(table: Table, entry: Item) -> tuple[list[dict[str, Any]], int]:
    """The entry's ``automation.actions`` and ``automation_pending`` as stored now."""
    current = table.get(str(entry["PK"]), str(entry["SK"]))
    assert current is not None
    return list(current["automation"]["actions"]), int(current["automation_pending"])
