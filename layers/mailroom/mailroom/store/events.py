"""The organization's event stream: one item per event, newest last, kept 30 days.

Events are written in the same transaction as the state change they report, so an event exists
exactly when its change happened (e.g. ``domain.verified`` once, guarded by the domain's condition).
"""

from __future__ import annotations

import time
from typing import Any

from mailroom import clock, ids
from mailroom.store import keys
from mailroom.store.table import Item, Page, Table

RETENTION_SECONDS = 30 * 24 * 3600


def new_event(org_id: str, event_type: str, data: dict[str, Any], *, ulid: str | None = None) -> Item:
    """``ulid``: a deterministic id, for events that must be recorded at most once (a conditional
    put of the same id fails the second time, e.g. a delivery event redelivered by EventBridge)."""
    event_id = f"evt_{ulid}" if ulid else ids.new_id("evt")
    return {
        "PK": keys.events_pk(org_id),
        "SK": event_id.partition("_")[2],
        "type": "event",
        "event_id": event_id,
        "event_type": event_type,
        "org_id": org_id,
        "created_at": clock.now_iso(),
        "data": data,
        "ttl": int(time.time()) + RETENTION_SECONDS,
    }


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None = None) -> Page:
    return table.query_page(partition=keys.events_pk(org_id), per_page=per_page, cursor=cursor)
