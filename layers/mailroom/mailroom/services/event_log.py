"""The organization's event log (``GET /api/v1/events``): the events webhooks are sent, kept 30
days, newest first, filtered by type, mailbox and time through the log's indexes (``store.events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailroom import errors
from mailroom.domain import webhooks as rules
from mailroom.store import events
from mailroom.store.table import Item, Page, Table

# What the log can hold: every type a webhook subscribes to, and the test events of ``:test``.
LOGGED_EVENT_TYPES: tuple[str, ...] = (*rules.EVENT_TYPES, rules.TEST_EVENT_TYPE)


@dataclass(frozen=True, slots=True)
class Filters:
    event_type: str | None = None
    mailbox_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def event_summary(item: Item) -> dict[str, Any]:
    """An event as the log lists it: what happened, when, and to what."""
    data = item.get("data") or {}
    resource_id = data.get("id")
    return {
        "id": item["event_id"],
        "event_type": item["event_type"],
        "created_at": item["created_at"],
        "mailbox_id": events.mailbox_of(data),
        "resource_id": resource_id if isinstance(resource_id, str) else None,
    }


def event_detail(item: Item) -> dict[str, Any]:
    """An event with the ``data`` its webhook deliveries carry (the same id and payload)."""
    return {**event_summary(item), "data": rules.payload(item)["data"]}


def list_events(
    table: Table, org_id: str, filters: Filters, *, per_page: int, cursor: str | None
) -> tuple[Page, list[dict[str, Any]]]:
    """A page of the log, newest first (422 on ``since`` when it is after ``until``)."""
    if filters.since and filters.until and filters.since > filters.until:
        raise errors.validation("since must not be after until", field="since")
    page = events.list_page(
        table,
        org_id,
        per_page=per_page,
        cursor=cursor,
        event_type=filters.event_type,
        mailbox_id=filters.mailbox_id,
        since_ms=int(filters.since.timestamp() * 1000) if filters.since else None,
        until_ms=int(filters.until.timestamp() * 1000) if filters.until else None,
    )
    return page, [event_summary(i) for i in page.items]


def load(table: Table, org_id: str, event_id: str) -> Item:
    """The organization's event (404 for an unknown or expired id, or another organization's)."""
    event = events.get(table, org_id, event_id)
    if event is None:
        raise errors.not_found("Event")
    return event
