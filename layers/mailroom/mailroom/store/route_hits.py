"""Reading a route's hits: the ``ROUTEHIT#<route id>#<message ulid>`` items inbound writes in the
transaction that stores a matched message (keys.py), one Query of the mailbox's partition per page,
newest first, bounded by time through the ulid (the archive's ``route`` filter)."""

from __future__ import annotations

from mailroom.store import keys
from mailroom.store.table import Page, Table


def hits_page(
    table: Table,
    org_id: str,
    mailbox_id: str,
    route_id: str,
    *,
    between: tuple[str, str],
    per_page: int,
    cursor: str | None,
) -> Page:
    """A page of the route's hits in the mailbox whose message ulids lie in ``between`` (inclusive)."""
    low, high = between
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id),
        sk_between=(keys.route_hit_sk(route_id, low), keys.route_hit_sk(route_id, high)),
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )
