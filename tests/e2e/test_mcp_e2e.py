"""The MCP server end to end, with the official client (``mcp.ClientSession``) against the local
stack: over stdio (``mailroom mcp`` as a subprocess, configured by environment like a desktop
agent would) and over streamable HTTP (the ``/mcp`` function, stateless with JSON responses).

An agent creates an inbox, receives mail sent over SMTP through ``wait_for_message``, reads the
thread and replies; the reply lands in a hosted mailbox in the same thread. The gates hold: tools
are listed by the token's scopes, destructive ones only when allowed and never without the right
``confirm``, a read-only server refuses writes, and a retried send sends once.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mailroom.mcp_server.client import Identity
from mailroom.mcp_server.curation import Gate
from mailroom.mcp_server.tools import build
from tests.e2e.stack_process import LocalStackProcess, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mcp")]
PASSWORD = "Correct-Horse-42"
AGENT_TOOLS = {"wait_for_message", "get_thread_for_reply"}
REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    stack: LocalStackProcess
    admin: httpx.Client
    domain: dict[str, Any]
    hosted: dict[str, Any]  # a hosted mailbox: the agent's correspondent


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, (response.request.url.path, response.text)
    return dict(response.json()["data"])


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with (
        start_stack(tmp_path_factory.mktemp("mcp-state")) as stack,
        httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=60
        ) as admin,
    ):
        domain = created(
            post(admin, "/api/v1/domains", {"domain": f"mcp-{uuid.uuid4().hex[:10]}.example.com"})
        )
        hosted = created(
            post(
                admin,
                "/api/v1/mailboxes",
                {"local_part": "human", "domain": domain["domain"], "name": "Hu Man", "password": PASSWORD},
            )
        )
        yield World(stack, admin, domain, hosted)


def server_params(world: World, token: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mailroom.cli", "mcp"],
        cwd=str(REPO),
        env={
            "MAILROOM_URL": world.stack.api_url,
            "MAILROOM_TOKEN": token,
            "PYTHONPATH": os.pathsep.join([str(REPO / "layers" / "mailroom"), str(REPO)]),
            **env,
        },
    )


@asynccontextmanager
async def over_stdio(world: World, token: str, **env: str) -> AsyncIterator[ClientSession]:
    async with (
        stdio_client(server_params(world, token, **env)) as (read, write),
        ClientSession(read, write, read_timeout_seconds=90) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_http(world: World, token: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=90) as http,
        streamable_http_client(f"{world.stack.api_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=90) as session,
    ):
        await session.initialize()
        yield session


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed: its structured content."""
    result = await session.call_tool(name, arguments)
    assert isinstance(result, types.CallToolResult)
    assert not result.is_error, (name, result.content)
    return dict(result.structured_content or {})


async def refused(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must fail as a tool error: its error (code, message, hint)."""
    result = await session.call_tool(name, arguments)
    assert isinstance(result, types.CallToolResult)
    assert result.is_error, (name, result.structured_content)
    error = dict((result.structured_content or {})["error"])
    assert error["code"] and error["message"], error
    assert error["code"] in result.content[0].text  # type: ignore[union-attr]
    return error


def expected_tools(
    world: World, token_identity: Identity, *, destructive: bool, read_only: bool = False
) -> set[str]:
    """What the token may call, computed from the running API's own document and the token's scopes
    as /api/v1/me reports them, independently of the server's filtering code path."""
    document = httpx.get(f"{world.stack.api_url}/api/openapi.json", timeout=60).json()
    names = set()
    for tool in build(document):
        access = tool.access
        kinds = {token_identity.kind, "ops"} if token_identity.kind == "api_key" else {token_identity.kind}
        allowed = access is None or any(
            k in access and set(access[k]) <= token_identity.scopes for k in kinds
        )
        gate_open = tool.gate is Gate.READ or (not read_only and (tool.gate is Gate.WRITE or destructive))
        if allowed and gate_open:
            names.add(tool.name)
    return names | AGENT_TOOLS


def admin_identity(world: World) -> Identity:
    me = world.admin.get("/api/v1/me").json()["data"]
    return Identity(me["type"], frozenset(me["scopes"]))


def smtp_send(world: World, sender: str, recipient: str, subject: str, text: str) -> str:
    message = EmailMessage()
    message["From"] = f"Hu Man <{sender}>"
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message.set_content(text)
    with smtplib.SMTP("127.0.0.1", world.stack.smtp_port, timeout=30) as smtp:
        smtp.send_message(message)
    return str(message["Message-ID"])


# --- listing ---------------------------------------------------------------------------------------


def test_stdio_lists_what_the_token_may_call_and_errors_carry_code_message_and_hint(world: World) -> None:
    async def scenario() -> dict[str, Any]:
        async with over_stdio(world, world.stack.admin_token) as session:
            domain_id = world.domain["id"]
            return {
                "listed": {tool.name for tool in (await session.list_tools()).tools},
                "missing": await refused(
                    session, "get_domain", {"domain_id": "dom_01J00000000000000000000000"}
                ),
                "invalid": await refused(session, "get_domain", {}),
                "gated": await refused(
                    session, "delete_domain", {"domain_id": domain_id, "confirm": domain_id}
                ),
                "prompt": await session.get_prompt("reply_to_latest_thread", {"inbox_id": "inb_x"}),
                "templates": await session.list_resource_templates(),
            }

    seen = run(scenario())
    listed = seen["listed"]
    assert listed == expected_tools(world, admin_identity(world), destructive=False)
    assert {"create_inbox", "send_inbox_message", "list_domains"} <= listed
    assert not {"delete_domain", "delete_inbox", "start_migration", "create_ops_token"} & listed
    assert "send_message" not in listed  # a message token's tool; this is an ops token
    missing, invalid = seen["missing"], seen["invalid"]
    assert missing["status"] == 404 and missing["code"] == "not_found" and missing["hint"]
    assert invalid["code"] == "invalid_arguments" and "domain_id" in invalid["message"]
    # Destructive: not listed without the flag, and refused if called anyway.
    assert seen["gated"]["code"] == "destructive_disabled"
    assert world.admin.get(f"/api/v1/domains/{world.domain['id']}").status_code == 200
    assert "get_thread_for_reply" in seen["prompt"].messages[0].content.text
    assert {t.uri_template for t in seen["templates"].resource_templates} >= {
        "mailroom://inboxes/{inbox_id}",
        "mailroom://threads/{thread_id}",
        "mailroom://messages/{message_id}/raw",
    }


def test_http_lists_the_same_tools_with_schemas(world: World) -> None:
    key = post(world.admin, "/api/v0/api-keys", {"name": "mcp e2e"})
    assert key.status_code == 200, key.text
    api_key = key.json()["key"]

    async def scenario() -> tuple[list[types.Tool], set[str]]:
        async with over_http(world, world.stack.admin_token) as session:
            tools = list((await session.list_tools()).tools)
        async with over_http(world, api_key) as session:  # an inai_ key: organization-wide
            by_key = {tool.name for tool in (await session.list_tools()).tools}
        return tools, by_key

    tools, by_key = run(scenario())
    assert {tool.name for tool in tools} == expected_tools(world, admin_identity(world), destructive=False)
    me = httpx.get(
        f"{world.stack.api_url}/api/v1/me", headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ).json()
    key_identity = Identity(me["data"]["type"], frozenset(me["data"]["scopes"]))
    assert key_identity.kind == "api_key"
    assert by_key == expected_tools(world, key_identity, destructive=False)
    assert {"create_inbox", "list_domains", "create_domain"} <= by_key
    by_name = {tool.name: tool for tool in tools}
    create = by_name["create_inbox"]
    assert create.input_schema["required"] == ["body"]
    assert "Idempotency-Key" in (create.description or "")
    assert by_name["list_domains"].annotations and by_name["list_domains"].annotations.read_only_hint
    assert by_name["get_domain"].output_schema and by_name["get_domain"].output_schema["type"] == "object"
    assert "long-poll with backoff" in (by_name["wait_for_message"].description or "")


def test_http_refuses_a_bad_token_before_any_mcp(world: World) -> None:
    response = httpx.post(
        f"{world.stack.api_url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer mr_live_nope", "Accept": "application/json, text/event-stream"},
        timeout=60,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert httpx.post(f"{world.stack.api_url}/mcp", json={}, timeout=60).status_code == 401


# --- the agent flow --------------------------------------------------------------------------------


def test_agent_receives_mail_through_wait_for_message_and_replies_in_the_thread(world: World) -> None:
    subject = f"Quote request {uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        async with over_http(world, world.stack.admin_token) as session:
            inbox = await call(
                session,
                "create_inbox",
                {"body": {"username": "agent", "domain": world.domain["domain"], "display_name": "Agent"}},
            )
            address = inbox["email_address"]
            before = await call(
                session,
                "wait_for_message",
                {"inbox_id": inbox["inbox_id"], "subject_contains": subject, "timeout_seconds": 1},
            )
            assert before["timed_out"] is True and before["message"] is None and before["polls"] >= 2

            message_id = await asyncio.to_thread(
                smtp_send, world, world.hosted["address"], address, subject, "How much for 40 units?\nThanks."
            )
            waited = await call(
                session,
                "wait_for_message",
                {
                    "inbox_id": inbox["inbox_id"],
                    "from": world.hosted["address"].upper(),
                    "subject_contains": subject.lower(),
                    "since": "2020-01-01T00:00:00Z",
                    "timeout_seconds": 25,
                },
            )
            assert waited["timed_out"] is False, waited
            received = waited["message"]
            assert received["subject"] == subject and "40 units" in received["text"]

            thread = await call(
                session,
                "get_thread_for_reply",
                {"inbox_id": inbox["inbox_id"], "thread_id": received["thread_id"]},
            )
            assert thread["reply_to_message_id"] == received["message_id"]
            assert "> How much for 40 units?" in thread["quoted"]

            sent = await call(
                session,
                "reply_to_inbox_message",
                {
                    "inboxId": inbox["inbox_id"],
                    "messageId": thread["reply_to_message_id"],
                    "body": {"text": "40 units: 400 EUR.\n\n" + thread["quoted"]},
                },
            )
            assert sent["thread_id"] == received["thread_id"]

            # The reply lands in the hosted mailbox, answering the original message.
            answer = await call(
                session,
                "wait_for_message",
                {
                    "inbox_id": world.hosted["id"],
                    "from": address,
                    "since": "2020-01-01T00:00:00Z",
                    "timeout_seconds": 25,
                },
            )
            assert answer["timed_out"] is False, answer
            reply = answer["message"]
            assert reply["subject"] == f"Re: {subject}"
            assert reply["in_reply_to"] == message_id
            assert "400 EUR" in reply["text"]

            # In the agent's inbox, question and answer share one thread.
            whole = await call(
                session, "get_inbox_thread", {"inboxId": inbox["inbox_id"], "threadId": received["thread_id"]}
            )
            assert [m["direction"] for m in whole["messages"]] == ["inbound", "outbound"]

            # Mail already there does not end a wait: by default only what the first poll did not
            # list counts, and with after_message_id only what came after it.
            for baseline in ({}, {"after_message_id": received["message_id"]}):
                again = await call(
                    session,
                    "wait_for_message",
                    {
                        "inbox_id": inbox["inbox_id"],
                        "subject_contains": subject,
                        "timeout_seconds": 1,
                        **baseline,
                    },
                )
                assert again["timed_out"] is True, (baseline, again)

            # Resources: the inbox (with this thread) and the thread through its inbox.
            resource = await session.read_resource(f"mailroom://inboxes/{inbox['inbox_id']}")
            assert subject in resource.contents[0].text  # type: ignore[union-attr]
            thread_uri = f"mailroom://inboxes/{inbox['inbox_id']}/threads/{received['thread_id']}"
            assert "400 EUR" in (await session.read_resource(thread_uri)).contents[0].text  # type: ignore[union-attr]

    run(scenario())


# --- the gates -------------------------------------------------------------------------------------


def test_destructive_tools_are_listed_with_the_flag_and_need_the_right_confirm(world: World) -> None:
    address = f"sales-{uuid.uuid4().hex[:6]}@{world.domain['domain']}"
    alias = created(
        post(world.admin, "/api/v1/aliases", {"address": address, "goto": [world.hosted["address"]]})
    )

    async def scenario() -> dict[str, Any]:
        async with over_stdio(
            world, world.stack.admin_token, MAILROOM_MCP_ALLOW_DESTRUCTIVE="true"
        ) as session:
            seen = {
                "listed": {tool.name for tool in (await session.list_tools()).tools},
                "wrong": await refused(
                    session, "delete_alias", {"alias_id": alias["id"], "confirm": "als_other"}
                ),
                "absent": await refused(session, "delete_alias", {"alias_id": alias["id"]}),
            }
            kept = world.admin.get(f"/api/v1/aliases/{alias['id']}").status_code
            await call(session, "delete_alias", {"alias_id": alias["id"], "confirm": alias["id"]})
            return {**seen, "kept": kept}

    seen = run(scenario())
    assert seen["wrong"]["code"] == "confirmation_mismatch" and "alias_id" in seen["wrong"]["message"]
    assert seen["absent"]["code"] == "confirmation_mismatch"
    assert seen["kept"] == 200
    listed = seen["listed"]
    assert listed == expected_tools(world, admin_identity(world), destructive=True)
    assert {"delete_alias", "delete_domain", "start_migration", "create_ops_token"} <= listed
    assert world.admin.get(f"/api/v1/aliases/{alias['id']}").status_code == 404


def test_a_read_only_server_offers_and_runs_reads_only(world: World) -> None:
    async def scenario() -> tuple[set[str], dict[str, Any], dict[str, Any]]:
        async with over_stdio(world, world.stack.admin_token, MAILROOM_MCP_READ_ONLY="true") as session:
            listed = {tool.name for tool in (await session.list_tools()).tools}
            write = await refused(
                session, "create_inbox", {"body": {"username": "never", "domain": world.domain["domain"]}}
            )
            read = await call(session, "list_inboxes", {})
            return listed, write, read

    listed, write, read = run(scenario())
    assert listed == expected_tools(world, admin_identity(world), destructive=False, read_only=True)
    assert "create_inbox" not in listed and "list_inboxes" in listed
    assert write["code"] == "read_only" and write["hint"]
    assert all(inbox["username"] != "never" for inbox in read["data"])


def test_a_retried_send_message_sends_once(world: World) -> None:
    token = created(
        post(
            world.admin,
            f"/api/v1/mailboxes/{world.hosted['id']}/message-tokens",
            {"name": "mcp e2e", "scopes": ["messages:read", "messages:send"]},
        )
    )["token"]
    recipient = created(
        post(
            world.admin,
            "/api/v1/mailboxes",
            {"local_part": "recipient", "domain": world.domain["domain"], "password": PASSWORD},
        )
    )
    subject = f"Once only {uuid.uuid4().hex[:8]}"
    arguments = {"body": {"to": [recipient["address"]], "subject": subject, "text": "Exactly one of me."}}

    async def scenario() -> dict[str, Any]:
        async with over_stdio(world, token) as session:
            listed = {tool.name for tool in (await session.list_tools()).tools}
            first = await call(session, "send_message", arguments)
            again = await call(session, "send_message", arguments)
            # The Sent copy is stored by the send itself: a second send would be a second copy here.
            sent = await call(session, "list_messages", {"folder": "Sent", "subject": subject})
            # A message token's own resources: the raw message and its thread.
            sent_id, thread_id = first["data"]["message_id"], first["data"]["thread_id"]
            raw = (await session.read_resource(f"mailroom://messages/{sent_id}/raw")).contents[0]
            thread = (await session.read_resource(f"mailroom://threads/{thread_id}")).contents[0]
        async with over_http(world, world.stack.admin_token) as session:
            arrived = await call(
                session,
                "wait_for_message",
                {"inbox_id": recipient["id"], "subject_contains": subject, "since": "2020-01-01T00:00:00Z"},
            )
            page = await call(session, "list_inbox_messages", {"inboxId": recipient["id"], "page_size": 100})
        received = [m for m in page["data"] if m["subject"] == subject]
        return {
            "listed": listed,
            "first": first,
            "again": again,
            "sent": sent,
            "raw": raw,
            "thread": thread,
            "arrived": arrived,
            "received": received,
        }

    seen = run(scenario())
    identity = Identity("message", frozenset({"messages:read", "messages:send"}))
    assert seen["listed"] == expected_tools(world, identity, destructive=False)
    assert "send_message" in seen["listed"] and "create_inbox" not in seen["listed"]
    message_id = seen["first"]["data"]["message_id"]
    assert seen["again"]["data"]["message_id"] == message_id
    assert [m["id"] for m in seen["sent"]["data"]] == [message_id]
    assert seen["arrived"]["timed_out"] is False
    assert len(seen["received"]) == 1
    assert seen["raw"].mime_type == "message/rfc822" and f"Subject: {subject}" in seen["raw"].text
    assert subject in seen["thread"].text


def test_stdio_refuses_to_start_without_a_usable_url_and_token(world: World) -> None:
    def start(**env: str) -> subprocess.CompletedProcess[str]:
        params = server_params(world, "unused")
        environment = {**os.environ, **(params.env or {}), **env}
        return subprocess.run(
            [params.command, *params.args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    bad_token = start(MAILROOM_TOKEN="mr_live_not-a-token")
    assert bad_token.returncode == 2 and "unauthenticated" in bad_token.stderr, bad_token.stderr
    assert bad_token.stdout == ""  # stdout is the protocol's: nothing else is ever written there
    no_token = start(MAILROOM_TOKEN="")
    assert no_token.returncode == 2 and "MAILROOM_TOKEN" in no_token.stderr
