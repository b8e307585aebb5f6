"""mailcow's per-domain and per-mailbox switches as the send path enforces them
(mailcow-style-management-api.txt; docs/mailcow-api.md):

- a domain with ``active: false`` sends nothing: a send whose From is on it is refused (403
  ``domain_inactive``). Receiving and creating addresses on it are refused elsewhere (the inbound
  expansion drops its recipients, ``mailbox_limits.domain_inactive_error`` refuses new addresses);
- a mailbox that is deactivated or paused sends nothing (403 ``mailbox_inactive``,
  ``mailbox_paused``: ``send_blocked``, which a message token's ping also reports);
- a mailbox with ``tls_enforce_out`` sends only over TLS: through SES's TLS-requiring configuration
  set (``TlsPolicy: REQUIRE``), or through an SMTP relay reached over TLS.
"""

from __future__ import annotations

from mailroom.errors import Forbidden, MailroomError
from mailroom.store.table import Item


def refuse_inactive(domain: Item | None) -> None:
    """403 ``domain_inactive`` when ``domain`` (the From address's, already read) is deactivated."""
    if domain is not None and not domain.get("active", True):
        raise Forbidden(
            "domain_inactive",
            f"{domain['domain']} is deactivated (active: false): nothing is sent from it.",
            hint="An administrator activates it with PUT or PATCH /api/v1/domains/{domain}.",
        )


def requires_tls_out(mailbox: Item) -> bool:
    return bool(mailbox.get("tls_enforce_out", False))


def send_blocked(mailbox: Item) -> MailroomError | None:
    """Why this mailbox may not send right now (403), or None. The send endpoints raise it."""
    if not mailbox.get("active", True):
        return Forbidden(
            "mailbox_inactive",
            "This mailbox is deactivated.",
            hint="Ask an administrator to activate it.",
        )
    if mailbox.get("paused"):
        return Forbidden(
            "mailbox_paused",
            "This mailbox is paused and cannot send.",
            hint="An administrator resumes it with POST /api/v1/mailboxes/{id}:resume.",
        )
    return None
