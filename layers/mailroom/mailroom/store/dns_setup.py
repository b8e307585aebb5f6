"""DNS provider state of an organization: stored Cloudflare tokens (sealed), each domain's
connection to a zone, and previews of change sets (kept a short while by TTL). Keys in keys.py."""

from __future__ import annotations

import contextlib
from typing import Any

from mailroom.store import keys, organizations
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, serialize, values

DEFAULT_TOKEN_LIMIT = 25  # stored Cloudflare tokens per organization


class TokenLimitReached(Exception):
    pass


# --- Cloudflare tokens -------------------------------------------------------------------------------


def add_token(table: Table, token: Item, *, limit: int) -> None:
    """The token item and the organization's count, together; TokenLimitReached at the limit."""
    count = organizations.counter_update(token["org_id"], "cloudflare_token_count", 1)
    count["Update"]["ConditionExpression"] = (
        "attribute_exists(PK) AND (attribute_not_exists(cloudflare_token_count) "
        "OR cloudflare_token_count < :limit)"
    )
    count["Update"]["ExpressionAttributeValues"].update(values(limit=limit))
    item = {
        **token,
        "PK": keys.org_pk(token["org_id"]),
        "SK": keys.cloudflare_token_sk(token["id"]),
        "type": "cloudflare_token",
    }
    try:
        table.transact(
            [{"Put": {"Item": serialize(item), "ConditionExpression": "attribute_not_exists(PK)"}}, count]
        )
    except ConditionFailed as failed:
        if failed.failed(1):
            raise TokenLimitReached from failed
        raise


def get_token(table: Table, org_id: str, token_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.cloudflare_token_sk(token_id))


def list_tokens(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=keys.CLOUDFLARE_TOKEN_PREFIX,
        per_page=per_page,
        cursor=cursor,
    )


def delete_token(table: Table, org_id: str, token_id: str) -> bool:
    """Remove the token and count it out; False if there was none."""
    try:
        table.transact(
            [
                {
                    "Delete": {
                        "Key": serialize(
                            {"PK": keys.org_pk(org_id), "SK": keys.cloudflare_token_sk(token_id)}
                        ),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
                organizations.counter_update(org_id, "cloudflare_token_count", -1),
            ]
        )
    except ConditionFailed:
        return False
    return True


def touch_token(table: Table, org_id: str, token_id: str, now_iso: str) -> None:
    """Note when a stored token was last used (only if it still exists)."""
    with contextlib.suppress(ConditionFailed):  # deleted meanwhile: nothing to note
        table.update(
            keys.org_pk(org_id),
            keys.cloudflare_token_sk(token_id),
            "SET last_used_at = :now",
            condition="attribute_exists(PK)",
            expression_values=values(now=now_iso),
            return_values="NONE",
        )


# --- connections -------------------------------------------------------------------------------------


def put_connection(table: Table, connection: Item) -> None:
    """Connect a domain (a domain has one connection: connecting again replaces it)."""
    table.put(
        {
            **connection,
            "PK": keys.org_pk(connection["org_id"]),
            "SK": keys.dns_connection_sk(connection["domain_id"]),
            "type": "dns_connection",
        }
    )


def get_connection(table: Table, org_id: str, domain_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.dns_connection_sk(domain_id))


# --- previews ----------------------------------------------------------------------------------------


def put_preview(table: Table, preview: Item) -> None:
    table.put(
        {
            **preview,
            "PK": keys.org_pk(preview["org_id"]),
            "SK": keys.dns_preview_sk(preview["id"]),
            "type": "dns_preview",
        },
        condition="attribute_not_exists(PK)",
    )


def get_preview(table: Table, org_id: str, preview_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.dns_preview_sk(preview_id))


def mark_applied(table: Table, org_id: str, preview_id: str, result: dict[str, Any]) -> Item | None:
    """Record the apply's result on the preview, once: None when another apply recorded first."""
    try:
        return table.update(
            keys.org_pk(org_id),
            keys.dns_preview_sk(preview_id),
            "SET applied = :result",
            condition="attribute_exists(PK) AND attribute_not_exists(applied)",
            expression_values=values(result=result),
        )
    except ConditionFailed:
        return None
