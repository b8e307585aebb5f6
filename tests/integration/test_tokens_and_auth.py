"""Tokens, authentication and scopes, through the authorizer and the API functions."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mailroom.domain.tokens import parse_token
from mailroom.services.organizations import NewOrganization
from mailroom.store import tokens
from mailroom.store.table import Table
from tests.support.lambda_api import call

KEY = {"Idempotency-Key": "k-1"}


def create_token(admin: str, key: str, **body: Any) -> Any:
    return call(
        "tokens", "POST", "/api/v1/tokens", token=admin, json_body=body, headers={"Idempotency-Key": key}
    )


def test_me_describes_the_calling_token(org: NewOrganization) -> None:
    response = call(
        "account", "GET", "/api/v1/me", token=org.admin_token, headers={"X-Request-Id": "trace-42"}
    )
    assert response.status == 200
    assert response.headers["x-request-id"] == "trace-42"
    me = response.json()["data"]
    assert me["type"] == "ops"
    assert me["name"] == "admin"
    assert me["organization"] == {"id": org.organization["id"], "name": "Acme"}
    assert "tokens:manage" in me["scopes"]


def test_request_id_is_generated_when_absent_or_unsafe(org: NewOrganization) -> None:
    plain = call("account", "GET", "/api/v1/me", token=org.admin_token)
    assert plain.headers["x-request-id"].startswith("req_")
    unsafe = call("account", "GET", "/api/v1/me", token=org.admin_token, headers={"X-Request-Id": "a b\tc"})
    assert unsafe.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "mr_live_" + "A" * 38,  # right shape, wrong checksum
        "mr_live_short",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_bad_tokens_get_401_in_the_envelope(org: NewOrganization, token: str) -> None:
    response = call("account", "GET", "/api/v1/me", token=token)
    assert response.status == 401
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["retryable"] is False
    assert set(error) >= {"code", "message", "hint", "request_id", "retryable"}


def test_a_well_formed_unknown_token_is_401(org: NewOrganization) -> None:
    from mailroom.domain.tokens import TokenType, issue_token

    never_stored = issue_token(TokenType.OPS).plaintext
    assert call("account", "GET", "/api/v1/me", token=never_stored).error_code == "unauthenticated"


def test_create_list_and_revoke_a_token(org: NewOrganization, table: Table) -> None:
    created = create_token(org.admin_token, "create-reader", name="reader", scopes=["account:read"])
    assert created.status == 201
    data = created.json()["data"]
    plaintext = data["token"]
    assert plaintext.startswith("mr_live_") and parse_token(plaintext) is not None
    assert data["last_four"] == plaintext[-4:]
    stored = tokens.get(table, org.organization["id"], data["id"])
    assert stored is not None and stored["token_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in str(stored)

    reader = call("account", "GET", "/api/v1/account", token=plaintext)
    assert reader.status == 200
    assert reader.json()["data"]["usage"]["tokens"] == 2

    listed = call("tokens", "GET", "/api/v1/tokens", token=org.admin_token)
    assert listed.status == 200
    body = listed.json()
    assert body["meta"]["total"] == 2
    assert {t["name"] for t in body["data"]} == {"admin", "reader"}
    assert plaintext not in listed.body.decode()
    assert all("token" not in t and "token_hash" not in t for t in body["data"])

    revoked = call("tokens", "DELETE", f"/api/v1/tokens/{data['id']}", token=org.admin_token)
    assert revoked.status == 204
    assert call("account", "GET", "/api/v1/me", token=plaintext).error_code == "unauthenticated"
    again = call("tokens", "DELETE", f"/api/v1/tokens/{data['id']}", token=org.admin_token)
    assert again.status == 404 and again.error_code == "not_found"


def test_missing_scope_is_403_insufficient_scope(org: NewOrganization) -> None:
    reader = create_token(org.admin_token, "r", name="reader", scopes=["account:read"]).json()["data"][
        "token"
    ]
    response = call("tokens", "GET", "/api/v1/tokens", token=reader)
    assert response.status == 403
    assert response.error_code == "insufficient_scope"
    assert "tokens:manage" in response.json()["error"]["message"]


def test_a_token_cannot_grant_scopes_it_lacks(org: NewOrganization) -> None:
    manager = create_token(org.admin_token, "m", name="mgr", scopes=["tokens:manage"]).json()["data"]["token"]
    response = create_token(manager, "esc", name="wider", scopes=["tokens:manage", "domains:delete"])
    assert response.status == 403
    assert response.error_code == "scope_escalation"


def test_expired_tokens_are_refused(org: NewOrganization, table: Table) -> None:
    created = create_token(
        org.admin_token, "exp", name="soon", scopes=["account:read"], expires_at="2099-01-01T00:00:00Z"
    ).json()["data"]
    assert created["expires_at"] == "2099-01-01T00:00:00.000Z"
    # Move the stored expiry into the past, as time passing would.
    table.update(
        f"ORG#{org.organization['id']}",
        f"TOKEN#{created['id']}",
        "SET expires_at_epoch = :past",
        expression_values={":past": {"N": "1000"}},
    )
    response = call("account", "GET", "/api/v1/me", token=created["token"])
    assert response.status == 401
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["account:read", "nope:never"]}, "scopes"),
        ({"name": "", "scopes": ["account:read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["account:read"], "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "scopes": ["account:read"], "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "scopes": ["account:read"], "surprise": True}, "surprise"),
        ({"name": "x", "scopes": ["messages:read"]}, "scopes"),
    ],
)
def test_invalid_token_requests_are_422_with_the_failing_field(
    org: NewOrganization, body: dict[str, Any], field: str
) -> None:
    response = create_token(org.admin_token, f"bad-{field}-{len(str(body))}", **body)
    assert response.status == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(f["field"] == field for f in error["fields"]), error


def test_message_scopes_are_not_ops_scopes(org: NewOrganization) -> None:
    response = create_token(org.admin_token, "msg", name="x", scopes=["messages:send"])
    assert response.status == 422


def test_used_at_is_recorded_by_the_authorizer(org: NewOrganization, table: Table) -> None:
    created = create_token(org.admin_token, "u", name="user", scopes=["account:read"]).json()["data"]
    assert created["used_at"] is None
    call("account", "GET", "/api/v1/account", token=created["token"])
    item = tokens.get(table, org.organization["id"], created["id"])
    assert item is not None and item.get("used_at")


def test_an_aws_outage_neither_refuses_a_valid_token_nor_fails_the_authorizer(
    org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed authorizer is API Gateway's own 500, outside the envelope: the lookup is tried
    through a brief outage, and recording the token's use is never a reason to fail."""
    from mailroom.store.errors import ServiceUnavailable, Throttled

    real_find, failures = tokens.find_by_hash, [Throttled("slow"), ServiceUnavailable("down")]

    def flaky_find(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real_find(*args, **kwargs)

    def touch_down(*args: Any, **kwargs: Any) -> None:
        raise ServiceUnavailable("down")

    monkeypatch.setattr(tokens, "find_by_hash", flaky_find)
    monkeypatch.setattr(tokens, "touch", touch_down)
    response = call("account", "GET", "/api/v1/me", token=org.admin_token)
    assert response.status == 200 and failures == []


def test_organizations_are_isolated(org: NewOrganization, other_org: NewOrganization) -> None:
    a_token = create_token(org.admin_token, "a", name="a-reader", scopes=["account:read"]).json()["data"]
    listed_by_b = call("tokens", "GET", "/api/v1/tokens", token=other_org.admin_token).json()
    assert [t["name"] for t in listed_by_b["data"]] == ["admin"]
    assert a_token["id"] not in str(listed_by_b)
    revoke = call("tokens", "DELETE", f"/api/v1/tokens/{a_token['id']}", token=other_org.admin_token)
    assert revoke.status == 404
    assert call("account", "GET", "/api/v1/me", token=a_token["token"]).status == 200
    me_b = call("account", "GET", "/api/v1/me", token=other_org.admin_token).json()["data"]
    assert me_b["organization"]["id"] == other_org.organization["id"]
    # B's audit log holds only B's own (failed) revoke attempt, nothing of A's.
    audit_b = call("audit", "GET", "/api/v1/audit-log", token=other_org.admin_token).json()
    assert [(r["action"], r["outcome"]["status"]) for r in audit_b["data"]] == [("token.revoke", 404)]
    assert audit_b["meta"]["total"] == 1
