"""Who is calling: an authenticated token's organization, type, scopes and (for a message token)
mailbox. The API builds it from the authorizer's context; services take it to attribute and limit."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.domain.tokens import TokenType


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    token_id: str
    token_type: TokenType
    token_name: str
    scopes: frozenset[str]
    mailbox_id: str | None
    rate_limit: int | None
    # A message token's mailbox's domain and address as they were when the token was issued (they
    # never change): what a send reads ahead (services/send_ahead.py); None for older tokens.
    mailbox_domain_id: str | None = None
    mailbox_address: str | None = None
    # What the organization's plan allows (domain/plans.py); None: not restricted by a plan.
    plan_allowed: frozenset[str] | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes
