"""WebSocket subscriptions, the pure part: what a connection may see and which events match it.

A connection belongs to a token. An ops token or API key sees its organization's events; a message
token only its mailbox's (organization-wide events, such as ``domain.verified``, never reach it).
Its subscriptions each name event types and, optionally, mailboxes; an event goes to the connection
once when any subscription matches, with the same rules as a webhook's filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mailroom.domain import webhooks as rules

MAX_SUBSCRIPTIONS = 20  # per connection
MAX_INBOXES = 100  # per subscription, as a webhook's mailbox filter


def matches(connection: Mapping[str, Any], event_type: str, data: Mapping[str, Any]) -> bool:
    """Does this event go to this connection? (Test events go to their one webhook only.)"""
    if event_type == rules.TEST_EVENT_TYPE:
        return False
    bound = connection.get("mailbox_id")
    if bound and (data.get("mailbox_id") or data.get("inbox_id")) != bound:
        return False
    return any(
        rules.matches(
            {"event_types": s.get("event_types"), "mailbox_ids": s.get("inbox_ids")}, event_type, data
        )
        for s in connection.get("subscriptions") or []
    )


def allowed_types(bound_mailbox: str | None) -> tuple[str, ...]:
    """The event types a connection can subscribe to: a message token's are its mailbox's mail."""
    if bound_mailbox:
        return tuple(t for t in rules.EVENT_TYPES if t.startswith("message."))
    return rules.EVENT_TYPES


def foreign_inboxes(bound_mailbox: str | None, inbox_ids: Iterable[str]) -> list[str]:
    """The inbox ids a message token's connection may not subscribe to (all but its own)."""
    if not bound_mailbox:
        return []
    return [i for i in inbox_ids if i != bound_mailbox]
