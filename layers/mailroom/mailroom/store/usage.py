"""Usage counters (one item per organization and UTC month) and the monthly invoices.

A counter moves in the write that does the work: ``counter_op`` is one more operation of the
transaction that stores or removes a message, so metering costs no DynamoDB request of its own
(TransactWriteItems takes up to 100 operations; the operation does cost its write units). API
requests are the exception, counted in the function's memory and added in batches
(services/request_meter.py): ``add`` is that batch's one UpdateItem.
"""

from __future__ import annotations

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update

COUNTERS = (
    "messages_received",
    "messages_sent",
    "messages_forwarded",
    "sent_recipients",
    "messages_imported",
    "stored_bytes_added",
    "stored_bytes_removed",
    "api_requests",
)


def _counter(org_id: str, month: str, deltas: dict[str, int]) -> Update:
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown usage counter(s): {', '.join(sorted(unknown))}")
    return (
        Update(keys.org_pk(org_id), keys.usage_sk(month), upsert=True)
        .set_if_absent(type="usage", org_id=org_id, month=month)
        .add(**deltas)
    )


def counter_op(org_id: str, month: str, **deltas: int) -> Op:
    """The month's counters moved by ``deltas``, as an operation of the caller's transaction."""
    return _counter(org_id, month, deltas).op("usage")


def add(table: Table, org_id: str, month: str, **deltas: int) -> None:
    """The month's counters moved by ``deltas`` in one UpdateItem (no condition: never refused)."""
    _counter(org_id, month, deltas).apply(table)


def month_items(table: Table, org_id: str, month: str) -> dict[str, Item]:
    """The organization, its usage and its verification credits for ``month`` (one BatchGetItem),
    by kind: ``org``, ``usage``, ``credits`` (absent when there is no such item)."""
    wanted = {
        keys.ORG_SK: "org",
        keys.usage_sk(month): "usage",
        keys.verify_credits_sk(month): "credits",
    }
    found = table.batch_get([(keys.org_pk(org_id), sk) for sk in wanted])
    return {wanted[item["SK"]]: item for item in found if item["SK"] in wanted}


def get_usage(table: Table, org_id: str, month: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.usage_sk(month))


def put_invoice(table: Table, invoice: Item) -> bool:
    """Store a closed month's invoice; False when that month was closed before (nothing changes)."""
    from mailroom.store.errors import ConditionFailed

    item = {
        **invoice,
        "PK": keys.org_pk(str(invoice["org_id"])),
        "SK": keys.invoice_sk(str(invoice["period"])),
        "type": "invoice",
    }
    try:
        table.put(item, condition="attribute_not_exists(PK)")
    except ConditionFailed:
        return False
    return True


def get_invoice(table: Table, org_id: str, month: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.invoice_sk(month))


def invoices_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    """The organization's invoices, newest month first."""
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=keys.INVOICE_PREFIX,
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )
