"""The WebSocket API under moto: the websocket function invoked with API Gateway's events
(events/websocket_*.json), and the stream consumer pushing to connections through the management
API of a real local WebSocket server (local/websocket.py) that a ``websockets`` client is on."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from local.websocket import WebSocketApiSpec, WebSocketGateway, WebSocketRoute, WebSocketServer
from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_api_key, issue_ops_token
from mailroom.settings import get_settings
from mailroom.store import keys, ws_connections
from mailroom.store.table import Table
from tests.integration.test_webhooks_delivery import fan_out, record_event
from tests.support.lambda_api import LambdaContext, function_module, load_event
from tests.support.mailboxes import add_domain, create_mailbox, ok, post
from tests.support.webhooks import WebhookAws, provision_webhook_aws

_ids = iter(range(10**6))


def handler(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = function_module("websocket").handler(
        event, LambdaContext(function_name="websocket")
    )
    return result


def new_connection_id() -> str:
    return f"conn{next(_ids):010d}="


def connect_event(
    connection_id: str, *, token: str | None = None, protocols: str | None = None
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("websocket_connect.json"))
    event["requestContext"]["connectionId"] = connection_id
    event["headers"].pop("Sec-WebSocket-Protocol")
    event["multiValueHeaders"].pop("Sec-WebSocket-Protocol")
    if protocols is not None:
        event["headers"]["Sec-WebSocket-Protocol"] = protocols
    if token is not None:
        event["queryStringParameters"] = {"token": token}
    return event


def message_event(connection_id: str, body: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("websocket_message.json"))
    event["requestContext"]["connectionId"] = connection_id
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def frame(connection_id: str, body: Any) -> dict[str, Any]:
    answer = handler(message_event(connection_id, body))
    assert answer["statusCode"] == 200
    return json.loads(answer["body"])  # type: ignore[no-any-return]


def connected(token: str) -> str:
    connection_id = new_connection_id()
    answer = handler(connect_event(connection_id, protocols=f"mailroom, {token}"))
    assert answer["statusCode"] == 200, answer
    assert answer["headers"] == {"Sec-WebSocket-Protocol": "mailroom"}
    return connection_id


@pytest.fixture
def mailbox_ids(org: NewOrganization) -> dict[str, str]:
    add_domain(org)
    return {name: ok(create_mailbox(org, name), 201)["id"] for name in ("alpha", "beta")}


def test_connect_takes_the_token_from_the_subprotocol_or_the_query(org: NewOrganization, table: Table):
    by_protocol = connected(org.admin_token)
    by_query = new_connection_id()
    answer = handler(connect_event(by_query, token=org.admin_token))
    assert answer == {"statusCode": 200}  # no subprotocol offered: none chosen
    for connection_id in (by_protocol, by_query):
        item = ws_connections.find(table, connection_id)
        assert item is not None and item["org_id"] == org.organization["id"]
        assert item["token_type"] == "ops" and item.get("mailbox_id") is None and item["ttl"] > 0


def test_an_api_key_connects_and_subscribes_to_its_organization(
    org: NewOrganization, table: Table, mailbox_ids
):
    key = issue_api_key(table, org_id=org.organization["id"], name="agent", created_by=None).plaintext
    assert key.startswith("inai_")
    connection_id = connected(key)
    item = ws_connections.find(table, connection_id)
    assert item is not None and item["org_id"] == org.organization["id"] and item["token_type"] == "api_key"
    subscribed = frame(connection_id, {"type": "subscribe", "inbox_ids": [mailbox_ids["beta"]]})
    assert subscribed["type"] == "subscribed" and subscribed["inbox_ids"] == [mailbox_ids["beta"]]
    assert "domain.verified" in subscribed["event_types"]  # organization-wide, unlike a message token's


def test_connect_refuses_bad_tokens_and_missing_scopes(org: NewOrganization, table: Table, mailbox_ids):
    def status(**kwargs: Any) -> int:
        connection_id = new_connection_id()
        answer = handler(connect_event(connection_id, **kwargs))
        if answer["statusCode"] != 200:
            assert ws_connections.find(table, connection_id) is None
            assert json.loads(answer["body"])["type"] == "error"
        return int(answer["statusCode"])

    assert status() == 401
    assert status(token="mr_live_garbage") == 401
    assert status(protocols="mailroom") == 401
    mail_only = issue_ops_token(
        table, org_id=org.organization["id"], name="mail", scopes=["mailboxes:read"], created_by=None
    ).plaintext
    assert status(token=mail_only) == 403
    sender = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{mailbox_ids['alpha']}/message-tokens",
            {"name": "send only", "scopes": ["messages:send"]},
        ),
        201,
    )["token"]
    assert status(token=sender) == 403


def test_an_organization_has_a_connection_limit(org: NewOrganization, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAILROOM_WEBSOCKET_MAX_CONNECTIONS", "2")
    get_settings.cache_clear()
    connected(org.admin_token)
    connected(org.admin_token)
    refused = handler(connect_event(new_connection_id(), token=org.admin_token))
    assert refused["statusCode"] == 429


def test_subscribe_and_unsubscribe_frames(
    org: NewOrganization, other_org: NewOrganization, table: Table, mailbox_ids
):
    connection_id = connected(org.admin_token)
    everything = frame(connection_id, {"type": "subscribe"})
    assert everything["type"] == "subscribed" and everything["inbox_ids"] == []
    assert "domain.verified" in everything["event_types"]
    alpha = frame(
        connection_id,
        {"type": "subscribe", "event_types": ["message.received"], "inbox_ids": [mailbox_ids["alpha"]]},
    )
    assert alpha["event_types"] == ["message.received"] and alpha["inbox_ids"] == [mailbox_ids["alpha"]]
    item = ws_connections.find(table, connection_id)
    assert item is not None and [s["id"] for s in item["subscriptions"]] == [
        everything["subscription_id"],
        alpha["subscription_id"],
    ]

    gone = frame(connection_id, {"type": "unsubscribe", "subscription_id": everything["subscription_id"]})
    assert gone == {"type": "unsubscribed", "subscription_ids": [everything["subscription_id"]]}
    assert frame(connection_id, {"type": "unsubscribe", "subscription_id": "sub_nope"})["code"] == "not_found"
    assert frame(connection_id, {"type": "unsubscribe"})["subscription_ids"] == [alpha["subscription_id"]]
    assert frame(connection_id, {"type": "ping"}) == {"type": "pong"}

    add_domain(other_org, "example.org")
    foreign = ok(create_mailbox(other_org, "theirs", "example.org"), 201)["id"]
    errors = {
        "not json": "validation_error",
        json.dumps([1, 2]): "validation_error",
        json.dumps({"type": "publish"}): "validation_error",
        json.dumps({"type": "subscribe", "event_types": ["message.eaten"]}): "validation_error",
        json.dumps({"type": "subscribe", "extra": 1}): "validation_error",
        json.dumps({"type": "subscribe", "inbox_ids": [""]}): "validation_error",
        json.dumps({"type": "subscribe", "inbox_ids": [foreign]}): "unknown_mailbox",
        json.dumps({"type": "subscribe", "inbox_ids": "mbx"}): "validation_error",
        "x" * 40_000: "validation_error",
    }
    for body, code in errors.items():
        answer = frame(connection_id, body)
        assert answer["type"] == "error" and answer["code"] == code, (body[:40], answer)


def test_a_connection_has_at_most_twenty_subscriptions(org: NewOrganization):
    connection_id = connected(org.admin_token)
    for _ in range(20):
        assert frame(connection_id, {"type": "subscribe"})["type"] == "subscribed"
    assert frame(connection_id, {"type": "subscribe"})["code"] == "limit_reached"


def test_a_message_token_connection_is_held_to_its_mailbox(org: NewOrganization, mailbox_ids):
    token = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{mailbox_ids['alpha']}/message-tokens",
            {"name": "reader", "scopes": ["messages:read"]},
        ),
        201,
    )["token"]
    connection_id = connected(token)
    assert (
        frame(connection_id, {"type": "subscribe", "inbox_ids": [mailbox_ids["beta"]]})["code"] == "forbidden"
    )
    own = frame(connection_id, {"type": "subscribe", "event_types": ["message.received"]})
    assert own["inbox_ids"] == [mailbox_ids["alpha"]]


def test_disconnect_forgets_the_connection(org: NewOrganization, table: Table):
    connection_id = connected(org.admin_token)
    event = copy.deepcopy(load_event("websocket_disconnect.json"))
    event["requestContext"]["connectionId"] = connection_id
    assert handler(event) == {"statusCode": 200}
    assert ws_connections.find(table, connection_id) is None
    assert table.get(keys.ws_route_pk(connection_id), "#CONN") is None
    assert handler(event) == {"statusCode": 200}  # API Gateway may say it twice
    assert frame(connection_id, {"type": "subscribe"})["code"] == "unauthenticated"


# ----------------------------------------------------------------------------- the push


class HandlerInvoker:
    """The local gateway's invoker, running the websocket function's real handler on a thread."""

    async def invoke_async(self, ref: str, event: Any, **_: Any) -> Any:
        return await asyncio.to_thread(handler, json.loads(json.dumps(event)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def websocket_api(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local WebSocket API on a free port routing every route to the websocket function; its
    management endpoint is the stream consumer's MAILROOM_WEBSOCKET_ENDPOINT."""
    port = free_port()
    routes = {
        key: WebSocketRoute(key=key, function="websocket", two_way=key not in ("$connect", "$disconnect"))
        for key in ("$connect", "$disconnect", "subscribe", "unsubscribe", "$default")
    }
    api = WebSocketApiSpec(
        logical_id="WebSocketApi", api_id="local", stage="events", selection_field="type", routes=routes
    )
    server = WebSocketServer(WebSocketGateway(api, HandlerInvoker(), domain=f"127.0.0.1:{port}"), port=port)
    server.start()
    monkeypatch.setenv("MAILROOM_WEBSOCKET_ENDPOINT", f"http://127.0.0.1:{port}/events")
    get_settings.cache_clear()
    yield f"ws://127.0.0.1:{port}/events"
    server.stop()


@pytest.fixture
def wh_aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> WebhookAws:
    return provision_webhook_aws(monkeypatch)


def test_the_stream_consumer_pushes_matching_events_in_order_and_drops_gone_connections(
    org: NewOrganization,
    other_org: NewOrganization,
    table: Table,
    wh_aws: WebhookAws,
    websocket_api: str,
    mailbox_ids: dict[str, str],
):
    alpha, beta = mailbox_ids["alpha"], mailbox_ids["beta"]
    gone = connected(org.admin_token)  # recorded, but no such connection on the server
    frame(gone, {"type": "subscribe"})
    with connect(websocket_api, subprotocols=["mailroom", org.admin_token], open_timeout=10) as client:  # type: ignore[list-item]
        client.send(
            json.dumps({"type": "subscribe", "event_types": ["message.received"], "inbox_ids": [alpha]})
        )
        assert json.loads(client.recv(timeout=10))["type"] == "subscribed"
        wanted = [
            record_event(table, org, "message.received", {"id": f"msg_{n}", "mailbox_id": alpha})
            for n in range(3)
        ]
        others = [
            record_event(table, org, "message.received", {"id": "msg_b", "mailbox_id": beta}),
            record_event(table, org, "domain.verified", {"id": "dom_1"}),
            record_event(table, other_org, "message.received", {"id": "msg_x", "mailbox_id": alpha}),
        ]
        assert fan_out(wanted[0], others[0], wanted[1], others[1], others[2], wanted[2]) == {
            "batchItemFailures": []
        }
        got = [json.loads(client.recv(timeout=10)) for _ in wanted]
        assert [g["event_id"] for g in got] == [e["event_id"] for e in wanted]
        assert got[0] == {
            "type": "event",
            "event_id": wanted[0]["event_id"],
            "event_type": "message.received",
            "created_at": wanted[0]["created_at"],
            "data": {"id": "msg_0", "mailbox_id": alpha},
        }
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)
        assert ws_connections.find(table, gone) is None  # 410 from the management API: removed

        # The rest of the management API: describe the live connection, then close it.
        (live,) = ws_connections.of_organization(table, org.organization["id"])
        management = boto3.client(
            "apigatewaymanagementapi", endpoint_url=get_settings().websocket_endpoint, region_name="us-east-1"
        )
        described = management.get_connection(ConnectionId=live["id"])
        assert described["Identity"]["SourceIp"] == "127.0.0.1" and described["ConnectedAt"]
        management.delete_connection(ConnectionId=live["id"])
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
    deadline = time.monotonic() + 10
    while ws_connections.find(table, live["id"]) is not None:  # $disconnect ran
        assert time.monotonic() < deadline
        time.sleep(0.05)
