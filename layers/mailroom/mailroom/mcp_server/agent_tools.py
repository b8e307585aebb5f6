"""Tools beyond the API's operations, for agents: wait for mail, and read a thread ready to reply.

``wait_for_message`` is a bounded long-poll with backoff over the inbox's message listing (one API
call per poll: a Query of the newest page, never a table scan): the first poll is immediate, then
0.5 s, 1 s, 2 s, 4 s and 5 s apart at most, until a match or the timeout. It works with any token:
an ops token or API key names the inbox, a message token defaults to its own mailbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from mailroom.mcp_server.client import ApiClient, Identity
from mailroom.mcp_server.gates import Refused

LIST_MESSAGES = ("GET", "/api/v0/inboxes/{inboxId}/messages")
GET_THREAD = ("GET", "/api/v0/inboxes/{inboxId}/threads/{threadId}")
PAGE_SIZE = 50
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 5.0
STDIO_MAX_WAIT_SECONDS = 60.0
# API Gateway ends an HTTP API request after 30 s (and the function's Timeout is 29 s): a wait over
# streamable HTTP on Lambda must answer well before that.
HTTP_MAX_WAIT_SECONDS = 25.0

_INBOX_ARGUMENT = {
    "type": "string",
    "minLength": 1,
    "description": "The inbox (mailbox) id. Optional with a message token: its own mailbox.",
}


@dataclass(frozen=True, slots=True)
class AgentTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    needs: tuple[str, str]  # the operation whose access decides whether the tool is offered


_WAITED_SCHEMA = {
    "type": "object",
    "properties": {
        "message": {
            "type": ["object", "null"],
            "description": "The message as get_inbox_message returns it; null when the wait timed out.",
        },
        "timed_out": {"type": "boolean"},
        "waited_seconds": {"type": "number"},
        "polls": {"type": "integer", "description": "How many times the inbox was listed."},
    },
    "required": ["message", "timed_out", "waited_seconds", "polls"],
}
_LINE = {"type": ["string", "null"]}
_THREAD_SCHEMA = {
    "type": "object",
    "properties": {
        "thread_id": {"type": "string"},
        "subject": _LINE,
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message_id": {"type": "string"},
                    "direction": _LINE,
                    "from": _LINE,
                    "to": {"type": "array", "items": {"type": "string"}},
                    "timestamp": _LINE,
                    "text": {"type": "string"},
                },
                "required": ["message_id", "direction", "from", "to", "timestamp", "text"],
            },
        },
        "reply_to_message_id": {"type": ["string", "null"], "description": "null for an empty thread"},
        "quoted": {"type": "string", "description": "The message to reply to, quoted with '> '."},
    },
    "required": ["thread_id", "subject", "messages", "reply_to_message_id", "quoted"],
}


def agent_tools(max_wait: float) -> list[AgentTool]:
    return [
        AgentTool(
            name="wait_for_message",
            title="Wait for a message to arrive",
            description=(
                "Block until a received message matching the filters arrives in an inbox, or the timeout "
                f"passes (at most {max_wait:g} s on this server). Use it after asking someone to write, "
                "after sending a message that expects an answer, or to wait for a verification email. "
                "Matches only inbound mail that arrived at or after `since` (default: when the call "
                "starts: anything not listed then) or, with `after_message_id`, after that message. "
                "Returns {message, timed_out, "
                "waited_seconds, polls}: the full message (text, headers, thread_id) or null. How: a "
                "bounded long-poll with backoff over the inbox's message listing (first check at once, "
                "then 0.5, 1, 2, 4, 5 s apart), never a busy loop.\n\nSafety: read-only; changes nothing."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "inbox_id": _INBOX_ARGUMENT,
                    "from": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Part of the sender, any case.",
                    },
                    "subject_contains": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Part of the subject.",
                    },
                    "after_message_id": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Only messages that arrived after this one (e.g. the last one seen).",
                    },
                    "since": {
                        "type": "string",
                        "format": "date-time",
                        "description": "Only messages received at or after this time (ISO 8601 with a zone).",
                    },
                    "timeout_seconds": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": max_wait,
                        "default": min(30.0, max_wait),
                        "description": f"How long to wait, 1 to {max_wait:g} s.",
                    },
                },
                "additionalProperties": False,
            },
            output_schema=_WAITED_SCHEMA,
            needs=LIST_MESSAGES,
        ),
        AgentTool(
            name="get_thread_for_reply",
            title="A thread as plain text, ready to quote",
            description=(
                "Read a whole conversation as plain text, oldest first, with a quoted version of its latest "
                "message and the id to reply to. Use it before writing a reply: pass `reply_to_message_id` "
                "to reply_to_inbox_message (or send_message's in_reply_to). Returns {thread_id, subject, "
                "messages: [{message_id, direction, from, to, timestamp, text}], reply_to_message_id, "
                "quoted}.\n\nSafety: read-only; changes nothing."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "inbox_id": _INBOX_ARGUMENT,
                    "thread_id": {"type": "string", "minLength": 1, "description": "The thread's id."},
                },
                "required": ["thread_id"],
                "additionalProperties": False,
            },
            output_schema=_THREAD_SCHEMA,
            needs=GET_THREAD,
        ),
    ]


def inbox_of(identity: Identity, arguments: Mapping[str, Any]) -> str:
    inbox = arguments.get("inbox_id") or identity.mailbox_id
    if not inbox:
        raise Refused(
            "invalid_arguments",
            "inbox_id is required with an ops token or API key.",
            "Find it with list_inboxes (or list_mailboxes: a mailbox id is its inbox id).",
        )
    return str(inbox)


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def _matches(item: Mapping[str, Any], arguments: Mapping[str, Any]) -> bool:
    if item.get("direction") != "inbound":
        return False
    sender = str(arguments.get("from") or "").lower()
    if sender and sender not in str(item.get("from") or "").lower():
        return False
    subject = str(arguments.get("subject_contains") or "").lower()
    return not subject or subject in str(item.get("subject") or "").lower()


async def wait_for_message(
    api: ApiClient, identity: Identity, arguments: Mapping[str, Any], max_wait: float
) -> dict[str, Any]:
    inbox = quote(inbox_of(identity, arguments), safe="")
    started = time.monotonic()
    timeout = min(float(arguments.get("timeout_seconds") or min(30.0, max_wait)), max_wait)
    after_id = arguments.get("after_message_id")
    try:
        since = _when(arguments["since"]) if arguments.get("since") else None
    except ValueError as exc:
        raise Refused("invalid_arguments", f"since is not an ISO 8601 time with a zone: {exc}", "") from exc
    if after_id:
        after = await api.get_json(f"/api/v0/inboxes/{inbox}/messages/{quote(str(after_id), safe='')}")
        since = _when(after["timestamp"])
    # Without a time to start from, "new" means not among the messages the first poll lists:
    # comparing ids, not this host's clock with the API's, keeps a skewed clock harmless.
    already: set[str] | None = None
    delay, polls = FIRST_DELAY_SECONDS, 0
    while True:
        polls += 1
        items = (await api.get_json(f"/api/v0/inboxes/{inbox}/messages", {"page_size": PAGE_SIZE}))["data"]
        if since is None and already is None:
            already = {item["message_id"] for item in items}
        # Newest first: the oldest match after the baseline is the one that arrived first.
        for item in reversed(items):
            seen_before = item["message_id"] in (already or ()) or item["message_id"] == after_id
            too_old = since is not None and _when(item["timestamp"]) < since
            if seen_before or too_old or not _matches(item, arguments):
                continue
            message_id = quote(item["message_id"], safe="")
            message = await api.get_json(f"/api/v0/inboxes/{inbox}/messages/{message_id}")
            return _waited(message, started, polls)
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            return _waited(None, started, polls)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, MAX_DELAY_SECONDS)


def _waited(message: dict[str, Any] | None, started: float, polls: int) -> dict[str, Any]:
    return {
        "message": message,
        "timed_out": message is None,
        "waited_seconds": round(time.monotonic() - started, 2),
        "polls": polls,
    }


async def thread_for_reply(
    api: ApiClient, identity: Identity, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    inbox = quote(inbox_of(identity, arguments), safe="")
    thread = await api.get_json(
        f"/api/v0/inboxes/{inbox}/threads/{quote(str(arguments['thread_id']), safe='')}"
    )
    messages = [
        {
            "message_id": m["message_id"],
            "direction": m.get("direction"),
            "from": m.get("from"),
            "to": m.get("to") or [],
            "timestamp": m.get("timestamp"),
            "text": (m.get("text") or "").strip(),
        }
        for m in thread.get("messages") or []
    ]
    inbound = [m for m in messages if m["direction"] == "inbound"]
    candidates = inbound or messages
    latest = candidates[-1] if candidates else None
    quoted = ""
    if latest is not None:
        body = "\n".join(f"> {line}" if line else ">" for line in latest["text"].splitlines())
        quoted = f"On {latest['timestamp']}, {latest['from']} wrote:\n{body}"
    return {
        "thread_id": thread.get("thread_id"),
        "subject": thread.get("subject"),
        "messages": messages,
        "reply_to_message_id": latest["message_id"] if latest else None,
        "quoted": quoted,
    }
