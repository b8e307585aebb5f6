"""What a send must know before anything leaves, in one BatchGetItem.

A send checks three things held in its organization's partition: the sender domain's item (mailcow's
``active: false`` refuses the send), the sender domain's SMTP-relay claim (its relay sends instead of
SES), and the suppression entries of its recipients. They are independent items with keys known once
the message is composed, so one strongly consistent BatchGetItem reads them together (at most 50
recipients + 2 keys: under BatchGetItem's 100) instead of a GetItem, a GetItem and a BatchGetItem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mailroom.store import keys
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class SendChecks:
    domain: Item | None  # the sender domain's item (None: not one of the organization's domains)
    relay_id: str | None  # the SMTP relay that sends for the sender domain, if any
    suppressed: dict[str, Item] = field(default_factory=dict)  # lower-cased address → entry


def read(
    table: Table, org_id: str, *, domain_id: str | None, ascii_domain: str, recipients: Iterable[str]
) -> SendChecks:
    """The sender domain ``domain_id``, the relay claim of ``ascii_domain`` and the suppression
    entries of ``recipients``: one BatchGetItem (strongly consistent, as the separate reads were)."""
    pk = keys.org_pk(org_id)
    domain_sk = keys.domain_sk(domain_id) if domain_id else None
    relay_sk = keys.smtp_relay_domain_sk(ascii_domain)
    wanted = [(pk, relay_sk)] + ([(pk, domain_sk)] if domain_sk else [])
    wanted += [(pk, keys.suppression_sk(a.lower())) for a in dict.fromkeys(recipients)]
    domain: Item | None = None
    relay_id: str | None = None
    suppressed: dict[str, Item] = {}
    for item in table.batch_get(wanted):
        if item["SK"] == domain_sk:
            domain = item
        elif item["SK"] == relay_sk:
            relay_id = str(item["relay_id"])
        else:
            suppressed[item["address"]] = item
    return SendChecks(domain=domain, relay_id=relay_id, suppressed=suppressed)
