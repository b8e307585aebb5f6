"""Events end to end through the local stack: the WebSocket API with the ``websockets`` client (mail
over SMTP → the stream consumer → a frame, with the event id the webhook receiver verifies with
the standardwebhooks library), an EventBridge destination (moto's EventBridge, a rule to an SQS
queue, read back), the event log, and a replay of a time range."""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import boto3
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.webhooks import Received, Receiver, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("events")]
ACCOUNT = "123456789012"  # the local stack's (moto's) account
FRAME_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def events_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with start_stack(
        tmp_path_factory.mktemp("state"),
        MAILROOM_PARAMETER_OVERRIDES=f"EventBridgeDestinationAccounts={ACCOUNT}",
        MAILROOM_WEBHOOK_RETRY_SCHEDULE="1,1,1",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def admin(events_stack: LocalStackProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {events_stack.admin_token}"}
    with httpx.Client(base_url=events_stack.api_url, headers=headers, timeout=30) as http:
        yield http


def post(http: httpx.Client, path: str, body: Any = None, status: int = 201) -> Any:
    response = http.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == status, response.text
    return response.json()["data"]


@pytest.fixture(scope="module")
def mailboxes(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    domain = post(admin, "/api/v1/domains", {"domain": f"ev-{uuid.uuid4().hex[:8]}.example.com"})
    return {
        name: post(
            admin,
            "/api/v1/mailboxes",
            {"local_part": name, "domain": domain["domain"], "password": "Correct-Horse-42"},
        )
        for name in ("alpha", "beta")
    }


@pytest.fixture(scope="module")
def hook(admin: httpx.Client) -> Iterator[Receiver]:
    """A webhook receiver for every message.received of the organization, verifying signatures."""
    with receiver() as running:
        webhook = post(admin, "/api/v1/webhooks", {"url": running.url, "event_types": ["message.received"]})
        running.secret = webhook["secret"]
        running.webhook = webhook  # type: ignore[attr-defined]
        yield running


def send_mail(stack: LocalStackProcess, to: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.net>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    message.set_content("hello\n")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        smtp.send_message(message)


def webhook_of(hook: Receiver, subject: str) -> Received:
    def found(got: list[Received]) -> bool:
        return any(r.json()["data"].get("subject") == subject for r in got)

    received = hook.wait_for(found, timeout=FRAME_TIMEOUT)
    return next(r for r in received if r.json()["data"].get("subject") == subject)


def ws(stack: LocalStackProcess, token: str) -> ClientConnection:
    return connect(stack.ws_url, subprotocols=["mailroom", token], open_timeout=15)  # type: ignore[list-item]


def frame(connection: ClientConnection, timeout: float = FRAME_TIMEOUT) -> dict[str, Any]:
    return json.loads(connection.recv(timeout=timeout))  # type: ignore[no-any-return]


def test_a_subscription_gets_exactly_its_inboxs_event_with_the_webhooks_id(
    events_stack: LocalStackProcess, mailboxes: dict[str, dict[str, Any]], hook: Receiver
) -> None:
    alpha, beta = mailboxes["alpha"], mailboxes["beta"]
    with ws(events_stack, events_stack.admin_token) as connection:
        assert connection.subprotocol == "mailroom"
        connection.send(
            json.dumps({"type": "subscribe", "event_types": ["message.received"], "inbox_ids": [alpha["id"]]})
        )
        subscribed = frame(connection)
        assert subscribed["type"] == "subscribed" and subscribed["inbox_ids"] == [alpha["id"]]
        assert subscribed["event_types"] == ["message.received"]

        tag = uuid.uuid4().hex[:8]
        send_mail(events_stack, alpha["address"], f"for alpha {tag}")
        send_mail(events_stack, beta["address"], f"for beta {tag}")
        event = frame(connection)
        assert event["type"] == "event" and event["event_type"] == "message.received"
        assert event["data"]["mailbox_id"] == alpha["id"] and event["data"]["subject"] == f"for alpha {tag}"

        delivered = webhook_of(hook, f"for alpha {tag}")
        assert delivered.verified and delivered.webhook_id == event["event_id"]
        # Beta's event reached the webhook, so its fan-out (which pushes first) is done: no frame.
        webhook_of(hook, f"for beta {tag}")
        with pytest.raises(TimeoutError):
            connection.recv(timeout=0.5)

        connection.send(json.dumps({"type": "unsubscribe", "subscription_id": subscribed["subscription_id"]}))
        assert frame(connection) == {
            "type": "unsubscribed",
            "subscription_ids": [subscribed["subscription_id"]],
        }


def test_a_message_token_sees_only_its_mailbox(
    events_stack: LocalStackProcess, admin: httpx.Client, mailboxes: dict[str, dict[str, Any]]
) -> None:
    alpha, beta = mailboxes["alpha"], mailboxes["beta"]
    token = post(
        admin, f"/api/v1/mailboxes/{alpha['id']}/message-tokens", {"name": "ws", "scopes": ["messages:read"]}
    )["token"]
    # The query parameter works as well as the subprotocol.
    with connect(f"{events_stack.ws_url}?token={token}", open_timeout=15) as connection:
        connection.send(json.dumps({"type": "subscribe", "inbox_ids": [beta["id"]]}))
        refused = frame(connection)
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        connection.send(json.dumps({"type": "subscribe", "event_types": ["domain.verified"]}))
        assert frame(connection)["code"] == "validation_error"  # not an event of a mailbox
        connection.send(json.dumps({"type": "subscribe"}))
        own = frame(connection)
        assert own["type"] == "subscribed" and own["inbox_ids"] == [alpha["id"]]
        connection.send(json.dumps({"type": "dance"}))
        assert frame(connection)["code"] == "validation_error"


@pytest.mark.parametrize("token", ["mr_live_not-a-real-token", ""])
def test_a_bad_token_is_refused_at_connect(events_stack: LocalStackProcess, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{events_stack.ws_url}?token={token}", open_timeout=15)
    assert refused.value.response.status_code == 401


def test_an_eventbridge_destination_receives_the_events(
    events_stack: LocalStackProcess, admin: httpx.Client, mailboxes: dict[str, dict[str, Any]]
) -> None:
    aws = {
        "endpoint_url": events_stack.moto_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    bus = boto3.client("events", **aws)
    sqs = boto3.client("sqs", **aws)
    name = f"customer-{uuid.uuid4().hex[:8]}"
    bus_arn = bus.create_event_bus(Name=name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["mailroom"]}))
    bus.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}])

    webhook = post(admin, "/api/v1/webhooks", {"event_bus_arn": bus_arn, "event_types": ["message.received"]})
    assert webhook["destination"] == "eventbridge"
    subject = f"to the bus {uuid.uuid4().hex[:8]}"
    send_mail(events_stack, mailboxes["alpha"]["address"], subject)

    deadline = time.monotonic() + FRAME_TIMEOUT
    got: list[dict[str, Any]] = []
    while not got and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        got = [json.loads(m["Body"]) for m in messages]
    (event,) = got
    assert event["source"] == "mailroom" and event["detail-type"] == "message.received"
    assert event["detail"]["data"]["subject"] == subject
    deliveries = admin.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json()["data"]
    assert [d["event_id"] for d in deliveries] == [event["detail"]["event_id"]]


def test_the_event_log_and_a_replay_of_a_range(
    events_stack: LocalStackProcess, admin: httpx.Client, mailboxes: dict[str, dict[str, Any]], hook: Receiver
) -> None:
    beta = mailboxes["beta"]
    since = datetime.now(UTC).isoformat()
    tag = uuid.uuid4().hex[:8]
    subjects = [f"replay {tag} {n}" for n in range(3)]
    originals = []
    for subject in subjects:
        send_mail(events_stack, beta["address"], subject)
        originals.append(webhook_of(hook, subject))  # one after another: their events are in order
    ids = [r.webhook_id for r in originals]
    assert ids == sorted(ids)

    logged = admin.get(
        "/api/v1/events", params={"mailbox_id": beta["id"], "event_type": "message.received", "since": since}
    )
    assert logged.status_code == 200, logged.text
    assert [e["id"] for e in logged.json()["data"]] == ids[::-1]  # newest first
    one = admin.get(f"/api/v1/events/{ids[0]}").json()["data"]
    assert one["data"]["subject"] == subjects[0] and one["mailbox_id"] == beta["id"]

    webhook = hook.webhook  # type: ignore[attr-defined]
    before = len(hook.received)
    replay = post(
        admin,
        f"/api/v1/webhooks/{webhook['id']}:replay",
        {"since": since, "include_succeeded": True},
        status=202,
    )
    assert replay["replayed"] == 3 and replay["next_cursor"] is None
    again = hook.wait_for(lambda got: len(got) >= before + 3, timeout=FRAME_TIMEOUT)[before:]
    assert sorted(r.webhook_id for r in again) == ids  # the same ids, each once more
    assert all(r.verified for r in again)
    assert [r.json() for r in sorted(again, key=lambda r: r.webhook_id)] == [r.json() for r in originals]
