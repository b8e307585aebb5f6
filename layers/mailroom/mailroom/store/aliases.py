"""Aliases: an address on a hosted domain that delivers to mailboxes or external addresses."""

from __future__ import annotations

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, delete, put_new

ALIAS_PREFIX = "ALIAS#"


def alias_item(alias: Item) -> Item:
    org_id, alias_id = alias["org_id"], alias["id"]
    return {
        **alias,
        "PK": keys.org_pk(org_id),
        "SK": keys.alias_sk(alias_id),
        "GSI1PK": keys.domain_aliases_pk(org_id, alias["domain_id"]),
        "GSI1SK": keys.alias_sk(alias_id),
        "type": "alias",
    }


def get(table: Table, org_id: str, alias_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.alias_sk(alias_id))


def list_page(
    table: Table, org_id: str, *, per_page: int, cursor: str | None, domain_id: str | None = None
) -> Page:
    if domain_id:
        return table.query_page(
            partition=keys.domain_aliases_pk(org_id, domain_id),
            index="GSI1",
            per_page=per_page,
            cursor=cursor,
        )
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=ALIAS_PREFIX, per_page=per_page, cursor=cursor
    )


def create_op(alias: Item) -> Op:
    return put_new(f"alias:{alias['id']}", alias_item(alias))


def update(org_id: str, alias_id: str) -> Update:
    return Update(keys.org_pk(org_id), keys.alias_sk(alias_id))


def delete_op(alias: Item) -> Op:
    return delete(
        f"alias:{alias['id']}",
        keys.org_pk(alias["org_id"]),
        keys.alias_sk(alias["id"]),
        condition="attribute_exists(PK)",
    )
