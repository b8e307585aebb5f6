"""What inbound reads and writes of the automation model (keys.py "The automation model"): the
route-set items of a mailbox and of its domain (written by the automation API), and the route-hit
items of a stored message (the archive's ``route`` filter reads them).

Inbound reads route sets in the BatchGetItem of a mailbox's screening (services/inbound_routing.py):
nothing here makes a request of its own except ``put_hits``, for the rare message that matched more
routes than fit in its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from mailroom import clock
from mailroom.store import keys
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op, put

Key = tuple[str, str]


def route_set_keys(org_id: str, mailbox_id: str, domain_id: str | None) -> list[Key]:
    """The mailbox's route set, then its domain's."""
    pk = keys.automation_pk(org_id)
    found = [(pk, keys.mailbox_route_set_sk(mailbox_id))]
    if domain_id:
        found.append((pk, keys.domain_route_set_sk(domain_id)))
    return found


def data_item_key(org_id: str, mailbox_id: str, data_key: str) -> Key:
    return keys.mailbox_pk(org_id, mailbox_id), keys.mailbox_data_sk(data_key)


def folder_path_key(org_id: str, mailbox_id: str, path: str) -> Key:
    return keys.mailbox_pk(org_id, mailbox_id), keys.folder_path_sk(path)


def hit_item(org_id: str, mailbox_id: str, route_id: str, message_ulid: str, received_at: datetime) -> Item:
    return {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.route_hit_sk(route_id, message_ulid),
        "type": "route_hit",
        "route_id": route_id,
        "message_ulid": message_ulid,
        "received_at": clock.isoformat(received_at),
    }


def hit_op(item: Item) -> Op:
    """A route hit in the message's transaction (a retry rewrites the same item)."""
    return put(f"route_hit:{item['route_id']}", item)


def put_hits(table: Table, items: Iterable[Item]) -> None:
    for item in items:
        table.put(item)
