"""The MCP server's tools as derived from the API's OpenAPI document: every operation curated, the
schemas well formed, the gates and the Idempotency-Key as documented, and ``x-mailroom-scopes``
naming the token checks the routes really make."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mailroom.api.openapi import document
from mailroom.api.pipeline import IDEMPOTENCY_KEY_RE
from mailroom.domain.scopes import MESSAGE_SCOPES, OPS_SCOPES
from mailroom.mcp_server.agent_tools import agent_tools
from mailroom.mcp_server.client import Identity
from mailroom.mcp_server.curation import CURATED, Gate
from mailroom.mcp_server.gates import Flags, Refused, check, idempotency_key
from mailroom.mcp_server.server import tools_of
from mailroom.mcp_server.tools import CurationMissing, OperationTool, build, operations

# Not strict, so that a missing row fails the test below with the full list, not the collection.
TOOLS = {tool.name: tool for tool in build(document(), strict=False)}
NAME = re.compile(r"^[a-z][a-z0-9_]{2,63}$")


def test_every_operation_has_a_curated_row_and_every_row_an_operation() -> None:
    present = {(method, path) for method, path, _ in operations(document())}
    assert sorted(present - set(CURATED)) == [], "add a row to mailroom/mcp_server/curation.py"
    assert sorted(set(CURATED) - present) == [], "a row names an operation the API does not have"
    assert len(TOOLS) == len(present)  # names are unique


def test_an_uncurated_operation_fails_the_build_and_the_server_leaves_it_out() -> None:
    spec: dict[str, Any] = {
        "paths": {
            "/api/v1/new-thing": {"get": {"summary": "New", "responses": {}}},
            "/api/v1/other-thing": {"delete": {"summary": "Other", "responses": {}}},
            "/api/v1/me": document()["paths"]["/api/v1/me"],
        }
    }
    with pytest.raises(
        CurationMissing, match=r"2 operation.*GET /api/v1/new-thing.*DELETE /api/v1/other-thing"
    ):
        build(spec)
    assert [tool.name for tool in build(spec, strict=False)] == ["get_token_info"]
    assert [tool.name for tool in tools_of(spec)] == ["get_token_info"]


def test_the_server_builds_the_tools_once_per_document() -> None:
    cached = document()
    assert tools_of(cached) is tools_of(cached)
    assert tools_of(cached) is not tools_of(dict(cached))  # a newly fetched document is built anew


@pytest.mark.parametrize("tool", TOOLS.values(), ids=list(TOOLS))
def test_each_tool_is_named_described_and_its_schemas_stand_alone(tool: OperationTool) -> None:
    assert NAME.match(tool.name), tool.name
    assert tool.description.count("\n\n") >= 2  # curated text, the operation's own, the gate's
    assert tool.input_schema["type"] == "object"
    Draft202012Validator.check_schema(tool.input_schema)
    assert "#/components/" not in str(tool.input_schema)
    if tool.output_schema is not None:
        assert tool.output_schema["type"] == "object"
        Draft202012Validator.check_schema(tool.output_schema)
        assert "#/components/" not in str(tool.output_schema)
    for parameter in tool.parameters:
        assert parameter.name in tool.input_schema["properties"]
    assert ("idempotency_key" in tool.input_schema["properties"]) == tool.mutating
    assert ("confirm" in tool.input_schema["required"]) == (tool.gate is Gate.DESTRUCTIVE)


def test_destructive_confirm_targets_name_a_real_argument() -> None:
    components = document()["components"]["schemas"]
    for tool in TOOLS.values():
        if tool.gate is not Gate.DESTRUCTIVE:
            continue
        kind, _, name = tool.confirm_target.partition(".")
        if kind == "path":
            assert name in {p.name for p in tool.parameters if p.location == "path"}, tool.name
        elif kind == "body":
            body = tool.input_schema["properties"]["body"]
            schema = components[body["$ref"].rsplit("/", 1)[1]]
            assert name in schema.get("required", []), tool.name
        else:
            assert kind == "tool", tool.name


@pytest.mark.parametrize(
    ("name", "gate"),
    [
        ("delete_domain", Gate.DESTRUCTIVE),
        ("confirm_mailbox_deletion", Gate.DESTRUCTIVE),
        ("start_migration", Gate.DESTRUCTIVE),
        ("cancel_bulk_migration", Gate.DESTRUCTIVE),
        ("retry_migration", Gate.DESTRUCTIVE),
        ("bulk_update_messages", Gate.DESTRUCTIVE),
        ("empty_folder", Gate.DESTRUCTIVE),
        ("create_ops_token", Gate.DESTRUCTIVE),
        ("create_api_key", Gate.DESTRUCTIVE),
        ("send_message", Gate.WRITE),
        ("create_inbox", Gate.WRITE),
        ("list_threads", Gate.READ),
    ],
)
def test_the_issue_s_risky_tools_are_gated(name: str, gate: Gate) -> None:
    assert TOOLS[name].gate is gate


def test_every_delete_is_destructive_and_every_get_a_read() -> None:
    for tool in TOOLS.values():
        if tool.method == "DELETE":
            assert tool.gate is Gate.DESTRUCTIVE, tool.name
        if tool.method == "GET":
            assert tool.gate is Gate.READ, tool.name


# --- gates -----------------------------------------------------------------------------------------


def test_flags_offer_reads_always_writes_unless_read_only_destructive_only_when_allowed() -> None:
    assert Flags.from_env({}) == Flags(read_only=False, allow_destructive=False)
    default, read_only = Flags(), Flags.from_env({"MAILROOM_MCP_READ_ONLY": "TRUE"})
    allowed = Flags.from_env({"MAILROOM_MCP_ALLOW_DESTRUCTIVE": "true"})
    assert [default.offers(g) for g in Gate] == [True, True, False]
    assert [read_only.offers(g) for g in Gate] == [True, False, False]
    assert [allowed.offers(g) for g in Gate] == [True, True, True]
    both = Flags(read_only=True, allow_destructive=True)
    assert [both.offers(g) for g in Gate] == [True, False, False]  # read-only wins


def refusal(flags: Flags, name: str, arguments: dict[str, Any]) -> str | None:
    try:
        check(flags, TOOLS[name], arguments)
    except Refused as refused:
        assert refused.hint
        return refused.code
    return None


def test_confirm_must_equal_the_target() -> None:
    allowed = Flags(allow_destructive=True)
    assert refusal(allowed, "delete_domain", {"domain_id": "dom_1", "confirm": "dom_1"}) is None
    assert (
        refusal(allowed, "delete_domain", {"domain_id": "dom_1", "confirm": "dom_2"})
        == "confirmation_mismatch"
    )
    assert refusal(allowed, "delete_domain", {"domain_id": "dom_1"}) == "confirmation_mismatch"
    assert (
        refusal(Flags(), "delete_domain", {"domain_id": "dom_1", "confirm": "dom_1"})
        == "destructive_disabled"
    )
    token = {"body": {"name": "ci", "scopes": []}}
    assert refusal(allowed, "create_ops_token", {**token, "confirm": "ci"}) is None
    assert refusal(allowed, "bulk_create_mailboxes", {"body": {}, "confirm": "bulk_create_mailboxes"}) is None
    assert (
        refusal(allowed, "bulk_create_mailboxes", {"body": {}, "confirm": "yes"}) == "confirmation_mismatch"
    )
    assert refusal(Flags(read_only=True), "create_inbox", {"body": {}}) == "read_only"
    assert refusal(Flags(read_only=True), "list_inboxes", {}) is None


def test_the_idempotency_key_is_the_call_s_and_a_valid_header() -> None:
    call = {"inboxId": "inb_1", "body": {"to": "a@example.com", "subject": "Hi"}}
    reordered = {"body": {"subject": "Hi", "to": "a@example.com"}, "inboxId": "inb_1"}
    key = idempotency_key("send_inbox_message", call)
    assert key == idempotency_key("send_inbox_message", reordered)
    assert key != idempotency_key("send_inbox_message", {**call, "inboxId": "inb_2"})
    assert key != idempotency_key("send_message", call)
    assert idempotency_key("x", {**call, "idempotency_key": "again-1"}) == "mcp-again-1"
    assert IDEMPOTENCY_KEY_RE.match(key)


# --- x-mailroom-scopes -----------------------------------------------------------------------------


def test_every_secured_operation_names_who_may_call_it() -> None:
    for method, path, operation in operations(document()):
        access = operation.get("x-mailroom-scopes")
        if not operation["security"]:
            assert access is None, (method, path)
            continue
        assert access, (method, path)
        for kind, scopes in access.items():
            assert kind in ("ops", "api_key", "message"), (method, path)
            assert set(scopes) <= (MESSAGE_SCOPES if kind == "message" else OPS_SCOPES), (method, path)


@pytest.mark.parametrize(
    ("method", "path", "access"),
    [
        ("GET", "/api/v1/me", {"ops": []}),
        ("DELETE", "/api/v1/domains/{domain_id}", {"ops": ["domains:delete"]}),
        ("PATCH", "/api/v1/mailboxes/{mailbox_id}", {"ops": ["mailboxes:write"]}),  # behind mailbox_with()
        ("POST", "/api/v1/migrations/{migration_id}:cancel", {"ops": ["migrations:write"]}),
        ("POST", "/api/v1/messages/send", {"message": ["messages:send"]}),
        (
            "GET",
            "/api/v0/inboxes/{inboxId}/messages",
            {"api_key": ["mailboxes:read"], "message": ["messages:read"], "ops": ["mailboxes:read"]},
        ),
    ],
)
def test_scopes_are_read_off_the_route_s_token_check(method: str, path: str, access: dict[str, Any]) -> None:
    assert document()["paths"][path][method.lower()]["x-mailroom-scopes"] == access


def test_a_token_may_call_what_its_type_and_scopes_allow() -> None:
    ops = Identity("ops", frozenset({"domains:read"}))
    key = Identity("api_key", OPS_SCOPES)
    message = Identity("message", frozenset({"messages:read"}))
    assert ops.may_call({"ops": ["domains:read"]}) and not ops.may_call({"ops": ["domains:delete"]})
    assert key.may_call({"ops": ["domains:delete"]})  # an API key goes wherever an ops token goes
    assert not message.may_call({"ops": []}) and message.may_call({"message": ["messages:read"]})
    assert all(identity.may_call(None) for identity in (ops, key, message))  # public operations


@pytest.mark.parametrize("max_wait", [25.0, 60.0])
def test_agent_tools_declare_valid_schemas_within_the_wait_bound(max_wait: float) -> None:
    for tool in agent_tools(max_wait):
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.output_schema["type"] == "object" and NAME.match(tool.name)
        assert tool.needs in {(t.method, t.path) for t in TOOLS.values()}  # offered by a real operation
    wait = agent_tools(max_wait)[0].input_schema["properties"]["timeout_seconds"]
    assert wait["maximum"] == max_wait <= 60
