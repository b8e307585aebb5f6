"""Issuing ops tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mailroom import clock, ids
from mailroom.domain.tokens import TokenType, issue_token
from mailroom.store import tokens
from mailroom.store.table import Item, Table


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
) -> NewToken:
    issued = issue_token(TokenType.OPS)
    item: Item = {
        "id": ids.new_id("tok"),
        "org_id": org_id,
        "name": name,
        "token_type": TokenType.OPS.value,
        "prefix": issued.prefix,
        "last_four": issued.last_four,
        "token_hash": issued.token_hash,
        "scopes": sorted(set(scopes)),
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
