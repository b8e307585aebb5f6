"""The organization's suppression list, as operators read and edit it (SES delivery events add to
it: services/delivery_events.py). Addresses are kept lower case."""

from __future__ import annotations

from typing import Any

from mailroom import errors
from mailroom.services.mailbox_limits import load_org
from mailroom.store import suppressions
from mailroom.store.table import Item, Page, Table


def _address(raw: str) -> str:
    return raw.strip().lower()


def list_suppressions(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    """A page of suppressed addresses (address order) and how many there are (a maintained count)."""
    total = int(load_org(table, org_id).get("suppression_count", 0))
    page = suppressions.list_page(table, org_id, per_page=per_page, cursor=cursor)
    return page, max(0, total)


def load(table: Table, org_id: str, address: str) -> Item:
    item = suppressions.get(table, org_id, _address(address))
    if item is None:
        raise errors.not_found("Suppression")
    return item


def lift(table: Table, org_id: str, address: str) -> None:
    """Allow sending to ``address`` again (404 when it is not suppressed)."""
    if not suppressions.remove(table, org_id, _address(address)):
        raise errors.not_found("Suppression")


def suppression_view(item: Item) -> dict[str, Any]:
    return {
        "address": item["address"],
        "reason": item["reason"],
        "source": item.get("source") or {},
        "event_at": item.get("event_at"),
        "created_at": item["created_at"],
    }
