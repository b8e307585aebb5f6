"""The scope catalogue. Names follow trekmail-api-overview.txt; ``tokens:manage``, ``audit:read``,
the ``webhooks:*`` pair and the ``route53:*`` pair are Mailroom's own.

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
        "verify:read",
        "verify:write",
        "smtp:read",
        "smtp:write",
        # DNS set-up through providers (docs/dns-providers.md): Cloudflare's as on the contract page,
        # Route 53's Mailroom's own.
        "cloudflare:read",
        "cloudflare:write",
        "cloudflare:delete",
        "route53:read",
        "route53:write",
        # Support tickets with the platform operator (docs/tickets.md).
        "tickets:read",
        "tickets:write",
        # Usage and invoices (docs/billing.md), as on the contract page.
        "billing:read",
        # The automation model (docs/automation.md): rules, actions, routes, task configs.
        "automation:read",
        "automation:write",
    }
)

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
