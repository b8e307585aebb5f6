"""Audit records: one per mutating request, listable by time, action or actor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailroom import ids
from mailroom.store import keys, organizations
from mailroom.store.table import Item, Page, Table, serialize


def record(table: Table, entry: Item, *, retention_days: int, also: Sequence[dict[str, Any]] = ()) -> None:
    """Write one audit record and count it on the organization (one transaction). ``also``: more
    TransactWriteItems operations written with it (the request's idempotency completion)."""
    org_id = entry["org_id"]
    ulid = entry["id"].partition("_")[2]
    item: Item = {
        **entry,
        "PK": keys.audit_pk(org_id),
        "SK": ulid,
        "GSI1PK": keys.audit_action_pk(org_id, entry["action"]),
        "GSI1SK": ulid,
        "type": "audit",
        "ttl": int(entry["time_epoch"]) + retention_days * 86400,
    }
    actor_id = (entry.get("actor") or {}).get("token_id")
    if actor_id:
        item["GSI2PK"] = keys.audit_actor_pk(org_id, actor_id)
        item["GSI2SK"] = ulid
    table.transact(
        [
            {"Put": {"Item": serialize(item)}},
            organizations.counter_update(org_id, "audit_count", 1),
            *also,
        ]
    )


def list_page(
    table: Table,
    org_id: str,
    *,
    per_page: int,
    cursor: str | None,
    action: str | None = None,
    actor: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Page:
    """Newest first. An action filter uses GSI1, an actor filter GSI2 (one index per page: one Query)."""
    index: str | None = None
    partition = keys.audit_pk(org_id)
    if action:
        index, partition = "GSI1", keys.audit_action_pk(org_id, action)
    elif actor:
        index, partition = "GSI2", keys.audit_actor_pk(org_id, actor)
    between = None
    if since_ms is not None or until_ms is not None:
        low = ids.ulid_bound(since_ms or 0, upper=False)
        high = ids.ulid_bound(until_ms if until_ms is not None else (1 << 48) - 1, upper=True)
        between = (low, high)
    return table.query_page(
        partition=partition,
        index=index,
        per_page=per_page,
        cursor=cursor,
        sk_between=between,
        newest_first=True,
    )


def public_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "action": item["action"],
        "actor": item.get("actor"),
        "target": item.get("target"),
        "request_id": item.get("request_id"),
        "source_ip": item.get("source_ip"),
        "user_agent": item.get("user_agent"),
        "method": item.get("method"),
        "path": item.get("path"),
        "outcome": item.get("outcome"),
        "time": item["time"],
    }
