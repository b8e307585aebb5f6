"""Message tokens: bound to one mailbox, stored in the organization's partition, found by
authentication (``mailroom.auth``) through the same GSI1 lookup as ops tokens (``TOKEN#<sha256>``).

Managed tokens (created through the API) are listed per mailbox on GSI2 and counted on the mailbox;
sign-in tokens (short-lived, from ``POST /api/v1/auth/mailbox-token``) sit in their own GSI2
partition: not listed or counted (TTL removes them, which a maintained count could not follow), but
found when the mailbox is deleted or its password changes, to revoke them.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, delete, put_new

# Expired tokens stay visible for a while (so a client's failure can be explained), then TTL removes them.
EXPIRED_GRACE_SECONDS = 24 * 3600
MANAGED = "managed"
SESSION = "session"


def _listing_pk(org_id: str, mailbox_id: str, kind: str) -> str:
    if kind == SESSION:
        return keys.mailbox_sessions_pk(org_id, mailbox_id)
    return keys.mailbox_message_tokens_pk(org_id, mailbox_id)


def token_item(token: Item) -> Item:
    org_id = token["org_id"]
    item = {
        **token,
        "PK": keys.org_pk(org_id),
        "SK": keys.message_token_sk(token["id"]),
        "GSI1PK": keys.token_lookup_pk(token["token_hash"]),
        "GSI1SK": "TOKEN",
        "GSI2PK": _listing_pk(org_id, token["mailbox_id"], token["kind"]),
        "GSI2SK": token["id"],
        "type": "message_token",
    }
    if token.get("expires_at_epoch"):
        item["ttl"] = int(token["expires_at_epoch"]) + EXPIRED_GRACE_SECONDS
    return item


def create_op(token: Item) -> Op:
    return put_new(f"message_token:{token['id']}", token_item(token))


def get(table: Table, org_id: str, token_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.message_token_sk(token_id))


def list_page(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.mailbox_message_tokens_pk(org_id, mailbox_id),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
    )


def delete_op(org_id: str, token_id: str) -> Op:
    return delete(
        f"message_token:{token_id}",
        keys.org_pk(org_id),
        keys.message_token_sk(token_id),
        condition="attribute_exists(PK)",
    )


def all_of_mailbox(table: Table, org_id: str, mailbox_id: str, *, kinds: tuple[str, ...]) -> Iterator[Item]:
    """Every token of the mailbox of the given kinds, page by page (GSI2 Queries)."""
    for kind in kinds:
        cursor = None
        while True:
            page = table.query_page(
                partition=_listing_pk(org_id, mailbox_id, kind), index="GSI2", per_page=100, cursor=cursor
            )
            yield from page.items
            cursor = page.next_cursor
            if cursor is None:
                break


def revoke_all(
    table: Table, org_id: str, mailbox_id: str, *, kinds: tuple[str, ...] = (MANAGED, SESSION)
) -> int:
    """Delete the mailbox's tokens of the given kinds; returns how many were deleted."""
    # Collected first: deleting while paging would move the cursor's ground under it.
    found = [t["id"] for t in all_of_mailbox(table, org_id, mailbox_id, kinds=kinds)]
    for token_id in found:
        table.delete(keys.org_pk(org_id), keys.message_token_sk(token_id))
    return len(found)
