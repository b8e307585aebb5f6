"""Running an automation's asynchronous actions, the pure part (docs/automation-execution.md): which
actions of a processing-log entry are waiting, the queue message that carries one of them, the
statuses a run goes through, and the template context and default payload of a message.

A log entry (the rules' processing log, ``store/rules.py``) lists every action its routes ran or
queued in ``automation.actions``; those with ``mode: async`` start ``pending`` and its top-level
``automation_pending`` counts them. Each becomes one queue message naming the entry and the
action's index in that list; the worker finishes it (``done``, ``failed`` or ``skipped``), records
the outcome at that index and decrements the count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ASYNC_TYPES = frozenset({"webhook", "eventbridge", "forward", "reply"})

# What ``automation.actions[i].status`` says (the CONTRACT's values).
PENDING, DONE, FAILED, SKIPPED = "pending", "done", "failed", "skipped"
TERMINAL = frozenset({DONE, FAILED, SKIPPED})

# The ACTRUN item's own states: ``running`` while a worker holds the lease, ``retry`` while its
# message waits for the next attempt; then one of the terminal ones above.
RUNNING, RETRY = "running", "retry"


def finished(run: Mapping[str, Any] | None) -> bool:
    """Whether an ACTRUN item is over for good: done, skipped, or failed for a reason retrying cannot
    fix. A run that failed after its last retry (``redrivable``) may run again: its message was
    parked in the dead-letter queue, and a redrive brings it back."""
    if run is None:
        return False
    status = run.get("status")
    return status in (DONE, SKIPPED) or (status == FAILED and not run.get("redrivable"))


MESSAGE_VERSION = 1
TEXT_CHARS = 16 * 1024  # the template context's message.text: its first 16 KB (characters)
ERROR_CHARS = 500  # an error recorded in the log
PAYLOAD_TYPE = "automation.action"
DEFAULT_DETAIL_TYPE = "Mailroom Automation"
# Standard Webhooks' schedule up to the step that still fits one SQS visibility timeout (12 h):
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h; seven attempts over about 17.6 hours.
DEFAULT_RETRY_SCHEDULE: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000)
MAX_RETRY_DELAY_SECONDS = 12 * 3600 - 900  # SQS keeps a message hidden at most 12 h per receive


@dataclass(frozen=True, slots=True)
class PendingAction:
    """One asynchronous action of one message, as the queue carries it."""

    org_id: str
    mailbox_id: str
    message_ulid: str  # the log entry's (and the stored message's) ulid
    index: int  # in the log entry's automation.actions
    route_id: str
    action_id: str
    action_type: str

    @property
    def run_id(self) -> str:
        """Stable per (message, route, action): the webhook-id of every attempt (receivers
        deduplicate on it) and the reply claim's owner. No dot (Standard Webhooks forbids one)."""
        return f"run_{self.message_ulid}_{self.route_id}_{self.action_id}"

    def body(self) -> str:
        return json.dumps(
            {
                "v": MESSAGE_VERSION,
                "org_id": self.org_id,
                "mailbox_id": self.mailbox_id,
                "message_ulid": self.message_ulid,
                "index": self.index,
                "route_id": self.route_id,
                "action_id": self.action_id,
                "action_type": self.action_type,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, raw: str) -> PendingAction:
        """ValueError when ``raw`` is not a message of this queue."""
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
            raise ValueError("not an automation action message")
        texts = ("org_id", "mailbox_id", "message_ulid", "route_id", "action_id", "action_type")
        if not all(isinstance(data.get(name), str) and data[name] for name in texts):
            raise ValueError("an automation action message names its message, route and action")
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError("an automation action message carries the action's index")
        return cls(index=index, **{name: str(data[name]) for name in texts})


def pending_actions(
    org_id: str, mailbox_id: str, message_ulid: str, entry: Mapping[str, Any]
) -> list[PendingAction]:
    """The async actions of a log entry still waiting to run, in the order the routes listed them."""
    automation = entry.get("automation")
    actions = automation.get("actions") if isinstance(automation, Mapping) else None
    found: list[PendingAction] = []
    for index, action in enumerate(actions if isinstance(actions, list) else []):
        if not isinstance(action, Mapping):
            continue
        if action.get("mode") != "async" or action.get("status") != PENDING:
            continue
        if action.get("action_type") not in ASYNC_TYPES:
            continue
        found.append(
            PendingAction(
                org_id=org_id,
                mailbox_id=mailbox_id,
                message_ulid=message_ulid,
                index=index,
                route_id=str(action.get("route_id") or ""),
                action_id=str(action.get("action_id") or ""),
                action_type=str(action["action_type"]),
            )
        )
    return found


def logged_action(entry: Mapping[str, Any] | None, pending: PendingAction) -> Mapping[str, Any] | None:
    """The entry's ``automation.actions[index]`` if it is still the one the message names (same route
    and action), else None."""
    automation = (entry or {}).get("automation")
    actions = automation.get("actions") if isinstance(automation, Mapping) else None
    if not isinstance(actions, list) or pending.index >= len(actions):
        return None
    found = actions[pending.index]
    if not isinstance(found, Mapping):
        return None
    if found.get("route_id") != pending.route_id or found.get("action_id") != pending.action_id:
        return None
    return found


def route_of(entry: Mapping[str, Any] | None, route_id: str) -> dict[str, Any]:
    """``{id, name}`` of a route the entry lists (its name as it was when the message matched)."""
    automation = (entry or {}).get("automation")
    routes = automation.get("routes") if isinstance(automation, Mapping) else None
    for route in routes if isinstance(routes, list) else []:
        if isinstance(route, Mapping) and route.get("id") == route_id:
            return {"id": route_id, "name": route.get("name")}
    return {"id": route_id, "name": None}


# ----------------------------------------------------------------------------- the template context


def message_context(message: Mapping[str, Any], text: str | None) -> dict[str, Any]:
    """``message`` of the template context, from a stored message item and its text body."""
    return {
        "id": message.get("id"),
        "message_id": message.get("rfc_message_id"),
        "from": message.get("from"),
        "from_address": message.get("from_address"),
        "to": list(message.get("to") or []),
        "cc": list(message.get("cc") or []),
        "subject": message.get("subject") or "",
        "text": (text or "")[:TEXT_CHARS],
        "received_at": message.get("received_at"),
        "has_attachments": bool(message.get("has_attachments")),
        "size": int(message.get("size") or 0),
    }


def template_context(
    *,
    message: Mapping[str, Any],
    text: str | None,
    mailbox: Mapping[str, Any],
    action: Mapping[str, Any],
    route: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a webhook's ``body_template`` and a reply's templates read (the CONTRACT's context):
    ``message``, ``mailbox``, ``route`` (absent for tasks: pass None), ``action`` and ``data`` (the
    mailbox data documents the action names; a key with no document is None)."""
    context: dict[str, Any] = {
        "message": message_context(message, text),
        "mailbox": {"id": mailbox.get("id"), "address": mailbox.get("address")},
        "action": {"id": action.get("id"), "name": action.get("name")},
        "data": dict(data or {}),
    }
    if route is not None:
        context["route"] = {"id": route.get("id"), "name": route.get("name")}
    return context


def default_payload(
    run_id: str, created_at: str, context: Mapping[str, Any], *, test: bool
) -> dict[str, Any]:
    """The JSON a webhook action without ``body_template`` sends (and what an eventbridge action puts
    as the event's detail): the template context with the run's id and time."""
    return {"type": PAYLOAD_TYPE, "id": run_id, "created_at": created_at, "test": test, **context}


def decode_documents(items: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """``{key: document}`` from mailbox data items (``value`` is JSON text); None for a key with no
    item or an item that does not parse."""
    by_key = {str(item.get("key")): item for item in items}
    documents: dict[str, Any] = {}
    for key in keys:
        item = by_key.get(key)
        try:
            documents[key] = json.loads(str(item["value"])) if item and "value" in item else None
        except ValueError:
            documents[key] = None
    return documents


def clipped(error: str | None) -> str | None:
    return error[:ERROR_CHARS] if error else None
