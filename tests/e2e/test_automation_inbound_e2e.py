"""Automation in the inbound pipeline end to end: a route set in the local stack's table (written as
the automation API writes it), mail sent over SMTP to the stack's SES receiving, and what the
routes did seen through the HTTP API: the message labelled, the document ``store_data`` wrote
readable at ``/api/v1/mailbox/{mailboxId}/data/``, the log entry with the webhook written pending."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from mailroom.store import keys
from mailroom.store.table import deserialize, serialize
from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support import route_sets as auto
from tests.support.api_http import data, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("automation-inbound")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Box:
    stack: LocalStackProcess
    admin: httpx.Client
    agent: httpx.Client  # the mailbox's message token
    org_id: str
    mailbox: dict[str, Any]
    dynamodb: Any
    table: str


def write(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return client.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with start_stack(tmp_path_factory.mktemp("automation-state")) as stack:
        auth = {"Authorization": f"Bearer {stack.admin_token}"}
        with httpx.Client(base_url=stack.api_url, headers=auth, timeout=30) as admin:
            org_id = data(admin.get("/api/v1/me"))["organization"]["id"]
            name = f"auto-{uuid.uuid4().hex[:8]}.example.com"
            domain = data(write(admin, "POST", "/api/v1/domains", {"domain": name}), 201)
            body = {"local_part": "orders", "domain": domain["domain"], "password": PASSWORD}
            mailbox = data(write(admin, "POST", "/api/v1/mailboxes", body), 201)
            scopes = {"name": "e2e automation", "scopes": ["messages:read"]}
            path = f"/api/v1/mailboxes/{mailbox['id']}/message-tokens"
            token = data(write(admin, "POST", path, scopes), 201)["token"]
            session: Any = boto3.session.Session()  # Any: the stubs only type literal service names
            dynamodb = session.client(
                "dynamodb",
                endpoint_url=stack.moto_url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-Table"))
            agent_auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=stack.api_url, headers=agent_auth, timeout=30) as agent:
                yield Box(stack, admin, agent, org_id, mailbox, dynamodb, table)


class TableWriter:
    """What tests.support.route_sets writes with, over the stack's own DynamoDB endpoint."""

    def __init__(self, box: Box) -> None:
        self.box = box

    def put(self, item: dict[str, Any]) -> None:
        self.box.dynamodb.put_item(TableName=self.box.table, Item=serialize(item))

    def delete(self, pk: str, sk: str) -> None:
        self.box.dynamodb.delete_item(TableName=self.box.table, Key=serialize({"PK": pk, "SK": sk}))


def log_entries(box: Box) -> list[dict[str, Any]]:
    response = box.dynamodb.query(
        TableName=box.table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues=serialize(
            {":pk": keys.mailbox_pk(box.org_id, box.mailbox["id"]), ":prefix": keys.RULE_LOG_PREFIX}
        ),
    )
    return [deserialize(item) for item in response["Items"]]


def smtp(box: Box, subject: str) -> None:
    address = box.mailbox["address"]
    raw = (
        f"From: Shop <orders@shop.example.net>\r\nTo: {address}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@shop.example.net>\r\n\r\nThanks for your order.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", box.stack.smtp_port, timeout=30) as client:
        client.ehlo("mx.shop.example.net")
        client.mail("orders@shop.example.net")
        code, reply = client.rcpt(address)
        assert code == 250, reply
        code, reply = client.data(raw)
        assert code == 250, reply


def test_a_route_labels_stores_data_and_leaves_its_webhook_pending(box: Box) -> None:
    tag = uuid.uuid4().hex[:8]
    label = auto.action("label", labels=["orders"])
    store = auto.action(
        "store_data", key="orders", source="subject", pattern=r"order (?P<number>\d+)", mode="append"
    )
    hook = auto.action("webhook", url="https://hooks.example.net/orders")
    rule = auto.rule({"field": "subject", "op": "contains", "value": tag})
    orders = auto.route(label, store, hook, rule=rule, name="Orders")
    auto.put_route_set(TableWriter(box), box.org_id, [orders], mailbox_id=box.mailbox["id"])

    smtp(box, f"order 41 {tag}")
    smtp(box, f"order 42 {tag}")

    mailbox_id = box.mailbox["id"]

    def both_stored() -> dict[str, Any] | None:
        response = box.admin.get(f"/api/v1/mailbox/{mailbox_id}/data/orders/")
        document = data(response) if response.status_code == 200 else None
        return document if document and len(document["value"]) == 2 else None

    document = wait_for("the orders document", both_stored, box.stack)
    assert sorted(d["number"] for d in document["value"]) == ["41", "42"]
    listed = data(box.admin.get(f"/api/v1/mailbox/{mailbox_id}/data"))  # without the trailing slash
    assert [d["key"] for d in listed] == ["orders"]
    entries = [e for e in log_entries(box) if tag in e["subject"]]
    assert len(entries) == 2
    for entry in entries:
        assert entry["outcome"] == "delivered"
        assert entry["automation"]["routes"] == [{"id": orders["id"], "name": "Orders", "matched": True}]
        label_done, stored_done, webhook = entry["automation"]["actions"]
        assert (label_done["action_type"], label_done["status"]) == ("label", "done")
        assert (stored_done["action_type"], stored_done["status"]) == ("store_data", "done")
        # Written pending; with the automation worker in the stack it may have run since (its action
        # item does not exist here): pending and the count agree either way.
        assert (webhook["action_type"], webhook["mode"]) == ("webhook", "async")
        assert (webhook["status"] == "pending") == (entry["automation_pending"] == 1)
    stored = data(box.agent.get("/api/v1/messages", params={"per_page": 100}))
    assert {m["subject"]: m["labels"] for m in stored if tag in m["subject"]} == {
        f"order 41 {tag}": ["orders"],
        f"order 42 {tag}": ["orders"],
    }
