"""/api/v1/webhooks through the authorizer and the webhooks function, under moto."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.services.tokens import issue_ops_token
from mailroom.services.webhook_delivery import signing_keys
from mailroom.settings import get_settings
from mailroom.store import audit, keys, webhooks
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.webhooks import WebhookAws, provision_webhook_aws

_keys = itertools.count()


@pytest.fixture
def wh_aws(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> WebhookAws:
    return provision_webhook_aws(monkeypatch)


def post(token: str, path: str, body: Any = None, **headers: str) -> Result:
    headers = {"Idempotency-Key": f"key-{next(_keys)}", **headers}
    return call("webhooks", "POST", path, token=token, json_body=body, headers=headers)


def create(token: str, **overrides: Any) -> Result:
    body = {"url": "https://hooks.example.test/mailroom", "event_types": ["message.received"], **overrides}
    body.setdefault("url", body["url"])
    return post(token, "/api/v1/webhooks", body)


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under .example.test resolve to a public address; nothing leaves the machine."""
    import mailroom.webhook_http as webhook_http

    real = webhook_http.system_resolver

    async def resolver(host: str, port: int) -> list[str]:
        if host.endswith("example.test"):
            return ["93.184.215.14"]
        if host == "internal.example.net":
            return ["10.1.2.3"]
        return await real(host, port)

    monkeypatch.setattr(webhook_http, "system_resolver", resolver)


@pytest.fixture
def strict(wh_aws: WebhookAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """As deployed: https and public addresses only."""
    monkeypatch.setenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "0")
    get_settings.cache_clear()


def test_create_returns_the_secret_once_and_stores_it_encrypted(org: NewOrganization, wh_aws, table: Table):
    created = create(org.admin_token, description="CRM", mailbox_ids=[], client_id="crm-1")
    assert created.status == 201, created.body
    data = created.json()["data"]
    secret = data["secret"]
    assert secret.startswith("whsec_") and data["secret_last_four"] == secret[-4:]
    assert data["id"].startswith("wh_") and data["enabled"] is True
    assert data["event_types"] == ["message.received"] and data["client_id"] == "crm-1"

    item = webhooks.get(table, org.organization["id"], data["id"])
    assert item is not None
    stored = repr(item)
    assert secret not in stored and secret[6:] not in stored  # only the KMS ciphertext is kept
    assert len(signing_keys(item, now_iso="2000-01-01T00:00:00.000Z")) == 1

    fetched = call("webhooks", "GET", f"/api/v1/webhooks/{data['id']}", token=org.admin_token).json()["data"]
    assert "secret" not in fetched
    listing = call("webhooks", "GET", "/api/v1/webhooks", token=org.admin_token).json()
    assert [w["id"] for w in listing["data"]] == [data["id"]]
    assert listing["meta"]["total"] == 1 and "secret" not in listing["data"][0]

    page = audit.list_page(table, org.organization["id"], per_page=10, cursor=None, action="webhook.create")
    assert [r["target"]["id"] for r in page.items] == [data["id"]]


def test_the_idempotent_replay_returns_the_same_webhook(org, wh_aws):
    first = post(
        org.admin_token,
        "/api/v1/webhooks",
        {"url": "https://a.example.test/", "event_types": ["domain.verified"]},
        **{"Idempotency-Key": "same"},
    )
    again = post(
        org.admin_token,
        "/api/v1/webhooks",
        {"url": "https://a.example.test/", "event_types": ["domain.verified"]},
        **{"Idempotency-Key": "same"},
    )
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    listing = call("webhooks", "GET", "/api/v1/webhooks", token=org.admin_token).json()
    assert listing["meta"]["total"] == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"event_types": ["message.opened"]}, "validation_error", "event_types"),
        ({"event_types": []}, "validation_error", "event_types"),
        ({"url": "ftp://hooks.example.test/"}, "invalid_webhook_url", "url"),
        ({"url": "https://user:pw@hooks.example.test/"}, "invalid_webhook_url", "url"),
        ({"mailbox_ids": ["mbx_nope"]}, "unknown_mailbox", "mailbox_ids"),
        ({"colour": "blue"}, "validation_error", "colour"),
    ],
)
def test_invalid_webhooks_are_422(org, wh_aws, body, code, field):
    response = create(org.admin_token, **body)
    assert response.status == 422, response.body
    error = response.json()["error"]
    assert error["code"] == code
    assert error["fields"][0]["field"] == field


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.example.test/", "invalid_webhook_url"),
        ("https://127.0.0.1/hook", "webhook_url_not_allowed"),
        ("https://169.254.169.254/latest", "webhook_url_not_allowed"),
        ("https://[::ffff:10.0.0.1]/", "webhook_url_not_allowed"),
        ("https://internal.example.net/hook", "webhook_url_not_allowed"),
        ("https://does-not-exist.invalid/hook", "webhook_url_unresolvable"),
    ],
)
def test_deployed_rules_refuse_private_and_insecure_urls(org, strict, url, code):
    response = create(org.admin_token, url=url)
    assert response.status == 422, response.body
    assert response.json()["error"]["code"] == code


def test_scopes_are_enforced(org, wh_aws, table):
    reader = issue_ops_token(
        table, org_id=org.organization["id"], name="reader", scopes=["webhooks:read"], created_by=None
    ).plaintext
    assert create(reader).json()["error"]["code"] == "insufficient_scope"
    assert call("webhooks", "GET", "/api/v1/webhooks", token=reader).status == 200
    nothing = issue_ops_token(
        table, org_id=org.organization["id"], name="none", scopes=["domains:read"], created_by=None
    ).plaintext
    assert call("webhooks", "GET", "/api/v1/webhooks", token=nothing).status == 403


def test_another_organization_sees_nothing(org, other_org, wh_aws):
    webhook_id = create(org.admin_token).json()["data"]["id"]
    assert (
        call("webhooks", "GET", f"/api/v1/webhooks/{webhook_id}", token=other_org.admin_token).status == 404
    )
    assert post(other_org.admin_token, f"/api/v1/webhooks/{webhook_id}:test").status == 404
    other = call("webhooks", "GET", "/api/v1/webhooks", token=other_org.admin_token).json()
    assert other["data"] == [] and other["meta"]["total"] == 0


def test_patch_disable_enable_and_change(org, wh_aws):
    webhook_id = create(org.admin_token).json()["data"]["id"]
    path = f"/api/v1/webhooks/{webhook_id}"
    off = call("webhooks", "PATCH", path, token=org.admin_token, json_body={"enabled": False}).json()["data"]
    assert off["enabled"] is False and off["disabled_reason"] == "manual" and off["disabled_at"]
    on = call(
        "webhooks",
        "PATCH",
        path,
        token=org.admin_token,
        json_body={
            "enabled": True,
            "event_types": ["domain.verified", "message.bounced"],
            "description": None,
        },
    ).json()["data"]
    assert on["enabled"] is True and on["disabled_reason"] is None and on["disabled_at"] is None
    assert on["event_types"] == ["domain.verified", "message.bounced"] and on["description"] is None
    bad = call("webhooks", "PATCH", path, token=org.admin_token, json_body={"event_types": None})
    assert bad.status == 422


def test_rotation_keeps_the_old_secret_signing_for_a_day(org, wh_aws, table):
    created = create(org.admin_token).json()["data"]
    rotated = post(org.admin_token, f"/api/v1/webhooks/{created['id']}:rotate-secret")
    assert rotated.status == 200, rotated.body
    data = rotated.json()["data"]
    assert data["secret"] != created["secret"] and data["secret_last_four"] == data["secret"][-4:]
    assert data["previous_secret_expires_at"] > data["secret_rotated_at"]
    item = webhooks.get(table, org.organization["id"], created["id"])
    assert item is not None
    from mailroom.domain.webhooks import secret_key

    now = item["secret_rotated_at"]
    assert signing_keys(item, now_iso=now) == [secret_key(data["secret"]), secret_key(created["secret"])]
    # A day later only the new secret signs.
    assert signing_keys(item, now_iso=data["previous_secret_expires_at"]) == [secret_key(data["secret"])]


def test_delete_and_the_count(org, wh_aws, table):
    ids = [create(org.admin_token).json()["data"]["id"] for _ in range(2)]
    assert call("webhooks", "DELETE", f"/api/v1/webhooks/{ids[0]}", token=org.admin_token).status == 204
    assert call("webhooks", "DELETE", f"/api/v1/webhooks/{ids[0]}", token=org.admin_token).status == 404
    listing = call("webhooks", "GET", "/api/v1/webhooks", token=org.admin_token).json()
    assert [w["id"] for w in listing["data"]] == [ids[1]] and listing["meta"]["total"] == 1


def test_the_organization_limit(wh_aws, table):
    small = create_organization(table, name="Small", limits={"webhooks": 1})
    assert create(small.admin_token).status == 201
    refused = create(small.admin_token)
    assert refused.status == 422 and refused.json()["error"]["code"] == "webhook_limit_reached"


def test_unknown_webhooks_and_deliveries_are_404(org, wh_aws):
    assert call("webhooks", "GET", "/api/v1/webhooks/wh_missing", token=org.admin_token).status == 404
    webhook_id = create(org.admin_token).json()["data"]["id"]
    missing = call(
        "webhooks", "GET", f"/api/v1/webhooks/{webhook_id}/deliveries/dlv_nope", token=org.admin_token
    )
    assert missing.status == 404
    assert post(org.admin_token, f"/api/v1/webhooks/{webhook_id}/deliveries/dlv_nope:retry").status == 404


def test_replay_validates_its_window(org, wh_aws):
    webhook_id = create(org.admin_token).json()["data"]["id"]
    path = f"/api/v1/webhooks/{webhook_id}:replay"
    assert post(org.admin_token, path, {"since": "2020-01-01T00:00:00Z"}).status == 422
    assert (
        post(org.admin_token, path, {"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}).status
        == 422
    )
    assert post(org.admin_token, path, {"since": "2030-01-01T00:00:00"}).status == 422  # no time zone


def test_openapi_lists_the_webhook_endpoints():
    from mailroom.api.openapi import document

    paths = document()["paths"]
    for path in (
        "/api/v1/webhooks",
        "/api/v1/webhooks/{webhook_id}",
        "/api/v1/webhooks/{webhook_id}:rotate-secret",
        "/api/v1/webhooks/{webhook_id}:test",
        "/api/v1/webhooks/{webhook_id}:replay",
        "/api/v1/webhooks/{webhook_id}/deliveries",
        "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}:retry",
    ):
        assert path in paths, path


def test_scopes_catalogue_has_the_webhook_pair():
    assert {"webhooks:read", "webhooks:write"} <= OPS_SCOPES
    assert keys.webhook_sk("wh_1") == "WEBHOOK#wh_1"
