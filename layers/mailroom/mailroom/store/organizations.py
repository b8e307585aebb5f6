"""Organizations: the tenant item, its limits and its maintained counters."""

from __future__ import annotations

from typing import Any

from mailroom import clock, ids
from mailroom.domain.plans import Plan
from mailroom.store import keys, plans
from mailroom.store.table import Item, Page, Table, serialize, values

DEFAULT_LIMITS: dict[str, int] = {"mailboxes": 50, "domains": 10, "storage_mb": 51200, "aliases": 500}
DEFAULT_LIMITS |= {"migration_batch_rows": 300, "migration_concurrency": 5}  # bulk migrations (Pro plan)
DEFAULT_LIMITS |= {"message_tokens": 50}  # managed message tokens per mailbox (Pro plan)
COUNTERS = (
    "mailbox_count",
    "domain_count",
    "alias_count",
    "token_count",
    "api_key_count",
    "audit_count",
    "storage_used_bytes",
    "webhook_count",
    # The storage pool (limits.storage_mb): MB carved out for dedicated mailboxes, MB reserved by
    # pending dedicated invites, and their sum (kept as its own counter because a DynamoDB
    # condition cannot add two attributes: "committed <= pool - request" needs one number).
    "storage_dedicated_mb",
    "storage_reserved_mb",
    "storage_committed_mb",
    "cloudflare_token_count",  # stored Cloudflare tokens (services/cloudflare_tokens.py)
)


def new_id() -> str:
    return ids.new_id("org")


def create(
    table: Table,
    *,
    name: str,
    limits: dict[str, int] | None = None,
    org_id: str | None = None,
    first_token: Item | None = None,
    plan: Plan | None = None,
) -> Item:
    """A new organization; with ``first_token`` (a stored-form item from tokens.stored_item) both
    are written in one transaction, so no organization ever exists without its admin token.

    With ``plan`` it starts on that plan (store/plans.py), ``limits`` being its own overrides of the
    plan's; without, ``limits`` over the defaults (an organization on no plan: every scope)."""
    now = clock.now_iso()
    org_id = org_id or new_id()
    item: Item = {
        "PK": keys.org_pk(org_id),
        "SK": keys.ORG_SK,
        "GSI1PK": keys.ORGS_INDEX_PK,
        "GSI1SK": keys.org_pk(org_id),
        "type": "organization",
        "id": org_id,
        "name": name,
        "limits": {**DEFAULT_LIMITS, **(limits or {})},
        **dict.fromkeys(COUNTERS, 0),
        "created_at": now,
        "updated_at": now,
    }
    if plan is not None:
        if limits:
            item["limit_overrides"] = dict(limits)
        item |= plans.assignment(plan, item)
    if first_token is None:
        table.put(item, condition="attribute_not_exists(PK)")
        return item
    item["token_count"] = 1
    token = {**first_token, "org_id": org_id, "PK": keys.org_pk(org_id)}
    table.transact(
        [
            {"Put": {"Item": serialize(item), "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"Item": serialize(token), "ConditionExpression": "attribute_not_exists(PK)"}},
        ]
    )
    return item


def get(table: Table, org_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.ORG_SK)


def list_page(table: Table, *, per_page: int, cursor: str | None = None) -> Page:
    return table.query_page(partition=keys.ORGS_INDEX_PK, index="GSI1", per_page=per_page, cursor=cursor)


def counter_update(org_id: str, counter: str, delta: int) -> dict[str, Any]:
    """A TransactWriteItems ``Update`` that moves one maintained counter of the organization."""
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter}")
    return {
        "Update": {
            "Key": {"PK": {"S": keys.org_pk(org_id)}, "SK": {"S": keys.ORG_SK}},
            "UpdateExpression": "ADD #c :d",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#c": counter},
            "ExpressionAttributeValues": values(d=delta),
        }
    }
