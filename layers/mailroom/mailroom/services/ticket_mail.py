"""A ticket's messages as email to the operator's support address.

Each email comes from the ticket's reply address on the platform domain (``ticket+<ulid>-<token>@``,
domain/tickets.py) with a Reply-To of the same, so the operator's answer reaches the inbound path
and is recognised as this ticket's (services/ticket_inbound.py). Emails of one ticket form one
thread in the operator's mail client: each after the first is ``In-Reply-To`` the previous one
and carries the thread in ``References`` (SES replaces our Message-ID with its own, so the ids kept
are the ones SES gave).
"""

from __future__ import annotations

import re

from mailroom.domain import tickets as rules
from mailroom.errors import Unavailable
from mailroom.mail.addresses import Address
from mailroom.mail.compose import Draft, compose
from mailroom.observability import logger
from mailroom.services import platform_domain
from mailroom.settings import get_settings
from mailroom.store import ses_outbound
from mailroom.store.errors import SendRefused, StoreError
from mailroom.store.table import Item

_NAME_UNSAFE = re.compile(r"[^\w .,&'()-]")


def _footer(ticket: Item, organization: Item, message: Item) -> str:
    by = f' by "{message["author_name"]}"' if message.get("author_name") else ""
    return (
        "\n\n-- \n"
        f"Ticket {ticket['id']} of organization {organization.get('name') or '?'} "
        f"({ticket['org_id']}){by}.\n"
        "Reply to this email to answer: your reply is added to the ticket (the quoted text is left out)."
    )


def email_operator(ticket: Item, message: Item, *, organization: Item, thread: list[str]) -> str | None:
    """Send ``message`` of ``ticket`` to the support address; the Message-ID SES gave the email, or
    None when the stack has no support address (the operator reads tickets with the CLI)."""
    support = get_settings().support_address
    if not support:
        return None
    reply_to = rules.reply_address(str(ticket["id"]), str(ticket["reply_token"]), platform_domain.name())
    # The organization's name is its own text: only word characters and plain punctuation reach
    # the From header.
    org_name = _NAME_UNSAFE.sub("", str(organization.get("name") or ticket["org_id"])).strip()[:80]
    name = f"{org_name or ticket['org_id']} (Mailroom ticket)"
    chain = rules.references(thread)
    draft = Draft(
        sender=Address(name=name, address=reply_to),
        to=[support],
        reply_to=[reply_to],
        subject=rules.email_subject(str(ticket["id"]), str(ticket["subject"]), reply=bool(chain)),
        text=f"{rules.REPLY_MARKER}\n\n{message['body']}{_footer(ticket, organization, message)}",
        headers={
            "X-Mailroom-Ticket": str(ticket["id"]),
            "X-Mailroom-Organization": str(ticket["org_id"]),
        },
        in_reply_to=chain[-1] if chain else None,
        references=chain,
    )
    composed = compose(draft)
    tags = {"kind": "ticket", "org_id": str(ticket["org_id"]), "ticket_id": str(ticket["id"])}
    try:
        ses_id = ses_outbound.send_raw(
            composed.raw, envelope_from=composed.envelope_from, recipients=[support], tags=tags
        )
    except StoreError as exc:
        logger().warning(
            "ticket email not sent",
            extra={"ticket_id": ticket["id"], "code": exc.code, "error": exc.message[:300]},
        )
        refused = isinstance(exc, SendRefused)
        raise Unavailable(
            "support_email_failed",
            "The operator could not be emailed, so nothing was saved"
            + (f": SES refused the message ({exc.message[:200]})." if refused else "."),
            hint="The operator must register the platform domain with SES (mailroom admin platform-domain)."
            if refused
            else "Retry with the same Idempotency-Key.",
            retryable=not refused,
        ) from exc
    return ses_outbound.amazon_message_id(ses_id)
