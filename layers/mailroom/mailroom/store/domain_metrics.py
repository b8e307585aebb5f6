"""Per-domain, per-day mail counters (spam/virus verdicts in, bounces/complaints out)."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from mailroom.store import keys
from mailroom.store.table import Table, values
from mailroom.store.txn import Op, Update

COUNTERS = (
    "inbound_total",
    "inbound_spam",
    "inbound_virus",
    "inbound_dropped",  # recipients whose copy was dropped: unknown, blocked sender, inactive, ...
    "outbound_total",
    "outbound_bounces",
    "outbound_complaints",
)
RETENTION_DAYS = 400


def increment(table: Table, org_id: str, domain_id: str, day: str, **deltas: int) -> None:
    """Add to one day's counters (called as mail flows). ``day`` is ``YYYY-MM-DD`` (UTC)."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters: {sorted(unknown)}")
    expires = calendar.timegm(date.fromisoformat(day).timetuple()) + RETENTION_DAYS * 86400
    names = {f"#c{i}": name for i, name in enumerate(deltas)}
    adds = ", ".join(f"#c{i} :c{i}" for i in range(len(deltas)))
    table.update(
        keys.domain_metrics_pk(org_id, domain_id),
        day,
        f"ADD {adds} SET #ttl = :ttl",
        names={**names, "#ttl": "ttl"},
        expression_values=values(ttl=expires, **{f"c{i}": v for i, v in enumerate(deltas.values())}),
        return_values="NONE",
    )


def increment_op(org_id: str, domain_id: str, day: str, **deltas: int) -> Op:
    """``increment`` as a transaction operation (inbound moves its counters in the same transaction
    as the message's receipt, so a redelivered event cannot count twice)."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters: {sorted(unknown)}")
    expires = calendar.timegm(date.fromisoformat(day).timetuple()) + RETENTION_DAYS * 86400
    update = Update(keys.domain_metrics_pk(org_id, domain_id), day, upsert=True)
    return update.add(**deltas).set(ttl=expires).op(f"metrics:{domain_id}")


def days(table: Table, org_id: str, domain_id: str, *, first_day: str, last_day: str) -> list[dict[str, Any]]:
    """Every day in the window that has counters (one Query: a window holds at most ~400 items)."""
    page = table.query_page(
        partition=keys.domain_metrics_pk(org_id, domain_id), per_page=400, sk_between=(first_day, last_day)
    )
    return [{"date": item["SK"], **{c: int(item.get(c, 0)) for c in COUNTERS}} for item in page.items]
