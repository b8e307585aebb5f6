"""mailcow's per-domain and per-mailbox switches as the send path enforces them
(mailcow-style-management-api.txt; docs/mailcow-api.md):

- a domain with ``active: false`` sends nothing: a send whose From is on it is refused (403
  ``domain_inactive``). Receiving and creating addresses on it are refused elsewhere (the inbound
  expansion drops its recipients, ``mailbox_limits.domain_inactive_error`` refuses new addresses);
- a mailbox with ``tls_enforce_out`` sends only over TLS: through SES's TLS-requiring configuration
  set (``TlsPolicy: REQUIRE``), or through an SMTP relay reached over TLS.
"""

from __future__ import annotations

from mailroom.errors import Forbidden
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
