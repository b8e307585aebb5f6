"""Every operation of the API under a plan that excludes its scope: refused by the plan, never by
anything else first (a 404 for a made-up id, a 422 for a missing body would say the gate came too
late), whichever token calls it. The operations come from the OpenAPI document, so a new endpoint
is swept as soon as it exists."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from mailroom.api.openapi import document
from mailroom.api.routers import all_routers
from mailroom.entry.http import api_handler
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.services.tokens import issue_api_key
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, Result, http_event
from tests.support.mailboxes import add_domain, new_mailbox, ok, post
from tests.support.openapi_sweep import Operation, operations
from tests.support.plans import put_on_plan

# What a plan of "account:read" alone still reaches: the calling token and the account.
REACHABLE = {"GET /api/v1/me", "GET /api/v1/account", "GET /api/v0/organizations"}
_keys = itertools.count()


@pytest.fixture(scope="module")
def handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return api_handler(*all_routers())


def secured() -> list[Operation]:
    spec = document()
    return [
        operation
        for operation in operations(spec)
        if spec["paths"][operation.path][operation.method.lower()].get("security")
    ]


def request(handler: Callable[..., dict[str, Any]], operation: Operation, token: str) -> Result:
    url = operation.url(dict.fromkeys(operation.parameters, "x_0000000000"))
    headers = {"Idempotency-Key": f"sweep-{next(_keys)}"}
    event = http_event(operation.method, url, token=token, headers=headers, query=None, body=None)
    response = handler(event, LambdaContext())
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    return Result(status=response["statusCode"], headers=dict(response["headers"]), body=body)


def error_of(result: Result, v0: bool) -> str | None:
    if v0:
        return str(result.json().get("message", ""))
    return result.error_code


def test_every_operation_is_gated_by_the_plan_before_anything_else(
    table: Table, handler: Callable[..., dict[str, Any]]
) -> None:
    org: NewOrganization = create_organization(table, name="Acme")
    org_id = org.organization["id"]
    key = issue_api_key(table, org_id=org_id, name="key", created_by=None).plaintext
    put_on_plan(table, org_id, scopes=["account:read"])
    unexpected = {}
    for operation in secured():
        result = request(handler, operation, key)
        v0 = operation.path.startswith("/api/v0/")
        if operation.key in REACHABLE:
            assert result.status < 400, (operation.key, result.body)
            continue
        gated = result.status == 403 and (
            "plan" in (error_of(result, v0) or "")
            if v0
            else result.error_code in ("plan_api_disabled", "wrong_token_type")
        )
        if not gated:
            unexpected[operation.key] = (result.status, result.body[:200])
    assert unexpected == {}


@pytest.fixture
def reader(table: Table) -> tuple[NewOrganization, str, str]:
    """An organization, an API key of it and a message token holding messages:read only."""
    org = create_organization(table, name="Acme")
    key = issue_api_key(table, org_id=org.organization["id"], name="key", created_by=None).plaintext
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    path = f"/api/v1/mailboxes/{alice['id']}/message-tokens"
    token = ok(post("mailboxes", org.admin_token, path, {"name": "r", "scopes": ["messages:read"]}), 201)[
        "token"
    ]
    return org, key, str(token)


def test_a_token_beyond_the_plan_is_refused_by_every_operation(
    table: Table, handler: Callable[..., dict[str, Any]], reader: tuple[NewOrganization, str, str]
) -> None:
    org, _, token = reader
    put_on_plan(table, org.organization["id"], scopes=["account:read"])
    unexpected = {}
    for operation in secured():
        result = request(handler, operation, token)
        v0 = operation.path.startswith("/api/v0/")
        blocked = result.status == 403 and (
            "plan" in (error_of(result, v0) or "")
            if v0
            else result.error_code == "token_scope_blocked_by_plan"
        )
        if not blocked:
            unexpected[operation.key] = (result.status, result.body[:200])
    assert unexpected == {}


def test_a_read_only_mail_plan_refuses_every_message_write_and_send(
    table: Table, handler: Callable[..., dict[str, Any]], reader: tuple[NewOrganization, str, str]
) -> None:
    """The message-token operations (/api/v1/messages, /api/v1/threads) under a plan with
    messages:read only: every read answers, every write or send is plan_api_disabled."""
    org, key, token = reader
    put_on_plan(table, org.organization["id"], scopes=["account:read", "messages:read"])
    message_operations = [
        op for op in secured() if request(handler, op, key).error_code == "wrong_token_type"
    ]
    assert len(message_operations) >= 20
    unexpected = {}
    for operation in message_operations:
        result = request(handler, operation, token)
        if operation.method == "GET":
            wrong = result.status == 403
        else:
            wrong = (result.status, result.error_code) != (403, "plan_api_disabled")
        if wrong:
            unexpected[operation.key] = (result.status, result.body[:200])
    assert unexpected == {}
