"""The scope catalogue. Names follow trekmail-api-overview.txt; ``tokens:manage``, ``audit:read``
and the ``webhooks:*`` pair are Mailroom's own.

Ops tokens carry ops scopes; message tokens carry message scopes and are bound to one mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable

OPS_SCOPES: frozenset[str] = frozenset(
    {
        "account:read",
        "audit:read",
        "tokens:manage",
        "domains:read",
        "domains:create",
        "domains:write",
        "domains:delete",
        "domains:dns:read",
        "domains:dns:recheck",
        "mailboxes:read",
        "mailboxes:create",
        "mailboxes:write",
        "mailboxes:delete",
        "mailboxes:invites:create",
        "mailboxes:forwarding:read",
        "mailboxes:forwarding:write",
        "mailboxes:rules:read",
        "mailboxes:rules:write",
        "mailboxes:auto-reply:read",
        "mailboxes:auto-reply:write",
        "mailboxes:message-tokens:manage",
        "migrations:read",
        "migrations:write",
        "webhooks:read",
        "webhooks:write",
    }
)
# The Email Verifier's pair (trekmail-api-overview.txt): named by the plans (nano is verifier-only).
OPS_SCOPES |= frozenset({"verify:read", "verify:write"})

MESSAGE_SCOPES: frozenset[str] = frozenset({"messages:read", "messages:write", "messages:send"})


def invalid_scopes(requested: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """The requested scopes that are not in ``allowed``, in request order, without repeats."""
    seen: set[str] = set()
    unknown = []
    for scope in requested:
        if scope not in allowed and scope not in seen:
            unknown.append(scope)
        seen.add(scope)
    return unknown
