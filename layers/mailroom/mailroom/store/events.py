"""The organization's event stream: one item per event, newest last, kept 30 days.

Events are written in the same transaction as the state change they report, so an event exists
exactly when its change happened (e.g. ``domain.verified`` once, guarded by the domain's condition).
Each carries its event log's index keys (``store.keys``): by type (GSI1) and, for events of a
mailbox, by mailbox (GSI2).
"""

from __future__ import annotations

import time
from typing import Any

from mailroom import clock, ids
from mailroom.store import keys
from mailroom.store.table import Item, Page, Table, values

RETENTION_SECONDS = 30 * 24 * 3600


def new_event(org_id: str, event_type: str, data: dict[str, Any], *, ulid: str | None = None) -> Item:
    """``ulid``: a deterministic id, for events that must be recorded at most once (a conditional
    put of the same id fails the second time, e.g. a delivery event redelivered by EventBridge)."""
    event_id = f"evt_{ulid}" if ulid else ids.new_id("evt")
    sort_key = event_id.partition("_")[2]
    item: Item = {
        "PK": keys.events_pk(org_id),
        "SK": sort_key,
        "GSI1PK": keys.events_by_type_pk(org_id, event_type),
        "GSI1SK": sort_key,
        "type": "event",
        "event_id": event_id,
        "event_type": event_type,
        "org_id": org_id,
        "created_at": clock.now_iso(),
        "data": data,
        "ttl": int(time.time()) + RETENTION_SECONDS,
    }
    mailbox_id = mailbox_of(data)
    if mailbox_id:
        item["GSI2PK"] = keys.events_by_mailbox_pk(org_id, mailbox_id)
        item["GSI2SK"] = sort_key
    return item


def mailbox_of(data: dict[str, Any]) -> str | None:
    """The mailbox an event belongs to (message events name it; domain and test events do not)."""
    mailbox_id = data.get("mailbox_id") or data.get("inbox_id")
    return mailbox_id if isinstance(mailbox_id, str) and mailbox_id else None


def get(table: Table, org_id: str, event_id: str) -> Item | None:
    """One event by its id (``evt_<ulid>``); None when unknown, expired or not an event id."""
    prefix, _, ulid = event_id.partition("_")
    if prefix != "evt" or not ulid:
        return None
    return table.get(keys.events_pk(org_id), ulid)


def list_page(
    table: Table,
    org_id: str,
    *,
    per_page: int,
    cursor: str | None = None,
    event_type: str | None = None,
    mailbox_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Page:
    """Newest first; one Query a page. A type filter reads the type index, a mailbox filter the
    mailbox index; both together read the mailbox's events and keep that type (a filtered page,
    which links forward only)."""
    index: str | None = None
    partition = keys.events_pk(org_id)
    if mailbox_id:
        index, partition = "GSI2", keys.events_by_mailbox_pk(org_id, mailbox_id)
    elif event_type:
        index, partition = "GSI1", keys.events_by_type_pk(org_id, event_type)
    between = None
    if since_ms is not None or until_ms is not None:
        between = (
            ids.ulid_bound(since_ms or 0, upper=False),
            ids.ulid_bound(until_ms if until_ms is not None else (1 << 48) - 1, upper=True),
        )
    type_filter = None
    if mailbox_id and event_type:
        type_filter = (
            "#event_type = :event_type",
            {"#event_type": "event_type"},
            values(event_type=event_type),
        )
    return table.query_page(
        partition=partition,
        index=index,
        per_page=per_page,
        cursor=cursor,
        sk_between=between,
        newest_first=True,
        filter_expression=type_filter,
    )
