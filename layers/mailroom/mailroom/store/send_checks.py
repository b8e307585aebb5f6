"""What a send must know before anything leaves, in one BatchGetItem.

A send checks three things held in its organization's partition: the sender domain's item (mailcow's
``active: false`` refuses the send), the sender domain's SMTP-relay claim (its relay sends instead of
SES), and the suppression entries of its recipients. They are independent items with keys known once
the message is composed, so one strongly consistent BatchGetItem reads them together (at most 50
recipients + 2 keys: under BatchGetItem's 100) instead of a GetItem, a GetItem and a BatchGetItem.

A send from a message token reads them *ahead*, with the token's mailbox (``read_ahead``): the keys
are guessed from the token (the mailbox's domain and address when it was issued) and the request (its
literal recipients), before anything is composed. ``read`` then answers from what was read ahead only
for the exact keys it needs, which it derives from the mailbox just read: a guess that no longer
holds (or never did) only costs the read of the keys it missed, never a check made against another
domain's or organization's item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mailroom.store import keys
from mailroom.store.table import Item, Table

MAX_KEYS = 100  # one BatchGetItem request


@dataclass(frozen=True, slots=True)
class SendChecks:
    domain: Item | None  # the sender domain's item (None: not one of the organization's domains)
    relay_id: str | None  # the SMTP relay that sends for the sender domain, if any
    suppressed: dict[str, Item] = field(default_factory=dict)  # lower-cased address → entry


@dataclass(frozen=True, slots=True)
class ReadAhead:
    """Items of one organization's partition read before the send was composed: sort key → the
    item, or None when it does not exist (a key that was not read is simply not here)."""

    org_id: str
    items: dict[str, Item | None] = field(default_factory=dict)
    also: Item | None = None  # the item read for the caller's own key (``read_ahead``'s ``also``)


def read_ahead(
    table: Table,
    org_id: str,
    mailbox_id: str,
    *,
    domain_id: str | None,
    ascii_domain: str | None,
    recipients: Iterable[str],
    also: tuple[str, str] | None = None,
) -> tuple[Item | None, ReadAhead]:
    """The mailbox ``mailbox_id`` and, in the same strongly consistent BatchGetItem, the items a send
    from it will probably check: the domain ``domain_id``, the relay claim of ``ascii_domain`` and
    the suppression entries of ``recipients`` (as many as one request holds); and the item at the
    key ``also`` if given (the request's rate-limit window: api/admission.py)."""
    pk = keys.org_pk(org_id)
    mailbox_sk = keys.mailbox_sk(mailbox_id)
    wanted = [mailbox_sk]
    if domain_id:
        wanted.append(keys.domain_sk(domain_id))
    if ascii_domain:
        wanted.append(keys.smtp_relay_domain_sk(ascii_domain))
    wanted += [keys.suppression_sk(a.lower()) for a in recipients]
    wanted = list(dict.fromkeys(wanted))[: MAX_KEYS - (1 if also else 0)]
    batch = [(pk, sk) for sk in wanted] + ([also] if also else [])
    found = {(item["PK"], item["SK"]): item for item in table.batch_get(batch)}
    items: dict[str, Item | None] = {sk: found.get((pk, sk)) for sk in wanted}
    mailbox = items.pop(mailbox_sk)
    return mailbox, ReadAhead(org_id=org_id, items=items, also=found.get(also) if also else None)


def read(
    table: Table,
    org_id: str,
    *,
    domain_id: str | None,
    ascii_domain: str,
    recipients: Iterable[str],
    ahead: ReadAhead | None = None,
) -> SendChecks:
    """The sender domain ``domain_id``, the relay claim of ``ascii_domain`` and the suppression
    entries of ``recipients``: one BatchGetItem (strongly consistent, as the separate reads were)
    for the keys ``ahead`` (read for this organization) does not hold; none when it holds them all."""
    pk = keys.org_pk(org_id)
    domain_sk = keys.domain_sk(domain_id) if domain_id else None
    relay_sk = keys.smtp_relay_domain_sk(ascii_domain)
    wanted = [relay_sk] + ([domain_sk] if domain_sk else [])
    wanted += [keys.suppression_sk(a.lower()) for a in dict.fromkeys(recipients)]
    known = ahead.items if ahead is not None and ahead.org_id == org_id else {}
    items = [known[sk] for sk in wanted if sk in known]
    missing = [(pk, sk) for sk in wanted if sk not in known]
    if missing:
        items += table.batch_get(missing)
    domain: Item | None = None
    relay_id: str | None = None
    suppressed: dict[str, Item] = {}
    for item in items:
        if item is None:
            continue
        if item["SK"] == domain_sk:
            domain = item
        elif item["SK"] == relay_sk:
            relay_id = str(item["relay_id"])
        else:
            suppressed[item["address"]] = item
    return SendChecks(domain=domain, relay_id=relay_id, suppressed=suppressed)
