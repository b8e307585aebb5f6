"""The agentmail v0 domains (``/api/v0/domains``, agentmail-v0-api.txt): the organization's own
domains, the same as ``/api/v1/domains`` (services/domains.py: BYODKIM identity in SES, records,
the DNS check through ``MAILROOM_DNS_RESOLVER``), shown the v0 way:

* ``domain_id`` is the domain name (v0 has no other id for a domain);
* ``status`` is ``VERIFIED`` or ``PENDING`` (v1's ``failed`` is not verified: ``PENDING``);
* ``records`` are the records to publish, each ``{type, name, value, status, priority}`` with
  ``status`` ``VALID`` or ``MISSING`` (v1's ``INVALID``, something else published there, is a
  required record that is still missing). Mailroom sends through SES, so the records are SES's:
  MX for receiving, MX and SPF on the ``bounce.`` MAIL FROM domain, the DKIM key and DMARC.

The platform domain is not the organization's: it is neither listed nor found here.
"""

from __future__ import annotations

from typing import Any

from mailroom import errors
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.services import domains
from mailroom.store import domains as store
from mailroom.store import organizations
from mailroom.store.table import Item, Table


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": record["type"],
        "name": record["name"],
        "value": record["value"],
        "status": "VALID" if record["status"] == "VALID" else "MISSING",
        "priority": record["priority"],
    }


def domain_view(domain: Item) -> dict[str, Any]:
    return {
        "domain_id": domain["domain"],
        "status": "VERIFIED" if domain["status"] == "verified" else "PENDING",
        "feedback_enabled": bool(domain.get("feedback_enabled", True)),
        "records": [record_view(r) for r in domains.records_view(domain)],
        "created_at": domain["created_at"],
        "updated_at": domain["updated_at"],
    }


def load_domain(table: Table, org_id: str, domain_id: str) -> Item:
    """The organization's domain named ``domain_id`` (any case, unicode or punycode), or 404."""
    try:
        name = normalize_domain(domain_id)
    except InvalidDomainName:
        raise errors.not_found("Domain") from None  # not a name any domain could have
    domain = store.get_by_name(table, org_id, name)
    if domain is None:
        raise errors.not_found("Domain")
    return domain


def create_domain(table: Table, org_id: str, name: str, *, feedback_enabled: bool) -> Item:
    """Add ``name`` (already normalized): 409 when it is hosted already, 422 at the domain limit."""
    return domains.add_domain(
        table, org_id, domains.NewDomain(domain=name, feedback_enabled=feedback_enabled)
    )


def list_domains(table: Table, org_id: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page of domains in id order, the organization's maintained ``domain_count``)."""
    items = store.window(table, org_id, offset=offset, limit=limit)
    org = organizations.get(table, org_id) or {}
    return [domain_view(d) for d in items], max(0, int(org.get("domain_count", 0)))


def delete_domain(table: Table, domain: Item) -> None:
    """Remove the domain and its SES identity; 409 ``domain_not_empty`` while addresses remain."""
    domains.remove_domain(table, domain)


def verify_domain(table: Table, domain: Item) -> Item:
    """Check every required record now and store the outcome; the domain as it is afterwards
    (``VERIFIED`` once every record is valid, with ``domain.verified`` sent once)."""
    domains.run_check(table, domain)
    return store.get(table, domain["org_id"], domain["id"]) or domain
