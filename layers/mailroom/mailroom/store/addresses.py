"""The organization's address directory: which mailbox or alias owns an address."""

from __future__ import annotations

from mailroom.store import keys
from mailroom.store.table import Item, Table


def resolve(table: Table, org_id: str, address: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.address_sk(address))
