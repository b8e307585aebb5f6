"""Mailbox invites: an address, quota and storage allocation held for someone who sets their own
password at redeem time. Only the SHA-256 of the invite code is stored.

An invite is indexed by its code's hash (GSI1, the redeem lookup) and, while pending, by its
expiry (GSI2, sharded: the sweep that releases expired reservations without a Scan). The expiry
keys are removed when the invite stops being pending, so the sweep only ever reads live work; the
item (and its code lookup, so a reused code gets a precise answer) stays until its TTL.
"""

from __future__ import annotations

import zlib

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, put_new

FINISHED_RETENTION_SECONDS = 30 * 24 * 3600


def _shard(invite_id: str) -> int:
    return zlib.crc32(invite_id.encode()) % keys.INVITE_EXPIRY_SHARDS


def invite_item(invite: Item) -> Item:
    invite_id = invite["id"]
    return {
        **invite,
        "PK": keys.org_pk(invite["org_id"]),
        "SK": keys.invite_sk(invite_id),
        "GSI1PK": keys.invite_code_pk(invite["code_hash"]),
        "GSI1SK": "INVITE",
        "GSI2PK": keys.invite_expiry_pk(_shard(invite_id)),
        "GSI2SK": f"{invite['expires_at']}#{invite_id}",
        "type": "invite",
    }


def create_op(invite: Item) -> Op:
    return put_new(f"invite:{invite['id']}", invite_item(invite))


def get(table: Table, org_id: str, invite_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.invite_sk(invite_id))


def find_by_code_hash(table: Table, code_hash: str) -> Item | None:
    """The invite a code belongs to (the index copy; read the item itself for its current state)."""
    return table.query_one(partition=keys.invite_code_pk(code_hash), index="GSI1")


def finish(invite: Item, *, status: str, now_epoch: int, **fields: object) -> Update:
    """Move a pending invite to ``status``, out of the expiry index; only if it is still pending."""
    change = Update(keys.org_pk(invite["org_id"]), keys.invite_sk(invite["id"]))
    change.set(status=status, ttl=now_epoch + FINISHED_RETENTION_SECONDS, **fields)
    change.remove("GSI2PK", "GSI2SK")
    change.equals("status", "pending")
    return change


def expired_page(table: Table, *, shard: int, now_iso: str, per_page: int, cursor: str | None) -> Page:
    """Pending invites of every organization whose expiry has passed (one GSI2 Query)."""
    return table.query_page(
        partition=keys.invite_expiry_pk(shard),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
        sk_between=("0", f"{now_iso}#~"),
    )
