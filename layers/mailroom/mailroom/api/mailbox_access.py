"""Endpoints that act as a mailbox: a message token's principal together with its live mailbox.

Message-token endpoints (``/api/v1/messages/...``) take ``Depends(require_mailbox(scope...))``:
the token must be a message token holding the scopes, and the mailbox it is bound to must still
exist (a token outliving its mailbox for a moment, before revocation completes, gets 401). The
mailbox is always the token's own: no message endpoint takes a mailbox id, so a message token
cannot reach another mailbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from mailroom.api.errors import ApiError
from mailroom.api.principal import Principal, require, unauthenticated
from mailroom.domain.tokens import TokenType
from mailroom.store import mailboxes
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class BoundMailbox:
    principal: Principal
    mailbox: Item


def require_mailbox(*scopes: str) -> Callable[[Request], BoundMailbox]:
    check = require(*scopes, token_type=TokenType.MESSAGE)

    def dependency(request: Request) -> BoundMailbox:
        principal = check(request)
        mailbox = mailboxes.get(Table(), principal.org_id, principal.mailbox_id or "")
        if mailbox is None:
            raise unauthenticated("The mailbox this token belongs to no longer exists.")
        return BoundMailbox(principal=principal, mailbox=mailbox)

    return dependency


def send_blocked(mailbox: Item) -> ApiError | None:
    """Why this mailbox may not send right now (403), or None. The send endpoints raise it."""
    if not mailbox.get("active", True):
        return ApiError(
            403,
            "mailbox_inactive",
            "This mailbox is deactivated.",
            hint="Ask an administrator to activate it.",
        )
    if mailbox.get("paused"):
        return ApiError(
            403,
            "mailbox_paused",
            "This mailbox is paused and cannot send.",
            hint="An administrator resumes it with POST /api/v1/mailboxes/{id}:resume.",
        )
    return None
