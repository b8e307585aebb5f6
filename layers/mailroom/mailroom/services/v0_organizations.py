"""The agentmail v0 organization (``GET /api/v0/organizations``, agentmail-v0-api.txt): the caller's
organization with its counts and limits.

Counts are the organization item's maintained counters: an inbox is a mailbox, so ``inbox_count`` is
``mailbox_count``; the platform domain is not one of the organization's domains and is not in
``domain_count``.
"""

from __future__ import annotations

from typing import Any

from mailroom.services import mailbox_limits
from mailroom.store.table import Item, Table


def organization_view(org: Item) -> dict[str, Any]:
    limits = mailbox_limits.org_limits(org)
    return {
        "org_id": org["id"],
        "name": org["name"],
        "inbox_count": max(0, int(org.get("mailbox_count", 0))),
        "inbox_limit": limits["mailboxes"],
        "domain_count": max(0, int(org.get("domain_count", 0))),
        "domain_limit": limits["domains"],
        "created_at": org["created_at"],
        "updated_at": org["updated_at"],
    }


def get_organization(table: Table, org_id: str) -> dict[str, Any]:
    """The organization as v0 shows it; 404 if it no longer exists."""
    return organization_view(mailbox_limits.load_org(table, org_id))
