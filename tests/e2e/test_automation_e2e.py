"""The page's use case end to end in the local stack, through the real API only: create a webhook
action, define a rule, connect them with a route (mailtrigger-api.txt writes every path with a
trailing slash: so does this test), send test mail through the real inbound pipeline, read the
processing log, and see the signed POST arrive at a receiver on loopback that verifies it with the
standardwebhooks library. Mail sent over SMTP takes the same route. The receiver refuses the first
attempt: the retry comes one second later (the stack runs with a one-second retry schedule) with the
same webhook-id, and the log entry ends done after two attempts.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from mailroom.store import keys
from mailroom.store.table import deserialize
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


def api(setup: Setup) -> httpx.Client:
    auth = {"Authorization": f"Bearer {setup.stack.admin_token}"}
    return httpx.Client(base_url=setup.stack.api_url, headers=auth, timeout=30)


def build_route(client: httpx.Client, setup: Setup, url: str, word: str) -> tuple[str, str]:
    """The page's "build a route via API": an action, a rule, a route. Returns (route id, secret)."""
    template = '{"order": {{ message.subject | tojson }}, "route": {{ route.name | tojson }}}'
    action = data(
        write(
            client,
            "/api/v1/actions/",
            {
                "name": "notify the shop",
                "action_type": "webhook",
                "parameters": {"url": url, "body_template": template},
            },
        ),
        201,
    )
    parameters = data(client.get(f"/api/v1/actions/{action['id']}/parameters/"))
    assert parameters["values"]["url"] == url and "url" in parameters["schema"]["properties"]
    rule = data(
        write(
            client,
            "/api/v1/rules/",
            {
                "name": "orders",
                "match": "all",
                "conditions": [{"field": "subject", "op": "contains", "value": word}],
            },
        ),
        201,
    )
    route = data(
        write(
            client,
            "/api/v1/routes/",
            {
                "name": "orders to the shop",
                "target": {"mailbox_id": setup.mailbox["id"]},
                "rule_id": rule["id"],
                "action_ids": [action["id"]],
                "stop": True,
            },
        ),
        201,
    )
    return str(route["id"]), str(action["secret"])


def settled_log(client: httpx.Client, setup: Setup, log_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        entry = data(client.get(f"/api/v1/mailbox/{setup.mailbox['id']}/logs/{log_id}/"))
        return entry if entry["automation_pending"] == 0 else None

    found: dict[str, Any] = until(finished)
    return found


def test_build_a_route_via_the_api_then_verify_it_with_test_mail_and_logs(setup: Setup) -> None:
    word = f"order-{uuid.uuid4().hex[:6]}"
    with api(setup) as client, receiver(fail_first(1, 503)) as hook:
        route_id, hook.secret = build_route(client, setup, hook.url, word)
        sent = data(
            write(
                client, f"/api/v1/mailbox/{setup.mailbox['id']}/testmail/", {"subject": f"New {word} 1042"}
            ),
            201,
        )

        received = hook.wait_for(lambda got: any(r.status == 204 for r in got), timeout=30)
        assert [r.status for r in received] == [503, 204]
        assert all(r.verified for r in received)
        assert len({r.webhook_id for r in received}) == 1
        body = received[-1].json()
        assert (body["order"], body["route"]) == (f"New {word} 1042", "orders to the shop")

        entry = settled_log(client, setup, sent["log_id"])
        assert entry["test"] is True
        assert [r["id"] for r in entry["automation"]["routes"] if r["matched"]] == [route_id]
        (logged,) = entry["automation"]["actions"]
        assert (logged["status"], logged["attempts"], logged["mode"]) == ("done", 2, "async")
        assert logged["detail"]["status_code"] == 204

        archive = data(
            client.get(f"/api/v1/mailbox/{setup.mailbox['id']}/archives/", params={"route": route_id})
        )
        assert [m["subject"] for m in archive] == [f"New {word} 1042"]


def test_mail_over_smtp_takes_the_same_route_and_other_mail_does_not(setup: Setup) -> None:
    word = f"order-{uuid.uuid4().hex[:6]}"
    with api(setup) as client, receiver() as hook:
        _, hook.secret = build_route(client, setup, hook.url, word)
        smtp(setup, f"Unrelated {uuid.uuid4().hex[:6]}")
        subject = f"Re: {word} shipped"
        smtp(setup, subject)
        message = until(lambda: stored_message(setup, subject))
        received = hook.wait_for(bool, timeout=30)
        assert [r.json()["order"] for r in received] == [subject]
        assert received[0].verified
        log_id = "log_" + str(message["id"]).partition("_")[2]  # an entry's id names its message
        entry = settled_log(client, setup, log_id)
        assert entry.get("test") in (None, False)
        assert [a["status"] for a in entry["automation"]["actions"]] == ["done"]
