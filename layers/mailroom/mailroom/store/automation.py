"""The organization's automation partition (``ORG#<org>#AUTOMATION``, keys.py): the HEAD item,
rules, actions, routes and the route sets built from them.

Every change is one transaction that moves the HEAD item's ``version`` from the value read to the
next one (``commit``): changes of one organization's automation are serialized by that condition,
so whatever a change read (routes, rules, actions) was still current when it wrote, and the route
sets it writes carry the version they were built at (``built_version``) and only ever move forward.
The HEAD item also holds the counts the limits are checked on, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table, deserialize, values
from mailroom.store.txn import Op, Rejected, Update, check, delete, put, put_new, run

KIND_PREFIX = {
    "rule": keys.AUTOMATION_RULE_PREFIX,
    "action": keys.AUTOMATION_ACTION_PREFIX,
    "route": keys.AUTOMATION_ROUTE_PREFIX,
    "task": keys.AUTOMATION_TASK_PREFIX,  # task configs (their own API): read to refuse deleting an action
}
KIND_SK = {
    "rule": keys.automation_rule_sk,
    "action": keys.automation_action_sk,
    "route": keys.automation_route_sk,
}
ITEM_TYPE = {"rule": "automation_rule", "action": "action", "route": "route"}
COUNTER = {"rule": "rule_count", "action": "action_count", "route": "route_count"}


class VersionChanged(Exception):
    """Another change of the organization's automation committed since the HEAD was read."""


class LimitHit(Exception):
    """The organization's count of that kind is at its limit."""


class TargetGone(Exception):
    """The route's mailbox or domain is not the organization's (or was deleted meanwhile)."""


def head(table: Table, org_id: str) -> Item:
    """The HEAD item (an empty one before the first change)."""
    return table.get(keys.automation_pk(org_id), keys.AUTOMATION_HEAD_SK) or {}


def version_of(head_item: Mapping[str, Any]) -> int:
    return int(head_item.get("version", 0))


def get(table: Table, org_id: str, kind: str, item_id: str) -> Item | None:
    return table.get(keys.automation_pk(org_id), KIND_SK[kind](item_id))


def list_page(
    table: Table,
    org_id: str,
    kind: str,
    *,
    per_page: int,
    cursor: str | None,
    target: tuple[str, str] | None = None,
) -> Page:
    """A page of one kind in id (creation) order; routes optionally of one target only (a filter:
    such pages link forward only)."""
    filtered = None
    if target is not None:
        kind_of_target, target_id = target
        filtered = (
            "#target.#id = :target",
            {"#target": "target", "#id": f"{kind_of_target}_id"},
            values(target=target_id),
        )
    return table.query_page(
        partition=keys.automation_pk(org_id),
        sk_prefix=KIND_PREFIX[kind],
        per_page=per_page,
        cursor=cursor,
        filter_expression=filtered,
    )


def all_of(table: Table, org_id: str, kind: str) -> list[Item]:
    """Every item of a kind (at most a few hundred, each small), read consistently: what a change
    decides on must be what it commits against."""
    found: list[Item] = []
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": values(pk=keys.automation_pk(org_id), prefix=KIND_PREFIX[kind]),
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.client.query(**kwargs)
        found.extend(deserialize(i) for i in response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if not start:
            return found


def many(table: Table, org_id: str, kind: str, item_ids: Iterable[str]) -> dict[str, Item]:
    """Items of a kind by id (one BatchGetItem per 100), read consistently; missing ones are absent."""
    pk = keys.automation_pk(org_id)
    wanted = [(pk, KIND_SK[kind](i)) for i in dict.fromkeys(item_ids)]
    return {str(item["id"]): item for item in table.batch_get(wanted)} if wanted else {}


def stored(kind: str, item: Mapping[str, Any]) -> Item:
    return {
        **item,
        "PK": keys.automation_pk(str(item["org_id"])),
        "SK": KIND_SK[kind](str(item["id"])),
        "type": ITEM_TYPE[kind],
    }


def put_item(kind: str, item: Mapping[str, Any], *, new: bool) -> Op:
    """Create (the id must be free) or replace (the item must exist) one item."""
    if new:
        return put_new(kind, stored(kind, item))
    op = put(kind, stored(kind, item))
    op.body["Put"]["ConditionExpression"] = "attribute_exists(PK)"
    return op


def delete_item(kind: str, org_id: str, item_id: str) -> Op:
    return delete(kind, keys.automation_pk(org_id), KIND_SK[kind](item_id), condition="attribute_exists(PK)")


def target_exists(org_id: str, target_kind: str, target_id: str) -> Op:
    sk = keys.mailbox_sk(target_id) if target_kind == "mailbox" else keys.domain_sk(target_id)
    return check("target", keys.org_pk(org_id), sk, "attribute_exists(PK)")


def route_set_sk(target_kind: str, target_id: str) -> str:
    if target_kind == "mailbox":
        return keys.mailbox_route_set_sk(target_id)
    return keys.domain_route_set_sk(target_id)


@dataclass(frozen=True, slots=True)
class BuiltSet:
    """A target's route set as the contract stores it (``routes`` None: the target has no enabled
    route, so its item is deleted)."""

    target_kind: str
    target_id: str
    routes: str | None
    data_keys: list[str] = field(default_factory=list)


def route_set_op(org_id: str, built: BuiltSet, *, version: int, now_iso: str) -> Op:
    pk, sk = keys.automation_pk(org_id), route_set_sk(built.target_kind, built.target_id)
    role = f"route_set:{built.target_kind}:{built.target_id}"
    if built.routes is None:
        return delete(role, pk, sk)
    return put(
        role,
        {
            "PK": pk,
            "SK": sk,
            "type": "route_set",
            "org_id": org_id,
            "target": {f"{built.target_kind}_id": built.target_id},
            "built_version": version,
            "routes": built.routes,
            "data_keys": list(built.data_keys),
            "updated_at": now_iso,
        },
    )


def get_route_set(table: Table, org_id: str, target_kind: str, target_id: str) -> Item | None:
    return table.get(keys.automation_pk(org_id), route_set_sk(target_kind, target_id))


def commit(
    table: Table,
    org_id: str,
    *,
    version_read: int,
    operations: Sequence[Op],
    counts: Mapping[str, int] | None = None,
    limits: Mapping[str, int] | None = None,
    now_iso: str,
) -> int:
    """Write ``operations`` with the HEAD moved to the next version, if it still has the version
    read; returns the new version. ``counts``: counters to move (``rule_count``: +1...), each held
    to ``limits``. Raises VersionChanged, LimitHit or TargetGone; nothing is written then."""
    new_version = version_read + 1
    update = Update(keys.automation_pk(org_id), keys.AUTOMATION_HEAD_SK, upsert=True)
    update.set(type="automation_head", version=new_version, updated_at=now_iso, org_id=org_id)
    # Another change since the read: everything this one decided may be stale.
    if version_read:
        update.equals("version", version_read)
    else:
        update.when(f"attribute_not_exists({update.name('version')})")
    for counter, delta in (counts or {}).items():
        update.add(**{counter: delta})
        if delta > 0 and limits and counter in limits:
            update.at_most(counter, limits[counter] - delta)
    try:
        run(table, [update.op("head"), *operations])
    except Rejected as rejected:
        if "head" in rejected.roles:
            current = head(table, org_id)
            if version_of(current) != version_read:
                raise VersionChanged from rejected
            raise LimitHit from rejected
        if "target" in rejected.roles:
            raise TargetGone from rejected
        # An item created or deleted meanwhile moves the HEAD too: treat it as a concurrent change.
        raise VersionChanged from rejected
    return new_version
