"""/api/v0 credentials and conventions through the authorizer and the v0 functions, under moto:
``inai_`` API keys (lifecycle, used_at, revocation), v1 tokens on v0 (scopes of the same action),
API keys on v1, errors in the v0 shape, the organization, audit, rate limits, idempotency, tenancy,
and the operator CLI's ``create-api-key``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.cli import main
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.domain.tokens import TokenType, issue_token, parse_token
from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_api_key, issue_ops_token
from mailroom.store import organizations, tokens
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.v0 import TIMESTAMP, v0_error

KEYS = "/api/v0/api-keys"


def new_key(token: str, name: str = "my-agent-key", **headers: str) -> Result:
    return call("agent_api_keys", "POST", KEYS, token=token, json_body={"name": name}, headers=headers)


def key_of(org: NewOrganization, name: str = "agent") -> str:
    created = new_key(org.admin_token, name)
    assert created.status == 200, created.body
    return str(created.json()["key"])


def ops_token(table: Table, org: NewOrganization, *scopes: str) -> str:
    org_id = org.organization["id"]
    return issue_ops_token(table, org_id=org_id, name="limited", scopes=scopes, created_by=None).plaintext


def organization(token: str) -> Result:
    return call("agent_organizations", "GET", "/api/v0/organizations", token=token)


# --- API keys ----------------------------------------------------------------------------------------


def test_api_key_lifecycle_create_use_used_at_delete_401(org: NewOrganization, table: Table) -> None:
    created = new_key(org.admin_token)
    assert created.status == 200, created.body
    body = created.json()
    assert set(body) == {"key_id", "name", "prefix", "key", "used_at", "created_at"}
    key = body["key"]
    assert body["key_id"].startswith("key_") and body["name"] == "my-agent-key"
    assert body["used_at"] is None
    assert TIMESTAMP.match(body["created_at"])
    assert parse_token(key) is TokenType.API_KEY
    assert key.startswith("inai_") and key[9] == "_"
    assert body["prefix"] == key[:10] + "..." and body["prefix"].startswith("inai_")

    # Stored only as a hash, counted on the organization, apart from v1's tokens.
    stored = tokens.get(table, org.organization["id"], body["key_id"], token_type=TokenType.API_KEY)
    assert stored is not None and key not in json.dumps(stored)
    org_item = organizations.get(table, org.organization["id"]) or {}
    assert (org_item["api_key_count"], org_item["token_count"]) == (1, 1)

    listed = call("agent_api_keys", "GET", KEYS, token=org.admin_token).json()
    assert listed == {
        "data": [
            {
                "key_id": body["key_id"],
                "name": "my-agent-key",
                "prefix": body["prefix"],
                "used_at": None,
                "created_at": body["created_at"],
            }
        ],
        "total": 1,
        "page": 1,
        "page_size": 20,
    }
    assert key not in json.dumps(listed)

    # Used: the authorizer records it.
    assert organization(key).status == 200
    used = call("agent_api_keys", "GET", KEYS, token=org.admin_token).json()["data"][0]["used_at"]
    assert used is not None and TIMESTAMP.match(used)

    deleted = call("agent_api_keys", "DELETE", f"{KEYS}/{body['key_id']}", token=org.admin_token)
    assert deleted.status == 204 and deleted.body == b""
    v0_error(organization(key), 401, "UnauthorizedError")
    assert call("agent_api_keys", "GET", KEYS, token=org.admin_token).json()["total"] == 0
    again = call("agent_api_keys", "DELETE", f"{KEYS}/{body['key_id']}", token=org.admin_token)
    v0_error(again, 404, "NotFoundError")


def test_a_key_can_revoke_itself(org: NewOrganization) -> None:
    key = key_of(org)
    key_id = call("agent_api_keys", "GET", KEYS, token=key).json()["data"][0]["key_id"]
    assert call("agent_api_keys", "DELETE", f"{KEYS}/{key_id}", token=key).status == 204
    v0_error(call("agent_api_keys", "GET", KEYS, token=key), 401, "UnauthorizedError")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "inai_" + "A" * 43,  # no underscore after the hint
        "inai_AAAA_" + "A" * 38,  # the right shape, a wrong checksum
        "well-formed",  # issued in the test (a random id would differ between xdist workers)
    ],
)
def test_bad_keys_get_401_in_the_v0_shape(org: NewOrganization, token: str) -> None:
    if token == "well-formed":
        token = issue_token(TokenType.API_KEY).plaintext  # never stored
    message = v0_error(organization(token), 401, "UnauthorizedError")["message"]
    assert "token" in message.lower()


def test_the_api_key_name_is_validated(org: NewOrganization) -> None:
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "scopes": ["account:read"]}):
        result = call("agent_api_keys", "POST", KEYS, token=org.admin_token, json_body=body)
        v0_error(result, 422, "ValidationError")
        assert result.json()["errors"]


def test_keys_page_by_number(org: NewOrganization, table: Table) -> None:
    made = [
        issue_api_key(table, org_id=org.organization["id"], name=f"k{i}", created_by=None).item["id"]
        for i in range(5)
    ]

    def page(**query: Any) -> Any:
        result = call("agent_api_keys", "GET", KEYS, token=org.admin_token, query=query)
        assert result.status == 200, result.body
        return result.json()

    first, second, third = page(page_size=2), page(page=2, page_size=2), page(page=3, page_size=2)
    assert [k["key_id"] for k in first["data"] + second["data"] + third["data"]] == made
    assert (second["total"], second["page"], second["page_size"]) == (5, 2, 2)
    assert page(page=4, page_size=2)["data"] == []
    for bad in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"page": "x"}):
        result = call("agent_api_keys", "GET", KEYS, token=org.admin_token, query=bad)
        v0_error(result, 422, "ValidationError")


def test_only_a_holder_of_every_scope_may_create_a_key(org: NewOrganization, table: Table) -> None:
    manager = ops_token(table, org, "tokens:manage")
    refused = new_key(manager)
    assert "every scope" in v0_error(refused, 403, "ForbiddenError")["message"]
    # ...but it may list and revoke them (tokens:manage).
    key_id = json.loads(new_key(org.admin_token).body)["key_id"]
    assert call("agent_api_keys", "GET", KEYS, token=manager).json()["total"] == 1
    assert call("agent_api_keys", "DELETE", f"{KEYS}/{key_id}", token=manager).status == 204
    # A key holds every scope, so a key may make another.
    assert new_key(key_of(org)).status == 200


# --- one credential, two surfaces ---------------------------------------------------------------------


def test_an_api_key_is_an_organization_wide_ops_token_on_v1(org: NewOrganization) -> None:
    key = key_of(org)
    me = call("account", "GET", "/api/v1/me", token=key).json()["data"]
    assert me["type"] == "api_key" and set(me["scopes"]) == OPS_SCOPES
    assert me["organization"]["id"] == org.organization["id"]
    assert call("account", "GET", "/api/v1/account", token=key).status == 200
    # Holding every scope, it may make v1 tokens with any of them (no escalation).
    made = call(
        "tokens",
        "POST",
        "/api/v1/tokens",
        token=key,
        json_body={"name": "ci", "scopes": sorted(OPS_SCOPES)},
        headers={"Idempotency-Key": "k"},
    )
    assert made.status == 201, made.body
    # API keys are not v1 tokens: v1's token list and revocation do not see them.
    listed = call("tokens", "GET", "/api/v1/tokens", token=key).json()
    assert all(t["id"].startswith("tok_") for t in listed["data"]) and listed["meta"]["total"] == 2


def test_v1_tokens_use_v0_with_the_scope_of_the_same_action(org: NewOrganization, table: Table) -> None:
    reader = ops_token(table, org, "account:read")
    assert organization(reader).status == 200
    refused = v0_error(call("agent_inboxes", "GET", "/api/v0/inboxes", token=reader), 403, "ForbiddenError")
    assert "mailboxes:read" in refused["message"]
    inboxes = ops_token(table, org, "mailboxes:read")
    assert call("agent_inboxes", "GET", "/api/v0/inboxes", token=inboxes).status == 200
    v0_error(organization(inboxes), 403, "ForbiddenError")
    domains_reader = ops_token(table, org, "domains:read")  # records need domains:dns:read too
    v0_error(call("agent_domains", "GET", "/api/v0/domains", token=domains_reader), 403, "ForbiddenError")
    full_reader = ops_token(table, org, "domains:read", "domains:dns:read")
    assert call("agent_domains", "GET", "/api/v0/domains", token=full_reader).status == 200
    hooks = ops_token(table, org, "webhooks:read")
    assert call("agent_webhooks", "GET", "/api/v0/webhooks", token=hooks).status == 200
    refused = call(
        "agent_webhooks", "POST", "/api/v0/webhooks", token=hooks, json_body={"url": "https://x.example"}
    )
    v0_error(refused, 403, "ForbiddenError")


def test_message_tokens_are_refused_on_organization_endpoints(org: NewOrganization, table: Table) -> None:
    from mailroom.services import message_tokens, platform_domain
    from mailroom.services.mailboxes import NewMailbox, create_mailbox

    org_id = org.organization["id"]
    domain = platform_domain.domain_for(table, org_id)
    mailbox = create_mailbox(
        table, org_id, NewMailbox(local_part="bot", domain=domain["domain"], password=None), domain=domain
    )
    token = message_tokens.issue(
        table,
        mailbox,
        name="agent",
        scopes=["messages:read"],
        kind="managed",
        created_by=None,
        expires_at=None,
    ).plaintext
    v0_error(organization(token), 403, "ForbiddenError")
    v0_error(call("agent_inboxes", "GET", "/api/v0/inboxes", token=token), 403, "ForbiddenError")


# --- the organization ------------------------------------------------------------------------------------


def test_the_organization_with_its_counts_and_limits(org: NewOrganization, table: Table) -> None:
    key = key_of(org)
    body = organization(key).json()
    item = organizations.get(table, org.organization["id"]) or {}
    assert body == {
        "org_id": org.organization["id"],
        "name": "Acme",
        "inbox_count": 0,
        "inbox_limit": 50,
        "domain_count": 0,
        "domain_limit": 10,
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }
    assert TIMESTAMP.match(body["created_at"])
    created = call("agent_inboxes", "POST", "/api/v0/inboxes", token=key, json_body={"username": "a"})
    assert created.status == 200, created.body
    after = organization(key).json()
    assert (after["inbox_count"], after["domain_count"]) == (1, 0)  # the platform domain is not theirs


def test_wrong_methods_and_unknown_paths_answer_in_the_v0_shape(org: NewOrganization) -> None:
    v0_error(
        call("agent_organizations", "DELETE", "/api/v0/organizations", token=org.admin_token),
        405,
        "MethodNotAllowedError",
    )
    v0_error(call("agent_api_keys", "GET", f"{KEYS}/a/b", token=org.admin_token), 404, "NotFoundError")


# --- the pipeline: tenancy, audit, idempotency, rate limits ---------------------------------------------


def test_keys_are_tenant_scoped(org: NewOrganization, other_org: NewOrganization) -> None:
    key_id = json.loads(new_key(org.admin_token).body)["key_id"]
    assert call("agent_api_keys", "GET", KEYS, token=other_org.admin_token).json()["total"] == 0
    stolen = call("agent_api_keys", "DELETE", f"{KEYS}/{key_id}", token=other_org.admin_token)
    v0_error(stolen, 404, "NotFoundError")
    assert call("agent_api_keys", "GET", KEYS, token=org.admin_token).json()["total"] == 1


def test_v0_mutations_are_audited_like_v1(org: NewOrganization) -> None:
    key = key_of(org, "auditor")
    created = new_key(key, "second").json()
    log = call(
        "audit", "GET", "/api/v1/audit-log", token=org.admin_token, query={"action": "v0.api_key.create"}
    ).json()["data"]
    assert len(log) == 2 and log[0]["target"] == {
        "type": "api_key",
        "id": created["key_id"],
        "name": "second",
    }
    assert log[1]["actor"]["type"] == "ops" and log[1]["target"]["name"] == "auditor"
    newest = log[0]
    assert newest["actor"]["type"] == "api_key" and newest["actor"]["name"] == "auditor"
    assert newest["path"] == KEYS and newest["method"] == "POST"
    assert newest["outcome"] == {"status": 200, "result": "success", "error_code": None, "replayed": False}
    assert created["key"] not in json.dumps(log)


def test_idempotency_key_is_honoured_not_required(org: NewOrganization) -> None:
    plain = new_key(org.admin_token, "no-key")
    assert plain.status == 200 and "idempotent-replayed" not in plain.headers
    first = new_key(org.admin_token, "once", **{"Idempotency-Key": "v0-create-1"})
    second = new_key(org.admin_token, "once", **{"Idempotency-Key": "v0-create-1"})
    assert first.status == second.status == 200
    assert second.headers["idempotent-replayed"] == "true" and first.json() == second.json()
    assert call("agent_api_keys", "GET", KEYS, token=org.admin_token).json()["total"] == 2
    reused = new_key(org.admin_token, "other", **{"Idempotency-Key": "v0-create-1"})
    v0_error(reused, 409, "ConflictError")


def test_rate_limits_apply_to_keys_with_the_v0_error(
    org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.settings import get_settings

    key = key_of(org)
    monkeypatch.setenv("MAILROOM_RATE_LIMIT_PER_MINUTE", "2")
    get_settings.cache_clear()
    seen = [organization(key) for _ in range(2)]
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["1", "0"]
    limited = organization(key)
    v0_error(limited, 429, "RateLimitError")
    assert int(limited.headers["retry-after"]) >= 1
    get_settings.cache_clear()


def test_the_openapi_document_covers_v0(org: NewOrganization) -> None:
    spec = call("openapi", "GET", "/api/openapi.json", public=True).json()
    for path in (
        "/api/v0/organizations",
        "/api/v0/api-keys",
        "/api/v0/api-keys/{keyId}",
        "/api/v0/inboxes",
        "/api/v0/inboxes/{inboxId}",
        "/api/v0/domains",
        "/api/v0/domains/{domainId}",
        "/api/v0/domains/{domainId}/verify",
        "/api/v0/webhooks",
        "/api/v0/webhooks/{webhookId}",
    ):
        assert path in spec["paths"], path
    assert "inai_" in spec["components"]["securitySchemes"]["bearer"]["description"]


def _schema_name(response: dict[str, Any]) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]


def _times(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, prop)
        for name, prop in schema.get("properties", {}).items()
        if name.endswith("_at") or name.endswith("timestamp")
    ]


def test_every_v0_operation_is_documented_for_clients(org: NewOrganization) -> None:
    """What client generators and the MCP server build on: per operation a summary and description,
    the bearer requirement, one success with a v0 model (or 204 without a body), its own 404, v0
    errors only, the optional Idempotency-Key on changes, and request bodies that refuse unknown
    fields."""
    spec = call("openapi", "GET", "/api/openapi.json", public=True).json()
    schemas = spec["components"]["schemas"]
    operations = [
        (method, path, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/api/v0/")
        for method, operation in item.items()
    ]
    assert len(operations) == 36  # 30, and an inbox's drafts (6)
    for method, path, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation["summary"] and len(operation["description"]) > 40, where
        assert operation["security"] == [{"bearer": []}], where
        responses = operation["responses"]
        (success,) = [status for status in responses if status.startswith("2")]
        if method == "delete":
            assert success == "204" and "content" not in responses["204"], where
        else:
            assert success == "200" and _schema_name(responses["200"]).startswith(("V0", "PageOf_V0")), where
        for status, response in responses.items():
            if int(status) >= 400 and status != "413":
                assert _schema_name(response) == "V0Error", (where, status)
        if "{" in path:
            assert responses["404"]["description"].startswith("not_found: no such"), where
        parameters = {p["name"]: p for p in operation.get("parameters", [])}
        if method in ("post", "patch", "delete"):
            assert parameters["Idempotency-Key"]["required"] is False, where
        if "requestBody" in operation:
            body = schemas[_schema_name(operation["requestBody"])]
            assert body["additionalProperties"] is False, where
    for name, schema in schemas.items():
        if name.startswith("V0") and name != "V0Error":
            for field, prop in _times(schema):
                shapes = prop.get("anyOf", [prop])
                assert {"type": "string", "format": "date-time"}.items() <= shapes[0].items(), (name, field)
    assert schemas["V0CreateInbox"]["properties"]["username"]["pattern"]
    assert set(schemas["V0Domain"]["properties"]["status"]["enum"]) == {"PENDING", "VERIFIED"}
    assert "message.received" in schemas["V0CreateWebhook"]["properties"]["event_types"]["items"]["enum"]
    send = spec["paths"]["/api/v0/inboxes/{inboxId}/messages/send"]["post"]["responses"]
    assert {"403", "404", "422", "502", "503"} <= set(send) and "ses_unavailable" in send["502"][
        "description"
    ]


# --- the operator CLI -------------------------------------------------------------------------------------


def test_the_cli_issues_an_api_key(org: NewOrganization, capsys: pytest.CaptureFixture[str]) -> None:
    org_id = org.organization["id"]
    assert main(["admin", "create-api-key", "--org", org_id, "--name", "ops", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["organization"] == org_id and issued["name"] == "ops"
    assert parse_token(issued["key"]) is TokenType.API_KEY
    assert organization(issued["key"]).json()["org_id"] == org_id
    assert main(["admin", "create-api-key", "--org", "org_nope"]) == 2
    assert "no organization org_nope" in capsys.readouterr().err
