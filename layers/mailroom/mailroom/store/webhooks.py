"""Webhook endpoints: the item under the organization, its count, and its health bookkeeping.

A webhook's signing secrets are stored only as KMS ciphertexts (``secrets``: the current one first,
then previous ones still signing until their ``expires_at``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mailroom.store import keys, organizations
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, deserialize, serialize, values

PREFIX = "WEBHOOK#"
DEFAULT_LIMIT = 25  # per organization, unless its limits say otherwise


class WebhookLimitReached(Exception):
    pass


def webhook_item(webhook: Item) -> Item:
    return {
        **webhook,
        "PK": keys.org_pk(webhook["org_id"]),
        "SK": keys.webhook_sk(webhook["id"]),
        "type": "webhook",
    }


def create(table: Table, webhook: Item, *, limit: int) -> None:
    """The webhook and the organization's count, together; WebhookLimitReached at the limit."""
    count = organizations.counter_update(webhook["org_id"], "webhook_count", 1)
    count["Update"]["ConditionExpression"] = (
        "attribute_exists(PK) AND (attribute_not_exists(webhook_count) OR webhook_count < :limit)"
    )
    count["Update"]["ExpressionAttributeValues"].update(values(limit=limit))
    try:
        table.transact(
            [
                {
                    "Put": {
                        "Item": serialize(webhook_item(webhook)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                count,
            ]
        )
    except ConditionFailed as failed:
        if failed.failed(1):
            raise WebhookLimitReached from failed
        raise


def get(table: Table, org_id: str, webhook_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.webhook_sk(webhook_id))


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(partition=keys.org_pk(org_id), sk_prefix=PREFIX, per_page=per_page, cursor=cursor)


def window(table: Table, org_id: str, *, offset: int, limit: int) -> list[Item]:
    """Webhooks ``offset`` to ``offset + limit`` in id (creation) order: a numbered v0 page."""
    return table.query_window(partition=keys.org_pk(org_id), sk_prefix=PREFIX, offset=offset, limit=limit)


def all_of(table: Table, org_id: str) -> list[Item]:
    """Every webhook of an organization (a bounded handful), read consistently: a webhook created a
    moment before an event must see that event."""
    found: list[Item] = []
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": values(pk=keys.org_pk(org_id), prefix=PREFIX),
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.client.query(**kwargs)
        found.extend(deserialize(i) for i in response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if not start:
            return found


def update(
    table: Table,
    org_id: str,
    webhook_id: str,
    fields: dict[str, Any],
    *,
    remove: Sequence[str] = (),
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
) -> Item:
    """Set (and remove) attributes of an existing webhook; returns the new item.

    ConditionFailed when it does not exist (or ``condition`` does not hold)."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    names |= {f"#r{i}": name for i, name in enumerate(remove)}
    clauses = []
    if fields:
        clauses.append("SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))))
    if remove:
        clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove))))
    wire = values(**{f"f{i}": value for i, value in enumerate(fields.values())})
    wire |= values(**(condition_values or {}))
    return table.update(
        keys.org_pk(org_id),
        keys.webhook_sk(webhook_id),
        " ".join(clauses),
        condition="attribute_exists(PK)" + (f" AND ({condition})" if condition else ""),
        names=names,
        expression_values=wire,
    )


def delete(table: Table, org_id: str, webhook_id: str) -> bool:
    """Remove the webhook and count it out; False if there was none. Its deliveries expire by TTL."""
    try:
        table.transact(
            [
                {
                    "Delete": {
                        "Key": serialize({"PK": keys.org_pk(org_id), "SK": keys.webhook_sk(webhook_id)}),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
                organizations.counter_update(org_id, "webhook_count", -1),
            ]
        )
    except ConditionFailed as failed:
        if failed.failed(0):
            return False
        raise
    return True


# ----------------------------------------------------------------------------- health


def mark_failing(table: Table, org_id: str, webhook_id: str, *, now_iso: str) -> None:
    """Start the continuous-failure clock unless it is already running."""
    with contextlib.suppress(ConditionFailed):  # deleted meanwhile
        table.update(
            keys.org_pk(org_id),
            keys.webhook_sk(webhook_id),
            "SET first_failure_at = if_not_exists(first_failure_at, :now)",
            condition="attribute_exists(PK)",
            expression_values=values(now=now_iso),
            return_values="NONE",
        )


def mark_recovered(table: Table, org_id: str, webhook_id: str) -> None:
    with contextlib.suppress(ConditionFailed):  # already cleared by a concurrent success
        table.update(
            keys.org_pk(org_id),
            keys.webhook_sk(webhook_id),
            "REMOVE first_failure_at",
            condition="attribute_exists(first_failure_at)",
            return_values="NONE",
        )


def disable(table: Table, org_id: str, webhook_id: str, *, reason: str, now_iso: str) -> bool:
    """Disable an enabled webhook, saying why; False if it was already disabled (or is gone)."""
    try:
        table.update(
            keys.org_pk(org_id),
            keys.webhook_sk(webhook_id),
            "SET enabled = :off, disabled_reason = :reason, disabled_at = :now, updated_at = :now",
            condition="attribute_exists(PK) AND enabled = :on",
            expression_values=values(off=False, on=True, reason=reason, now=now_iso),
            return_values="NONE",
        )
    except ConditionFailed:
        return False
    return True


def count_deliveries(table: Table, org_id: str, webhook_id: str, created: int) -> None:
    """The webhook's maintained count of deliveries (the total of its deliveries listing)."""
    with contextlib.suppress(ConditionFailed):  # deleted meanwhile: nothing left to count on
        table.update(
            keys.org_pk(org_id),
            keys.webhook_sk(webhook_id),
            "ADD delivery_count :n",
            condition="attribute_exists(PK)",
            expression_values=values(n=created),
            return_values="NONE",
        )


# ----------------------------------------------------------------------------- batch reads


def batch_get(table: Table, item_keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Item]:
    """Items by (PK, SK), read consistently, 100 keys per request; missing ones are absent."""
    wanted = list(dict.fromkeys(item_keys))
    found: dict[tuple[str, str], Item] = {}
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {
            table.name: {
                "Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in wanted[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        for retry in range(8):
            if retry:
                time.sleep(0.05 * 2**retry)  # unprocessed keys mean throttling: back off
            response = table.client.batch_get_item(RequestItems=request)
            for wire in response.get("Responses", {}).get(table.name, []):
                item = deserialize(wire)
                found[(item["PK"], item["SK"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError("batch_get_item kept returning unprocessed keys")
    return found
