"""Resources (mail an agent can attach as context) and prompts (ready-made tasks).

Resources, by URI:

* ``mailroom://inboxes/{inbox_id}``: the inbox and its latest threads (any token that may read it);
* ``mailroom://threads/{thread_id}``: a thread with its messages (a message token's own mailbox);
* ``mailroom://inboxes/{inbox_id}/threads/{thread_id}``: the same for ops tokens and API keys, which
  reach threads through the inbox that holds them;
* ``mailroom://messages/{message_id}/raw``: the message as received or sent (message/rfc822; a
  message token's own mailbox).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from mailroom.mcp_server.client import ApiClient, ApiFailure, Identity

RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource
THREAD_PAGE = 20

TEMPLATES = (
    types.ResourceTemplate(
        name="inbox",
        title="An inbox and its latest threads",
        uri_template="mailroom://inboxes/{inbox_id}",
        description="The inbox (address, display name) and its 20 most recent threads.",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="thread",
        title="A thread of this mailbox",
        uri_template="mailroom://threads/{thread_id}",
        description="A conversation with its messages in order (message tokens: the token's mailbox).",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="inbox_thread",
        title="A thread of an inbox",
        uri_template="mailroom://inboxes/{inbox_id}/threads/{thread_id}",
        description="A conversation with its messages in order.",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="raw_message",
        title="A message's MIME source",
        uri_template="mailroom://messages/{message_id}/raw",
        description="The message exactly as received or sent (message tokens: the token's mailbox).",
        mime_type="message/rfc822",
    ),
)

_INBOX = re.compile(r"^mailroom://inboxes/(?P<inbox>[^/]+)$")
_THREAD = re.compile(r"^mailroom://threads/(?P<thread>[^/]+)$")
_INBOX_THREAD = re.compile(r"^mailroom://inboxes/(?P<inbox>[^/]+)/threads/(?P<thread>[^/]+)$")
_RAW = re.compile(r"^mailroom://messages/(?P<message>[^/]+)/raw$")


def _q(value: str) -> str:
    return quote(value, safe="")


def _json(uri: str, payload: Any) -> types.ReadResourceResult:
    return types.ReadResourceResult(
        contents=[
            types.TextResourceContents(
                uri=uri, mime_type="application/json", text=json.dumps(payload, ensure_ascii=False)
            )
        ]
    )


def _needs_message_token(uri: str, identity: Identity) -> None:
    if identity.kind != "message":
        raise MCPError(
            INVALID_PARAMS,
            f"{uri} is a message token's view of its own mailbox.",
            {"hint": "With an ops token or API key, read mailroom://inboxes/{inbox_id}/threads/{thread_id}."},
        )


async def read(api: ApiClient, identity: Identity, uri: str) -> types.ReadResourceResult:
    try:
        if match := _INBOX.match(uri):
            inbox = _q(match["inbox"])
            if identity.kind == "message":
                about: dict[str, Any] = {
                    "inbox_id": identity.mailbox_id,
                    "email_address": identity.mailbox_address,
                }
            else:
                about = await api.get_json(f"/api/v0/inboxes/{inbox}")
            threads = await api.get_json(f"/api/v0/inboxes/{inbox}/threads", {"page_size": THREAD_PAGE})
            return _json(uri, {"inbox": about, "threads": threads["data"]})
        if match := _INBOX_THREAD.match(uri):
            return _json(
                uri, await api.get_json(f"/api/v0/inboxes/{_q(match['inbox'])}/threads/{_q(match['thread'])}")
            )
        if match := _THREAD.match(uri):
            _needs_message_token(uri, identity)
            return _json(uri, (await api.get_json(f"/api/v1/threads/{_q(match['thread'])}"))["data"])
        if match := _RAW.match(uri):
            _needs_message_token(uri, identity)
            response = await api.send("GET", f"/api/v1/messages/{_q(match['message'])}/raw")
            return types.ReadResourceResult(
                contents=[
                    types.TextResourceContents(
                        uri=uri, mime_type="message/rfc822", text=response.content.decode("utf-8", "replace")
                    )
                ]
            )
    except ApiFailure as failure:
        code = RESOURCE_NOT_FOUND if failure.status == 404 else INVALID_PARAMS
        raise MCPError(code, f"{failure.code}: {failure.message}", failure.as_dict()) from failure
    raise MCPError(RESOURCE_NOT_FOUND, f"Unknown resource {uri}", {"uri": uri})


# --- prompts -----------------------------------------------------------------------------------

PROMPTS = (
    types.Prompt(
        name="triage_inbox",
        title="Triage my inbox",
        description="Go through an inbox's recent mail: summarize, sort by urgency, propose actions.",
        arguments=[
            types.PromptArgument(name="inbox_id", description="The inbox (optional with a message token)"),
            types.PromptArgument(
                name="limit", description="How many recent messages to look at (default 20)"
            ),
        ],
    ),
    types.Prompt(
        name="reply_to_latest_thread",
        title="Reply to the latest thread",
        description="Read the most recent conversation of an inbox and draft, then send, a reply.",
        arguments=[
            types.PromptArgument(name="inbox_id", description="The inbox (optional with a message token)"),
            types.PromptArgument(name="instructions", description="What the reply should say or achieve"),
        ],
    ),
)


def prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    args = arguments or {}
    inbox = args.get("inbox_id") or "the token's own mailbox"
    if name == "triage_inbox":
        limit = args.get("limit") or "20"
        text = (
            f"Triage the inbox {inbox}. Call list_inbox_messages (inbox_id={inbox}, page_size={limit}) to "
            "get the recent messages; read the ones whose preview is not enough with get_inbox_message. "
            "Then give me: (1) a one-line summary per message, grouped as urgent / needs a reply / FYI / "
            "likely spam; (2) the replies you suggest, as drafts I can approve. Label messages with "
            "label_inbox_message only if I agree. Do not delete anything or send anything without asking."
        )
    elif name == "reply_to_latest_thread":
        goal = args.get("instructions") or "answer the latest message helpfully and briefly"
        text = (
            f"In the inbox {inbox}, call list_inbox_threads (page_size=1) to find the most recent "
            "conversation, then get_thread_for_reply with its thread_id to read it as plain text. Draft a "
            f"reply that does this: {goal}. Show me the draft; when I approve, send it with "
            "reply_to_inbox_message using the reply_to_message_id that get_thread_for_reply returned, so "
            "it stays in the same thread."
        )
    else:
        raise MCPError(INVALID_PARAMS, f"Unknown prompt {name}", {"prompts": [p.name for p in PROMPTS]})
    return types.GetPromptResult(
        description=next(p.description for p in PROMPTS if p.name == name),
        messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
    )
