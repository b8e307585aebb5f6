"""The platform domain (``MAILROOM_PLATFORM_DOMAIN``): where a v0 inbox gets its address when the
request names no domain (agentmail-v0-api.txt: "defaults to platform domain").

It is the operator's, shared by every organization (store/platform_domain.py has the keys):

* an organization's first platform inbox creates the shared claim, if this is the stack's first
  use of the domain, and the organization's own item of the domain (its mailbox counters);
* addresses on it are unique platform-wide (a global claim per address, in the mailbox's
  transaction), and inbound mail finds its organization through that claim;
* its SES identity (Bring-Your-Own-DKIM, like a tenant's domain) is registered by the operator once,
  with ``mailroom admin platform-domain`` (the local stack does it when it starts), which also
  prints the DNS records to publish. Registering is kept off the request path: it needs SES
  permissions the API functions do not have, and an RSA key generation per first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom import clock
from mailroom.domain import dns_records
from mailroom.domain.dkim import generate_dkim_key
from mailroom.errors import MailroomError, Unavailable
from mailroom.services import domains
from mailroom.settings import get_settings
from mailroom.store import platform_domain as store
from mailroom.store import ses_identities
from mailroom.store.table import Item, Table

REGISTRATION_LEASE_SECONDS = 120


def name() -> str:
    return get_settings().platform_domain.strip().rstrip(".").lower()


def _unavailable(domain_name: str) -> MailroomError:
    return Unavailable(
        "platform_domain_unavailable",
        f"The platform domain {domain_name} is hosted by an organization, so inboxes cannot use it.",
        hint="Name a domain of your organization in 'domain'; the operator must choose another "
        "platform domain (MAILROOM_PLATFORM_DOMAIN).",
        retryable=False,
    )


def domain_for(table: Table, org_id: str) -> Item:
    """The organization's item of the platform domain, and the shared claim, created on first use."""
    domain_name = name()
    try:
        store.ensure_claim(table, domain_name)
    except store.PlatformDomainHosted as exc:
        raise _unavailable(domain_name) from exc
    return store.ensure_org_domain(table, org_id, domain_name)


@dataclass(frozen=True, slots=True)
class Registration:
    claim: Item
    registered_now: bool  # False: it was registered already, or another registrar is at it


def register_identity(table: Table) -> Registration:
    """Register the platform domain with SES (our DKIM key, custom MAIL FROM) unless SES has it.

    Idempotent and safe to run concurrently: a lease on the claim lets one registrar at a time
    generate the key, hand it to SES and record its public half. An identity that went missing
    from SES (deleted by hand; the local stack's emulated SES after a restart) is registered again,
    with a new key."""
    domain_name = name()
    claim = store.ensure_claim(table, domain_name)
    if claim.get("dkim_selector") and ses_identities.exists(domain_name):
        return Registration(claim=claim, registered_now=False)
    now = int(clock.utcnow().timestamp())
    if not store.lease_identity(table, domain_name, now_epoch=now, lease_seconds=REGISTRATION_LEASE_SECONDS):
        return Registration(claim=claim, registered_now=False)
    key = generate_dkim_key()
    ses_identities.create(domain_name, key, mail_from=dns_records.mail_from_domain(domain_name))
    updated = store.identity_registered(
        table, domain_name, selector=key.selector, public_key=key.public_key_b64
    )
    return Registration(claim=updated, registered_now=True)


def required_records(claim: Item) -> list[dns_records.RequiredRecord]:
    """What the operator publishes for the platform domain (empty until it is registered). The
    claim holds ``domain`` and the DKIM fields under a tenant domain's names."""
    return domains.required_records(claim) if claim.get("dkim_selector") else []
