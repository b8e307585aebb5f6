"""Reading the organization's audit log (the pipeline writes it: one record per mutating request)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailroom import errors
from mailroom.store import audit, organizations
from mailroom.store.table import Item, Page, Table


@dataclass(frozen=True, slots=True)
class Filters:
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.action, self.actor, self.since, self.until))


def list_records(
    table: Table, org_id: str, filters: Filters, *, per_page: int, cursor: str | None
) -> tuple[Page, int | None]:
    """A page of records, newest first, and their total (None when filtered: it is only maintained
    for the whole log). One filter index per query: by action or by actor, not both."""
    if filters.action and filters.actor:
        raise errors.validation("filter by action or by actor, not both", field="actor")
    if filters.since and filters.until and filters.since > filters.until:
        raise errors.validation("since must not be after until", field="since")
    page = audit.list_page(
        table,
        org_id,
        per_page=per_page,
        cursor=cursor,
        action=filters.action,
        actor=filters.actor,
        since_ms=int(filters.since.timestamp() * 1000) if filters.since else None,
        until_ms=int(filters.until.timestamp() * 1000) if filters.until else None,
    )
    if filters.any():
        return page, None
    return page, int((organizations.get(table, org_id) or {}).get("audit_count", 0))


def record_view(item: Item) -> dict[str, Any]:
    return audit.public_view(item)
