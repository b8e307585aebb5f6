"""The calling token and its organization (``GET /api/v1/me``, ``GET /api/v1/account``)."""

from __future__ import annotations

from typing import Any

from mailroom import errors
from mailroom.domain.principal import Principal
from mailroom.services.mailbox_limits import org_limits
from mailroom.settings import get_settings
from mailroom.store import organizations
from mailroom.store.table import Item, Table


def organization(table: Table, org_id: str) -> Item:
    org = organizations.get(table, org_id)
    if org is None:
        raise errors.not_found("Organization")
    return org


def me_view(principal: Principal, org: Item) -> dict[str, Any]:
    return {
        "id": principal.token_id,
        "name": principal.token_name,
        "type": principal.token_type.value,
        "scopes": sorted(principal.scopes),
        "mailbox_id": principal.mailbox_id,
        "organization": {"id": org["id"], "name": org["name"]},
    }


def account_view(org: Item) -> dict[str, Any]:
    """The organization, what it uses (maintained counts) and its limits (defaults filled in)."""
    return {
        "id": org["id"],
        "name": org["name"],
        "usage": {
            "mailboxes": int(org.get("mailbox_count", 0)),
            "domains": int(org.get("domain_count", 0)),
            "aliases": int(org.get("alias_count", 0)),
            "tokens": int(org.get("token_count", 0)),
            "storage_used_bytes": int(org.get("storage_used_bytes", 0)),
        },
        "plan": org.get("plan"),
        # The plan's rate limit, else the deployment's default (a token may have a lower one).
        "limits": {"rate_limit_per_minute": get_settings().rate_limit_per_minute, **org_limits(org)},
        "created_at": org["created_at"],
        "updated_at": org["updated_at"],
    }
