"""The operator's emailed answers to tickets, taken off the inbound path before mailbox routing.

A recipient that is a ticket's reply address (``ticket+<ulid>-<token>@<platform domain>``) with the
ticket's own token is the ticket's, not a mailbox's: the message becomes an operator message of the
ticket when it is sound and from the operator. Any other recipient, including an address of that
shape whose ticket or token does not match, goes on to mailbox routing like every address.

What counts as from the operator: the From address (or, without one, the envelope sender) is the
support address (``MAILROOM_SUPPORT_ADDRESS``), and SES's DMARC verdict is not FAIL (a forged From
of the operator's domain fails DMARC where the domain publishes a policy). The reply address's
token is the other half: only the operator's mailbox received it. A message that fails either, is
spam or a virus, cannot be parsed or says nothing above the quoted thread is dropped and logged,
never bounced (no backscatter).

A retried inbound event stores nothing twice: the SES message id is recorded with the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailroom.domain import tickets as rules
from mailroom.mail.addresses import address_only
from mailroom.mail.parse import ParsedMessage, html_to_text
from mailroom.observability import logger
from mailroom.services import platform_domain
from mailroom.services.inbound_message import parse_safely
from mailroom.settings import get_settings
from mailroom.store import tickets as store
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.services.inbound import ReceivedMail


@dataclass(slots=True)
class TicketMail:
    """What the ticket part of one received message did."""

    remaining: tuple[str, ...]  # the recipients left for mailbox routing
    raw: bytes | None = None  # the message, when it was read here (routing reuses it)
    stored: list[str] = field(default_factory=list)  # ticket message ids
    dropped: dict[str, str] = field(default_factory=dict)  # ticket id → why


def _tickets_of(table: Table, recipients: tuple[str, ...]) -> tuple[dict[str, Item], tuple[str, ...]]:
    domain = platform_domain.name()
    found: dict[str, Item] = {}
    remaining = []
    for recipient in recipients:
        named = rules.parse_reply_address(recipient, domain)
        org_id = store.org_of(table, named.ticket_id) if named else None
        ticket = store.get(table, org_id, named.ticket_id) if named and org_id else None
        if named and ticket and rules.token_matches(str(ticket["reply_token"]), named.token):
            found[str(ticket["id"])] = ticket
        else:
            remaining.append(recipient)
    return found, tuple(remaining)


def _refusal(mail: ReceivedMail, message: ParsedMessage | None) -> str | None:
    if message is None:
        return "unparseable"
    if mail.verdicts.is_virus or mail.verdicts.is_spam:
        return "spam_or_virus"
    support = get_settings().support_address
    sender = address_only(message.from_address or mail.envelope_from or "")
    if not support or sender != address_only(support):
        return "not_from_support_address"
    if mail.verdicts.dmarc == "FAIL":
        return "dmarc_fail"
    return None


def receive(table: Table, mail: ReceivedMail) -> TicketMail:
    """Store the message in each ticket it is addressed to; the other recipients are returned."""
    from mailroom.services import tickets
    from mailroom.services.inbound import read_raw

    found, remaining = _tickets_of(table, mail.recipients)
    result = TicketMail(remaining=remaining)
    if not found:
        return result
    raw, size = read_raw(mail)
    result.raw = raw
    parsed = parse_safely(raw, size)
    message = parsed if isinstance(parsed, ParsedMessage) else None
    refusal = _refusal(mail, message)
    body = ""
    if refusal is None and message is not None:
        text = message.text if message.text is not None else html_to_text(message.html or "")
        body = rules.reply_text(text)[: rules.MAX_BODY]
        refusal = None if body else "empty_reply"
    for ticket_id, ticket in found.items():
        if refusal is not None or message is None:
            result.dropped[ticket_id] = refusal or "unparseable"
            logger().warning(
                "ticket reply dropped",
                extra={"ticket_id": ticket_id, "reason": refusal, "ses_message_id": mail.ses_message_id},
            )
            continue
        stored = tickets.operator_reply(
            table,
            ticket,
            body=body,
            author=tickets.Author(
                rules.OPERATOR, rules.VIA_EMAIL, name=message.from_ or message.from_address
            ),
            source_id=mail.ses_message_id,
            email_message_id=message.message_id,
        )
        if stored is not None:
            result.stored.append(str(stored["id"]))
    return result
