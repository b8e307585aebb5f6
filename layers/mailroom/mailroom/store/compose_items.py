"""A mailbox's sending identities and message templates (see ``keys.py``: ``IDENTITY#``, ``TEMPLATE#``).

Both live in the mailbox's partition, so the mailbox purge removes them with its mail, and are
counted on the mailbox item (``identity_count``, ``template_count``) in the transaction that adds
or removes one: the per-mailbox limit holds under concurrency and lists show a maintained total.
The default identity is one attribute of the mailbox item (``default_identity_id``), so there is
exactly one at any time, and a send that reads the mailbox already knows it.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Any

from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Rejected, Update, delete, put_new, run


class Kind(StrEnum):
    IDENTITY = "identity"
    TEMPLATE = "template"

    @property
    def prefix(self) -> str:
        return f"{self.value.upper()}#"

    @property
    def counter(self) -> str:
        return f"{self.value}_count"


class LimitReached(Exception):
    """The mailbox already has its maximum of this kind."""


def sk(kind: Kind, item_id: str) -> str:
    return f"{kind.prefix}{item_id}"


def _mailbox(org_id: str) -> str:
    return keys.org_pk(org_id)


def get(table: Table, kind: Kind, org_id: str, mailbox_id: str, item_id: str) -> Item | None:
    return table.get(keys.mailbox_pk(org_id, mailbox_id), sk(kind, item_id))


def list_page(
    table: Table, kind: Kind, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None
) -> Page:
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id), sk_prefix=kind.prefix, per_page=per_page, cursor=cursor
    )


def create(table: Table, kind: Kind, item: Item, *, limit: int, make_default: bool = False) -> None:
    """Put a new item (``item`` has org_id, mailbox_id, id) and count it; LimitReached over ``limit``."""
    org_id, mailbox_id = str(item["org_id"]), str(item["mailbox_id"])
    stored = {"PK": keys.mailbox_pk(org_id, mailbox_id), "SK": sk(kind, str(item["id"])), "type": kind.value}
    counter = Update(_mailbox(org_id), keys.mailbox_sk(mailbox_id)).add(**{kind.counter: 1})
    counter.at_most(kind.counter, limit - 1)
    if make_default:
        counter.set(default_identity_id=item["id"])
    try:
        run(table, [put_new("item", {**item, **stored}), counter.op("mailbox")])
    except Rejected as rejected:
        if "mailbox" in rejected.roles:
            raise LimitReached(f"at most {limit} {kind.value}s per mailbox") from rejected
        raise


def update(
    table: Table, kind: Kind, item: Item, fields: dict[str, Any], *, default: bool | None = None
) -> Item:
    """Set ``fields`` on an existing item (ConditionFailed if it is gone); ``default`` True makes an
    identity the mailbox's default, False stops it being the default (if it is)."""
    org_id, mailbox_id, item_id = str(item["org_id"]), str(item["mailbox_id"]), str(item["id"])
    change = Update(keys.mailbox_pk(org_id, mailbox_id), sk(kind, item_id)).set(**fields)
    operations = [change.op("item")]
    if default is True:
        operations.append(
            Update(_mailbox(org_id), keys.mailbox_sk(mailbox_id))
            .set(default_identity_id=item_id)
            .op("mailbox")
        )
    elif default is False:
        unset = Update(_mailbox(org_id), keys.mailbox_sk(mailbox_id)).remove("default_identity_id")
        unset.equals("default_identity_id", item_id)
        operations.append(unset.op("default"))
    try:
        run(table, operations)
    except Rejected as rejected:
        if rejected.roles == ["default"]:  # not the default anyway: only the fields change
            change.apply(table)
        else:
            raise ConditionFailed(f"{kind.value} {item_id} is gone") from rejected
    fresh = get(table, kind, org_id, mailbox_id, item_id)
    if fresh is None:
        raise ConditionFailed(f"{kind.value} {item_id} is gone")
    return fresh


def remove(table: Table, kind: Kind, item: Item) -> bool:
    """Delete an item and uncount it (and stop it being the default); False if it was gone."""
    org_id, mailbox_id, item_id = str(item["org_id"]), str(item["mailbox_id"]), str(item["id"])
    pk = keys.mailbox_pk(org_id, mailbox_id)
    counter = Update(_mailbox(org_id), keys.mailbox_sk(mailbox_id)).add(**{kind.counter: -1})
    operations = [
        delete("item", pk, sk(kind, item_id), condition="attribute_exists(PK)"),
        counter.op("mailbox"),
    ]
    try:
        run(table, operations)
    except Rejected as rejected:
        if "item" in rejected.roles:
            return False
        raise
    if kind is Kind.IDENTITY:
        unset = Update(_mailbox(org_id), keys.mailbox_sk(mailbox_id)).remove("default_identity_id")
        with contextlib.suppress(ConditionFailed):  # it was not the default
            unset.equals("default_identity_id", item_id).apply(table)
    return True
