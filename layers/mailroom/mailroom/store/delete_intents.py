"""Delete intents, the per-token budget of destructive operations, and mailbox purge jobs.

An intent is a short-lived, single-use permission to delete one mailbox. Confirming it is one
transaction: the token's daily budget and cooldown, the intent's state, the mailbox, its address
and counters, and the purge job (an outbox row) all change together or not at all.
"""

from __future__ import annotations

import zlib

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, put_new

PURGE_DONE_RETENTION_SECONDS = 30 * 24 * 3600
# An intent stays readable (confirmed or expired) this long after its expiry, then TTL removes it.
INTENT_RETENTION_SECONDS = 7 * 24 * 3600
COOLDOWN_SK = "LAST"


def intent_item(intent: Item) -> Item:
    return {
        **intent,
        "PK": keys.org_pk(intent["org_id"]),
        "SK": keys.delete_intent_sk(intent["id"]),
        "type": "delete_intent",
        "ttl": int(intent["expires_at_epoch"]) + INTENT_RETENTION_SECONDS,
    }


def create(table: Table, intent: Item) -> None:
    table.put(intent_item(intent), condition="attribute_not_exists(PK)")


def get(table: Table, org_id: str, intent_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.delete_intent_sk(intent_id))


def confirm_op(intent: Item, *, now_iso: str, now_epoch: int, confirmed_by: str) -> Op:
    """Pending and unexpired → confirmed (single use: a second confirm fails this condition)."""
    change = Update(keys.org_pk(intent["org_id"]), keys.delete_intent_sk(intent["id"]))
    change.set(status="confirmed", confirmed_at=now_iso, confirmed_by=confirmed_by)
    change.equals("status", "pending")
    change.when(f"{change.name('expires_at_epoch')} > {change.value(now_epoch)}")
    return change.op("intent")


def daily_budget_op(org_id: str, token_id: str, *, day_start: int, limit: int) -> Op:
    """Count one destructive operation in the token's UTC day, only while under ``limit``."""
    change = Update(keys.rate_pk(org_id, f"delete-day:{token_id}"), str(day_start), upsert=True)
    change.add(hits=1).set(ttl=day_start + 2 * 86400)
    change.at_most("hits", limit - 1)
    return change.op("daily_budget")


def daily_used(table: Table, org_id: str, token_id: str, *, day_start: int) -> int:
    item = table.get(keys.rate_pk(org_id, f"delete-day:{token_id}"), str(day_start))
    return int((item or {}).get("hits", 0))


def cooldown_op(org_id: str, token_id: str, *, now_epoch: int, cooldown: int) -> Op:
    """Record this destructive operation, only if the token's previous one is ``cooldown`` seconds old."""
    change = Update(keys.rate_pk(org_id, f"delete-cooldown:{token_id}"), COOLDOWN_SK, upsert=True)
    change.set(last_epoch=now_epoch, ttl=now_epoch + max(cooldown, 60) + 86400)
    change.at_most("last_epoch", now_epoch - cooldown)
    return change.op("cooldown")


def last_delete_epoch(table: Table, org_id: str, token_id: str) -> int | None:
    item = table.get(keys.rate_pk(org_id, f"delete-cooldown:{token_id}"), COOLDOWN_SK)
    return int(item["last_epoch"]) if item and "last_epoch" in item else None


# --- purge jobs ----------------------------------------------------------------------------------


def _purge_shard(mailbox_id: str) -> int:
    return zlib.crc32(mailbox_id.encode()) % keys.PURGE_SHARDS


def purge_job_op(job: Item) -> Op:
    """The outbox row of a purge: indexed as pending until the purge function finishes it, so a
    job whose queue message was lost is found and sent again by the sweep."""
    mailbox_id = job["mailbox_id"]
    item = {
        **job,
        "PK": keys.org_pk(job["org_id"]),
        "SK": keys.purge_sk(mailbox_id),
        "GSI2PK": keys.purge_pending_pk(_purge_shard(mailbox_id)),
        "GSI2SK": f"{job['queued_at']}#{mailbox_id}",
        "type": "purge_job",
    }
    return put_new("purge_job", item)


def get_purge_job(table: Table, org_id: str, mailbox_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.purge_sk(mailbox_id))


def purge_progress(table: Table, org_id: str, mailbox_id: str, **counts: int) -> None:
    Update(keys.org_pk(org_id), keys.purge_sk(mailbox_id)).add(**counts).set(status="running").apply(table)


def purge_requeued(table: Table, org_id: str, mailbox_id: str, *, queued_at: str) -> None:
    """Note a re-send, moving the job's place in the pending index (so the sweep waits again)."""
    change = Update(keys.org_pk(org_id), keys.purge_sk(mailbox_id)).add(sends=1)
    change.set(GSI2SK=f"{queued_at}#{mailbox_id}", requeued_at=queued_at)
    # Only while still pending: a job finished meanwhile must not re-enter the pending index.
    change.when(f"attribute_exists({change.name('GSI2PK')})")
    change.apply(table)


def purge_done(table: Table, org_id: str, mailbox_id: str, *, now_iso: str, now_epoch: int) -> None:
    change = Update(keys.org_pk(org_id), keys.purge_sk(mailbox_id))
    change.set(status="completed", completed_at=now_iso, ttl=now_epoch + PURGE_DONE_RETENTION_SECONDS)
    change.remove("GSI2PK", "GSI2SK")
    change.apply(table)


def stale_purges(table: Table, *, shard: int, older_than_iso: str, per_page: int, cursor: str | None) -> Page:
    """Unfinished purge jobs (every organization) last sent before ``older_than_iso``."""
    return table.query_page(
        partition=keys.purge_pending_pk(shard),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
        sk_between=("0", f"{older_than_iso}#~"),
    )
