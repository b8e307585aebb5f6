"""Automation actions end to end in the local stack: mail sent over SMTP is stored by the inbound
function; its processing-log entry with a pending webhook action (written per the CONTRACT by the
test, as the inbound stage writes it once merged) reaches the dispatcher through the table's stream
poller, the worker through the SQS poller, and a receiver on loopback that verifies the signed POST
with the standardwebhooks library. The receiver refuses the first attempt: the retry comes one
second later (the stack runs with a one-second retry schedule) with the same webhook-id.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest

from mailroom.domain import webhooks as signing
from mailroom.store import keys
from mailroom.store.table import deserialize, serialize
from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.api_http import data
from tests.support.webhooks import fail_first, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("automation")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Setup:
    stack: LocalStackProcess
    org_id: str
    mailbox: dict[str, Any]

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.stack.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @property
    def table(self) -> str:
        env = dict(
            line.split("=", 1) for line in (self.stack.state_dir / "local.env").read_text().splitlines()
        )
        return env["MAILROOM_TABLE_NAME"]


def write(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with start_stack(
        tmp_path_factory.mktemp("automation-state"), MAILROOM_AUTOMATION_RETRY_SCHEDULE="1,1"
    ) as stack:
        auth = {"Authorization": f"Bearer {stack.admin_token}"}
        with httpx.Client(base_url=stack.api_url, headers=auth, timeout=30) as admin:
            domain = data(
                write(admin, "/api/v1/domains", {"domain": f"auto-{uuid.uuid4().hex[:8]}.example.com"}), 201
            )
            body = {"local_part": "orders", "domain": domain["domain"], "password": PASSWORD}
            mailbox = data(write(admin, "/api/v1/mailboxes", body), 201)
            org_id = data(admin.get("/api/v1/me"))["organization"]["id"]
            yield Setup(stack, str(org_id), mailbox)


def until(condition: Callable[[], Any], *, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def smtp(setup: Setup, subject: str) -> None:
    address = setup.mailbox["address"]
    raw = (
        f"From: Ann Example <ann@sender.example.net>\r\nTo: {address}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@sender.example.net>\r\n\r\nPlease ship it.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", setup.stack.smtp_port, timeout=30) as client:
        client.sendmail("ann@sender.example.net", [address], raw)


def stored_message(setup: Setup, subject: str) -> dict[str, Any] | None:
    pk = keys.mailbox_pk(setup.org_id, setup.mailbox["id"])
    items = setup.aws("dynamodb").query(
        TableName=setup.table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :msg)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":msg": {"S": "MSG#"}},
    )["Items"]
    found = [deserialize(item) for item in items]
    return next((m for m in found if m.get("subject") == subject), None)


def webhook_action(setup: Setup, url: str, template: str) -> tuple[dict[str, Any], str]:
    """The action item the automation API writes: its secret sealed with the stack's KMS key under
    the CONTRACT's encryption context."""
    kms = setup.aws("kms")
    (alias,) = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/mailroom-")]
    action_id = f"act_{uuid.uuid4().hex}"
    secret = signing.new_secret()
    sealed = kms.encrypt(
        KeyId=alias["AliasName"],
        Plaintext=secret.encode(),
        EncryptionContext={"org_id": setup.org_id, "action_id": action_id},
    )["CiphertextBlob"]
    now = datetime.now(UTC).isoformat()
    item = {
        "PK": keys.automation_pk(setup.org_id),
        "SK": keys.automation_action_sk(action_id),
        "type": "action",
        "id": action_id,
        "org_id": setup.org_id,
        "name": "notify the shop",
        "action_type": "webhook",
        "parameters": {"url": url, "body_template": template},
        "secret_ciphertext": bytes(sealed),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    setup.aws("dynamodb").put_item(TableName=setup.table, Item=serialize(item))
    return item, secret


def log_entry(setup: Setup, message: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    route_id = f"rte_{uuid.uuid4().hex}"
    ulid = str(message["id"]).partition("_")[2]
    item = {
        "PK": keys.mailbox_pk(setup.org_id, setup.mailbox["id"]),
        "SK": keys.rule_log_sk(ulid),
        "type": "rule_log",
        "message_id": message["id"],
        "subject": message["subject"],
        "outcome": "delivered",
        "test": False,
        "automation_pending": 1,
        "automation": {
            "routes": [{"id": route_id, "name": "orders to the shop", "matched": True}],
            "actions": [
                {
                    "route_id": route_id,
                    "action_id": action["id"],
                    "action_type": "webhook",
                    "mode": "async",
                    "status": "pending",
                }
            ],
        },
        "ttl": int(time.time()) + 86400,
    }
    setup.aws("dynamodb").put_item(TableName=setup.table, Item=serialize(item))
    return item


def test_a_message_with_a_pending_webhook_action_reaches_the_receiver_signed(setup: Setup) -> None:
    subject = f"Order {uuid.uuid4().hex[:6]}"
    smtp(setup, subject)
    message = until(lambda: stored_message(setup, subject))
    with receiver(fail_first(1, 503)) as hook:
        template = '{"order": {{ message.subject | tojson }}, "route": {{ route.name | tojson }}}'
        action, hook.secret = webhook_action(setup, hook.url, template)
        entry = log_entry(setup, message, action)

        received = hook.wait_for(lambda got: any(r.status == 204 for r in got), timeout=30)
        assert [r.status for r in received] == [503, 204]
        assert all(r.verified for r in received)
        assert len({r.webhook_id for r in received}) == 1
        assert received[-1].json() == {"order": subject, "route": "orders to the shop"}

        def finished() -> dict[str, Any] | None:
            item = setup.aws("dynamodb").get_item(
                TableName=setup.table, Key=serialize({"PK": entry["PK"], "SK": entry["SK"]})
            )["Item"]
            current = deserialize(item)
            return current if int(current["automation_pending"]) == 0 else None

        current = until(finished)
        (logged,) = current["automation"]["actions"]
        assert (logged["status"], logged["attempts"]) == ("done", 2)
        assert logged["detail"]["status_code"] == 204
