"""A send's first read: the token's mailbox and, in the same request, what the send will check.

``POST /api/v1/messages/send`` needs the mailbox before it can compose (its address, name, state and
quota), and the composed message's sender domain, relay claim and recipients' suppression entries
before anything leaves (store/send_checks.py). Read one after the other, that is a GetItem and a
BatchGetItem. The second read's keys are mostly known before the mailbox is: a message token carries
its mailbox's domain id and address as they were at issue (a mailbox's address and domain never
change), and a request names its recipients. So the mailbox and those keys are read in one strongly
consistent BatchGetItem; ``send_checks.read`` later uses what was read only for the keys the fresh
mailbox and the composed message lead to, and reads any other (an alias's domain, a contact group's
members, a token issued before it carried the hints) then.
"""

from __future__ import annotations

from mailroom.domain.principal import Principal
from mailroom.mail.addresses import parse_mailbox
from mailroom.mail.compose import ComposeError
from mailroom.services import smtp_relays
from mailroom.services.contact_groups import GROUP_PREFIX
from mailroom.services.sending import SendRequest
from mailroom.store import send_checks
from mailroom.store.send_checks import ReadAhead
from mailroom.store.table import Item, Table


def literal_recipients(request: SendRequest) -> list[str]:
    """The addresses a request names in to, cc and bcc, as compose will read them (a value compose
    will refuse, or a contact group, is left to the send)."""
    found: list[str] = []
    for value in (*request.to, *request.cc, *request.bcc):
        if value.strip().lower().startswith(GROUP_PREFIX):
            continue
        try:
            found.append(parse_mailbox("to", value).address)
        except ComposeError:
            continue
    return found


def read_ahead(
    table: Table, principal: Principal, request: SendRequest | None, *, also: tuple[str, str] | None = None
) -> tuple[Item | None, ReadAhead]:
    """The principal's mailbox (None: gone) and the send checks read with it; and the item at the
    key ``also`` (``ReadAhead.also``: the request's rate-limit window, to read it back)."""
    address = principal.mailbox_address
    return send_checks.read_ahead(
        table,
        principal.org_id,
        principal.mailbox_id or "",
        domain_id=principal.mailbox_domain_id,
        ascii_domain=smtp_relays.relay_domain(address) if address else None,
        recipients=literal_recipients(request) if request is not None else [],
        also=also,
    )
