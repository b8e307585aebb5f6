"""Verification credits (one item per organization and month) and the SMTP probe's rate windows."""

from __future__ import annotations

from mailroom.store import keys
from mailroom.store.ratelimits import Window
from mailroom.store.table import Item, Table, values
from mailroom.store.txn import Update


def credits(table: Table, org_id: str, month: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.verify_credits_sk(month))


def consume(
    table: Table, org_id: str, month: str, *, allowance: int, tally: dict[str, int], expires_at: int
) -> Item:
    """Take ``sum(tally)`` credits and record what they verified (counts per status), in one
    conditional write: ConditionFailed when fewer credits are left than that, and nothing changes.

    ``allowance`` is written on every consumption so the item says what the month allowed (a plan
    change mid-month applies from the next verification on).
    """
    return consume_update(org_id, month, allowance=allowance, tally=tally, expires_at=expires_at).apply(table)


def consume_update(
    org_id: str,
    month: str,
    *,
    allowance: int,
    tally: dict[str, int],
    expires_at: int,
    count: int | None = None,
) -> Update:
    """The conditional update of ``consume`` (for a transaction: a bulk job's credits are taken in
    the write that creates it, ``count`` of them, its tally added as chunks finish)."""
    taken = sum(tally.values()) if count is None else count
    return (
        Update(keys.org_pk(org_id), keys.verify_credits_sk(month), upsert=True)
        .set(allowance=allowance, month=month, ttl=expires_at)
        .add(used=taken, **{f"status_{status}": n for status, n in tally.items()})
        .at_most("used", allowance - taken)
    )


def tally_update(org_id: str, month: str, counts: dict[str, int]) -> Update:
    """Add a bulk chunk's outcomes to the month's per-status record (its credits were taken when
    the job was created); for the transaction that counts the chunk on its job."""
    return Update(keys.org_pk(org_id), keys.verify_credits_sk(month), upsert=True).add(
        **{f"status_{status}": n for status, n in counts.items()}
    )


def refund(table: Table, org_id: str, month: str, count: int) -> Item:
    """Give back credits taken for work that was not done (a cancelled bulk job's remainder)."""
    return Update(keys.org_pk(org_id), keys.verify_credits_sk(month)).add(used=-count).apply(table)


def probe_domain_hit(table: Table, ascii_domain: str, *, limit: int, now: float) -> Window:
    """One probe of a target domain in this minute, across every organization."""
    start = int(now) - int(now) % 60
    item = table.update(
        keys.probe_domain_pk(ascii_domain),
        str(start),
        "ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)",
        names={"#ttl": "ttl"},
        expression_values=values(one=1, ttl=start + 120),
        return_values="UPDATED_NEW",
    )
    return Window(limit=limit, used=int(item.get("hits", 1)), resets_at=start + 60)
