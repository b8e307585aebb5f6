"""The agentmail v0 API keys (``/api/v0/api-keys``, agentmail-v0-api.txt): organization-wide
``inai_`` tokens (services/tokens.py issues them), listed by number and revoked by id.

A key holds every ops scope, so only a caller holding every scope may create one: v1's rule that
a token cannot grant what it does not hold.
"""

from __future__ import annotations

from typing import Any

from mailroom import errors
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.domain.tokens import TokenType
from mailroom.errors import Forbidden
from mailroom.services.tokens import NewToken, issue_api_key
from mailroom.store import organizations, tokens
from mailroom.store.table import Item, Table

MAX_ID_LENGTH = 64  # longer is no id of ours: not found, without asking DynamoDB


def api_key_view(item: Item) -> dict[str, Any]:
    """A key as v0 lists it: the prefix, never the key nor its hash."""
    return {
        "key_id": item["id"],
        "name": item["name"],
        "prefix": item["prefix"],
        "used_at": item.get("used_at"),
        "created_at": item["created_at"],
    }


def create_api_key(table: Table, principal: Principal, name: str) -> NewToken:
    """A new key for the caller's organization; 403 ``scope_escalation`` unless the caller holds
    every scope the key will."""
    missing = sorted(OPS_SCOPES - principal.scopes)
    if missing:
        raise Forbidden(
            "scope_escalation",
            f"An API key holds every scope; this token lacks: {', '.join(missing)}.",
            hint="Create API keys with an API key or with an ops token that holds every scope.",
        )
    return issue_api_key(table, org_id=principal.org_id, name=name, created_by=principal.token_id)


def list_api_keys(table: Table, org_id: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page of keys in id order, the organization's maintained ``api_key_count``)."""
    items = tokens.window(table, org_id, offset=offset, limit=limit, token_type=TokenType.API_KEY)
    org = organizations.get(table, org_id) or {}
    return [api_key_view(i) for i in items], max(0, int(org.get("api_key_count", 0)))


def revoke_api_key(table: Table, org_id: str, key_id: str) -> None:
    """Delete the key (and its count); 404 when the organization has no such key. The authorizer
    refuses it at its next cache miss."""
    if len(key_id) > MAX_ID_LENGTH or not tokens.delete(table, org_id, key_id, token_type=TokenType.API_KEY):
        raise errors.not_found("API key")
