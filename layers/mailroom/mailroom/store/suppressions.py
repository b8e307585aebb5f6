"""The organization's suppression list: addresses no mailbox of the organization may send to,
because they hard-bounced or complained (``PK ORG#<org>``, ``SK SUPPRESS#<address>``).

Adding is a conditional put together with the organization's ``suppression_count``, so the count
stays exact when the same bounce is reported twice (the second put fails and changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Rejected, Update, delete, put_new, run

REASONS = ("hard_bounce", "complaint")


def suppression_item(org_id: str, record: Item) -> Item:
    return {
        **record,
        "PK": keys.org_pk(org_id),
        "SK": keys.suppression_sk(record["address"]),
        "type": "suppression",
        "org_id": org_id,
    }


def add(table: Table, org_id: str, record: Item) -> bool:
    """Suppress ``record["address"]``; False when it already was (nothing changes then)."""
    try:
        run(
            table,
            [
                put_new("suppression", suppression_item(org_id, record)),
                Update(keys.org_pk(org_id), keys.ORG_SK).add(suppression_count=1).op("org"),
            ],
        )
    except Rejected as rejected:
        if "suppression" in rejected.roles:
            return False
        raise
    return True


def remove(table: Table, org_id: str, address: str) -> bool:
    """Lift a suppression; False when the address was not suppressed."""
    try:
        run(
            table,
            [
                delete(
                    "suppression",
                    keys.org_pk(org_id),
                    keys.suppression_sk(address),
                    condition="attribute_exists(PK)",
                ),
                Update(keys.org_pk(org_id), keys.ORG_SK).add(suppression_count=-1).op("org"),
            ],
        )
    except Rejected as rejected:
        if "suppression" in rejected.roles:
            return False
        raise
    return True


def get(table: Table, org_id: str, address: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.suppression_sk(address))


def find(table: Table, org_id: str, addresses: Iterable[str]) -> dict[str, Item]:
    """The suppressed ones among ``addresses`` (lower-cased), by address: one BatchGetItem."""
    wanted = list(dict.fromkeys(a.lower() for a in addresses))
    if not wanted:
        return {}
    found = table.batch_get([(keys.org_pk(org_id), keys.suppression_sk(a)) for a in wanted])
    return {item["address"]: item for item in found}


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    """Suppressed addresses in address order (one Query per page)."""
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=keys.SUPPRESSION_PREFIX, per_page=per_page, cursor=cursor
    )
