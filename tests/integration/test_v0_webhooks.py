"""/api/v0/webhooks through the authorizer and the webhooks function, under moto: the same webhook
items as /api/v1 (``inbox_ids`` is the mailbox filter), and the same delivery: mail to a platform
inbox → the outbox event → fan-out → a signed delivery the v0 create response's secret verifies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import events
from mailroom.store import webhooks as store
from mailroom.store.table import Table
from tests.integration.test_webhooks_delivery import deliver_until, fan_out, queue_counts
from tests.support import inbound as sim
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import create_mail_infrastructure
from tests.support.v0 import TIMESTAMP, v0_error
from tests.support.webhooks import Receiver, WebhookAws, provision_webhook_aws, receiver

HOOKS = "/api/v0/webhooks"
URL = "https://your-app.example.test/webhooks/email"
FIELDS = {"webhook_id", "url", "event_types", "inbox_ids", "enabled", "client_id", "created_at", "updated_at"}
SPEC_EVENT_TYPES = [
    "message.received",
    "message.sent",
    "message.delivered",
    "message.bounced",
    "message.complained",
    "message.rejected",
    "domain.verified",
]


@pytest.fixture
def wh_aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> WebhookAws:
    return provision_webhook_aws(monkeypatch, schedule="0,0,0")


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under .example.test resolve to a public address; nothing leaves the machine."""
    import mailroom.webhook_http as webhook_http

    async def resolver(host: str, port: int) -> list[str]:
        return ["10.1.2.3"] if host.startswith("internal.") else ["93.184.215.14"]

    monkeypatch.setattr(webhook_http, "system_resolver", resolver)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def create(token: str, **body: Any) -> Result:
    return call("agent_webhooks", "POST", HOOKS, token=token, json_body={"url": URL, **body})


def created(token: str, **body: Any) -> dict[str, Any]:
    result = create(token, **{"event_types": ["message.received"], **body})
    assert result.status == 200, (result.status, result.body)
    return result.json()  # type: ignore[no-any-return]


def patch(token: str, webhook_id: str, **body: Any) -> Result:
    return call("agent_webhooks", "PATCH", f"{HOOKS}/{webhook_id}", token=token, json_body=body)


def inbox(token: str, username: str) -> str:
    result = call("agent_inboxes", "POST", "/api/v0/inboxes", token=token, json_body={"username": username})
    assert result.status == 200, result.body
    return str(result.json()["inbox_id"])


def test_create_shows_the_secret_once(org: NewOrganization, wh_aws: WebhookAws, table: Table) -> None:
    box = inbox(org.admin_token, "agent-1")
    body = created(org.admin_token, event_types=SPEC_EVENT_TYPES, inbox_ids=[box], client_id="my-integration")
    assert set(body) == FIELDS | {"secret"}
    assert body["webhook_id"].startswith("wh_") and body["secret"].startswith("whsec_")
    assert (body["url"], body["event_types"], body["inbox_ids"]) == (URL, SPEC_EVENT_TYPES, [box])
    assert (body["enabled"], body["client_id"]) == (True, "my-integration")
    assert TIMESTAMP.match(body["created_at"]) and body["created_at"] == body["updated_at"]

    shown = {k: v for k, v in body.items() if k != "secret"}
    fetched = call("agent_webhooks", "GET", f"{HOOKS}/{body['webhook_id']}", token=org.admin_token)
    assert fetched.json() == shown
    listing = call("agent_webhooks", "GET", HOOKS, token=org.admin_token).json()
    assert listing == {"data": [shown], "total": 1, "page": 1, "page_size": 20}
    item = store.get(table, org.organization["id"], body["webhook_id"])
    assert item is not None and body["secret"] not in repr(item)  # only the KMS ciphertext is kept
    # The same webhook through v1: inbox_ids is its mailbox filter.
    v1 = call("webhooks", "GET", f"/api/v1/webhooks/{body['webhook_id']}", token=org.admin_token).json()[
        "data"
    ]
    assert (v1["mailbox_ids"], v1["client_id"], v1["secret_last_four"]) == (
        [box],
        "my-integration",
        body["secret"][-4:],
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": []}, "event_types"),
        ({"event_types": ["message.opened"]}, "event_types"),
        ({"event_types": ["migration.completed"]}, "event_types"),  # v1 only
        ({"event_types": ["message.received"], "inbox_ids": ["mbx_nope"]}, "inbox_ids"),
        ({"event_types": ["message.received"], "enabled": False}, "enabled"),  # not a create field in v0
        ({"event_types": ["message.received"], "url": "ftp://x.example.test"}, "url"),
        ({"event_types": ["message.received"], "url": "https://internal.example.test/hook"}, "url"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    org: NewOrganization,
    wh_aws: WebhookAws,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any],
    field: str,
) -> None:
    monkeypatch.setenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "0")  # as deployed
    get_settings.cache_clear()
    error = v0_error(create(org.admin_token, **body), 422, "ValidationError")
    assert error["errors"][0]["field"] == field


def test_update_each_field_and_refuse_nulls(org: NewOrganization, wh_aws: WebhookAws) -> None:
    box = inbox(org.admin_token, "agent-1")
    hook = created(org.admin_token)
    changed = patch(
        org.admin_token,
        hook["webhook_id"],
        url="https://new-url.example.test/hook",
        event_types=["message.sent", "message.sent"],
        inbox_ids=[box],
        enabled=False,
    )
    assert changed.status == 200, changed.body
    body = changed.json()
    assert set(body) == FIELDS
    assert body["url"] == "https://new-url.example.test/hook" and body["event_types"] == ["message.sent"]
    assert (body["inbox_ids"], body["enabled"]) == ([box], False)
    assert body["updated_at"] >= hook["updated_at"] and body["created_at"] == hook["created_at"]
    cleared = patch(org.admin_token, hook["webhook_id"], inbox_ids=[], enabled=True).json()
    assert (cleared["inbox_ids"], cleared["enabled"]) == ([], True)
    for bad in (
        {"url": None},
        {"enabled": None},
        {"event_types": ["nope"]},
        {"inbox_ids": ["mbx_x"]},
        {"secret": "x"},
    ):
        v0_error(patch(org.admin_token, hook["webhook_id"], **bad), 422, "ValidationError")


def test_pages_delete_and_tenancy(
    org: NewOrganization, other_org: NewOrganization, wh_aws: WebhookAws
) -> None:
    made = [created(org.admin_token, client_id=f"c{i}")["webhook_id"] for i in range(3)]
    page = call(
        "agent_webhooks", "GET", HOOKS, token=org.admin_token, query={"page": 2, "page_size": 2}
    ).json()
    assert [w["webhook_id"] for w in page["data"]] == made[2:] and page["total"] == 3
    for result in (
        call("agent_webhooks", "GET", f"{HOOKS}/{made[0]}", token=other_org.admin_token),
        patch(other_org.admin_token, made[0], enabled=False),
        call("agent_webhooks", "DELETE", f"{HOOKS}/{made[0]}", token=other_org.admin_token),
        call("agent_webhooks", "GET", f"{HOOKS}/{'w' * 200}", token=org.admin_token),
    ):
        v0_error(result, 404, "NotFoundError")
    deleted = call("agent_webhooks", "DELETE", f"{HOOKS}/{made[0]}", token=org.admin_token)
    assert deleted.status == 204 and deleted.body == b""
    v0_error(call("agent_webhooks", "GET", f"{HOOKS}/{made[0]}", token=org.admin_token), 404, "NotFoundError")
    assert call("agent_webhooks", "GET", HOOKS, token=org.admin_token).json()["total"] == 2
    assert call("agent_webhooks", "GET", HOOKS, token=other_org.admin_token).json()["total"] == 0


def test_mail_to_a_platform_inbox_is_delivered_signed_with_the_v0_secret(
    org: NewOrganization,
    wh_aws: WebhookAws,
    table: Table,
    hook: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    get_settings.cache_clear()
    watched, other = inbox(org.admin_token, "agent-1"), inbox(org.admin_token, "agent-2")
    subscribed = call(
        "agent_webhooks",
        "POST",
        HOOKS,
        token=org.admin_token,
        json_body={"url": hook.url, "event_types": ["message.received"], "inbox_ids": [watched]},
    ).json()
    created(org.admin_token, inbox_ids=[other])  # filters the other inbox: gets nothing
    hook.secret = subscribed["secret"]

    sim.receive(
        bucket, sim.message("For agent one", to="agent-1@mailroom.localhost"), ["agent-1@mailroom.localhost"]
    )
    received = [
        e
        for e in events.list_page(table, org.organization["id"], per_page=100).items
        if e["event_type"] == "message.received"
    ]
    assert len(received) == 1
    assert fan_out(*received) == {"batchItemFailures": []}
    deliver_until(wh_aws, lambda: len(hook.received) == 1 and queue_counts(wh_aws.queue_url) == (0, 0))

    (request,) = hook.received
    payload = Webhook(subscribed["secret"]).verify(request.body, request.headers)
    assert request.verified is True
    assert payload["event_type"] == "message.received" and payload["event_id"] == request.webhook_id
    assert payload["data"]["mailbox_id"] == watched
