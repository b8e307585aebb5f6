"""API tokens: stored under their organization, found by hash through GSI1.

Ops tokens (``TOKEN#``) and the v0 surface's API keys (``APIKEY#``) are the same kind of item under
two sort-key prefixes, each with its own maintained count (store/keys.py).
"""

from __future__ import annotations

import contextlib
from typing import Any

from mailroom import clock
from mailroom.domain.tokens import TokenType
from mailroom.store import keys, organizations
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, serialize, values

# Expired tokens stay listable for a while (so an operator sees why a client fails), then TTL removes them.
EXPIRED_GRACE_SECONDS = 30 * 24 * 3600


def _sk(token_type: TokenType, token_id: str) -> str:
    return keys.api_key_sk(token_id) if token_type is TokenType.API_KEY else keys.token_sk(token_id)


def _counter(token_type: TokenType) -> str:
    return "api_key_count" if token_type is TokenType.API_KEY else "token_count"


def stored_item(token: Item) -> Item:
    """A token record with its keys (base item in the org partition, hash lookup in GSI1)."""
    org_id = token["org_id"]
    item = {
        **token,
        "PK": keys.org_pk(org_id),
        "SK": _sk(TokenType(token["token_type"]), token["id"]),
        "GSI1PK": keys.token_lookup_pk(token["token_hash"]),
        "GSI1SK": "TOKEN",
        "type": "token",
    }
    if token.get("expires_at_epoch"):
        item["ttl"] = int(token["expires_at_epoch"]) + EXPIRED_GRACE_SECONDS
    return item


def create(table: Table, token: Item) -> None:
    """Store a token item and count it on the organization, atomically."""
    table.transact(
        [
            {
                "Put": {
                    "Item": serialize(stored_item(token)),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            organizations.counter_update(token["org_id"], _counter(TokenType(token["token_type"])), 1),
        ]
    )


def find_by_hash(table: Table, token_hash: str) -> Item | None:
    return table.query_one(partition=keys.token_lookup_pk(token_hash), index="GSI1")


def get(table: Table, org_id: str, token_id: str, *, token_type: TokenType = TokenType.OPS) -> Item | None:
    return table.get(keys.org_pk(org_id), _sk(token_type, token_id))


def list_page(
    table: Table,
    org_id: str,
    *,
    per_page: int,
    cursor: str | None,
    token_type: TokenType = TokenType.OPS,
) -> Page:
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=_sk(token_type, ""), per_page=per_page, cursor=cursor
    )


def window(
    table: Table, org_id: str, *, offset: int, limit: int, token_type: TokenType = TokenType.OPS
) -> list[Item]:
    """Tokens (or API keys) ``offset`` to ``offset + limit`` in id order: a numbered v0 page."""
    return table.query_window(
        partition=keys.org_pk(org_id), sk_prefix=_sk(token_type, ""), offset=offset, limit=limit
    )


def delete(table: Table, org_id: str, token_id: str, *, token_type: TokenType = TokenType.OPS) -> bool:
    """Revoke: remove the token and its count. False when it did not exist."""
    key = {"PK": {"S": keys.org_pk(org_id)}, "SK": {"S": _sk(token_type, token_id)}}
    try:
        table.transact(
            [
                {"Delete": {"Key": key, "ConditionExpression": "attribute_exists(PK)"}},
                organizations.counter_update(org_id, _counter(token_type), -1),
            ]
        )
    except ConditionFailed:
        return False
    return True


def touch(table: Table, org_id: str, token_id: str, *, sk: str | None = None) -> None:
    """Record use. Called on each lookup (``mailroom.auth``), so ``used_at`` is exact to its cache TTL.

    ``sk``: the item's sort key when it is not an ops token's (message tokens live under MSGTOKEN#,
    API keys under APIKEY#).
    """
    # A token revoked since the lookup has nothing left to touch.
    with contextlib.suppress(ConditionFailed):
        table.update(
            keys.org_pk(org_id),
            sk or keys.token_sk(token_id),
            "SET used_at = :now",
            condition="attribute_exists(PK)",
            expression_values=values(now=clock.now_iso()),
            return_values="NONE",
        )


def public_view(item: Item) -> dict[str, Any]:
    """A token as the API shows it: never the hash, never the secret."""
    return {
        "id": item["id"],
        "name": item["name"],
        "type": item["token_type"],
        "prefix": item["prefix"],
        "last_four": item["last_four"],
        "scopes": item.get("scopes", []),
        "mailbox_id": item.get("mailbox_id"),
        "rate_limit_per_minute": item.get("rate_limit_per_minute"),
        "expires_at": item.get("expires_at"),
        "used_at": item.get("used_at"),
        "created_at": item["created_at"],
        "created_by": item.get("created_by"),
    }
