"""Issuing ops tokens and API keys.

An API key (``inai_``, the ``/api/v0`` surface's credential) is an organization-wide token: it holds
every ops scope, now and as scopes are added (api/principal.py gives them at request time, so no
scope list is stored on it), and never expires until it is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import plans
from mailroom.domain.principal import Principal
from mailroom.domain.tokens import TokenType, issue_token
from mailroom.errors import Forbidden
from mailroom.store import organizations, tokens
from mailroom.store.table import Item, Page, Table


@dataclass(frozen=True, slots=True)
class NewToken:
    item: Item
    plaintext: str


def new_ops_token(
    *,
    org_id: str,
    name: str,
    scopes: Iterable[str],
    created_by: str | None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    token_type: TokenType = TokenType.OPS,
) -> NewToken:
    """An ops token's item (or, with ``token_type=API_KEY``, an API key's: id ``key_...``, the
    ``inai_xxxx_...`` prefix, no scopes), not stored yet."""
    issued = issue_token(token_type)
    api_key = token_type is TokenType.API_KEY
    item: Item = {
        "id": ids.new_id("key" if api_key else "tok"),
        "org_id": org_id,
        "name": name,
        "token_type": token_type.value,
        "prefix": issued.display_prefix if api_key else issued.prefix,
        "last_four": issued.last_four,
        "token_hash": issued.token_hash,
        "scopes": [] if api_key else sorted(set(scopes)),
        "rate_limit_per_minute": rate_limit_per_minute,
        "expires_at": clock.isoformat(expires_at) if expires_at else None,
        "expires_at_epoch": int(expires_at.timestamp()) if expires_at else None,
        "created_at": clock.now_iso(),
        "created_by": created_by,
    }
    return NewToken(item=item, plaintext=issued.plaintext)


def issue_ops_token(
    table: Table,
    *,
    org_id: str,
    name: str,
    scopes: Iterable[str],
    created_by: str | None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
) -> NewToken:
    """A new ops token, stored and counted on its organization."""
    new = new_ops_token(
        org_id=org_id,
        name=name,
        scopes=scopes,
        created_by=created_by,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    tokens.create(table, new.item)
    return new


def issue_api_key(table: Table, *, org_id: str, name: str, created_by: str | None) -> NewToken:
    """A new organization-wide API key (``inai_``), stored and counted on its organization."""
    new = new_ops_token(
        org_id=org_id, name=name, scopes=(), created_by=created_by, token_type=TokenType.API_KEY
    )
    tokens.create(table, new.item)
    return new


def create_token(
    table: Table,
    creator: Principal,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
) -> NewToken:
    """``POST /api/v1/tokens``: a token never holds a scope the organization's plan excludes (403
    token_scope_blocked_by_plan) or its creator lacks (403 scope_escalation), and never expires in
    the past."""
    wanted = set(scopes)
    check_plan_allows(creator, wanted)
    escalated = sorted(wanted - creator.scopes)
    if escalated:
        raise Forbidden(
            "scope_escalation",
            f"A token cannot grant scopes it does not hold: {', '.join(escalated)}.",
            hint="Create the token with a token that holds those scopes.",
        )
    if expires_at is not None and expires_at <= clock.utcnow():
        raise errors.validation("expires_at must be in the future", field="expires_at")
    return issue_ops_token(
        table,
        org_id=creator.org_id,
        name=name,
        scopes=wanted,
        created_by=creator.token_id,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
    )


def check_plan_allows(creator: Principal, scopes: Iterable[str]) -> None:
    """403 token_scope_blocked_by_plan for a new token with scopes the creator's plan excludes."""
    if creator.plan_allowed is None:
        return
    blocked = plans.blocked_scopes(scopes, creator.plan_allowed)
    if blocked:
        raise Forbidden(
            "token_scope_blocked_by_plan",
            f"The organization's plan does not include the scope(s): {', '.join(blocked)}.",
            hint="Create the token with the scopes the plan allows (GET /api/v1/account names the plan).",
        )


def list_tokens(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    """A page of the organization's ops tokens and how many it has (a maintained count)."""
    page = tokens.list_page(table, org_id, per_page=per_page, cursor=cursor)
    org = organizations.get(table, org_id) or {}
    return page, int(org.get("token_count", 0))


def revoke_token(table: Table, org_id: str, token_id: str) -> None:
    if not tokens.delete(table, org_id, token_id):
        raise errors.not_found("Token")


def token_view(item: Item) -> dict[str, Any]:
    return tokens.public_view(item)
