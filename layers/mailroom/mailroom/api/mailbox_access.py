"""Endpoints that act as a mailbox: a message token's principal together with its live mailbox.

Message-token endpoints (``/api/v1/messages/...``) take ``Depends(require_mailbox(scope...))``:
the token must be a message token holding the scopes, and the mailbox it is bound to must still
exist (a token outliving its mailbox for a moment, before revocation completes, gets 401). The
mailbox is always the token's own: no message endpoint takes a mailbox id, so a message token
cannot reach another mailbox.

``/api/v0`` names the inbox (the mailbox) in the path instead: ``require_inbox(action)`` checks
that the caller may act there (``INBOX_SCOPES``) and that the inbox is one of its organization's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Request

from mailroom import errors
from mailroom.api.errors import ApiError
from mailroom.api.principal import ACCESS_ATTRIBUTE, current, require, unauthenticated
from mailroom.domain.principal import Principal
from mailroom.domain.tokens import TokenType
from mailroom.services import message_tokens, v0_inboxes
from mailroom.store.table import Item, Table

MAILBOX_GONE = "The mailbox this token belongs to no longer exists."


@dataclass(frozen=True, slots=True)
class BoundMailbox:
    principal: Principal
    mailbox: Item


def require_mailbox(*scopes: str) -> Callable[[Request], BoundMailbox]:
    check = require(*scopes, token_type=TokenType.MESSAGE)

    def dependency(request: Request) -> BoundMailbox:
        principal = check(request)
        mailbox = message_tokens.bound_mailbox(Table(), principal.org_id, principal.mailbox_id or "")
        if mailbox is None:
            raise unauthenticated(MAILBOX_GONE)
        return BoundMailbox(principal=principal, mailbox=mailbox)

    return dependency


# The scope each kind of token needs for an ``/api/v0/inboxes/{inboxId}/...`` action. Ops tokens
# and API keys (organization-wide; they hold every ops scope) reach every inbox of their
# organization with the mailbox scopes of the same action; a message token reaches only the inbox
# it is bound to, with the message scopes.
INBOX_SCOPES: dict[str, dict[TokenType, str]] = {
    action: {TokenType.OPS: ops, TokenType.API_KEY: ops, TokenType.MESSAGE: message}
    for action, ops, message in (
        ("read", "mailboxes:read", "messages:read"),
        ("write", "mailboxes:write", "messages:write"),
        ("send", "mailboxes:write", "messages:send"),
    )
}


def require_inbox(action: str) -> Callable[[Request, str], BoundMailbox]:
    """``/api/v0/inboxes/{inboxId}/...``: the inbox (a mailbox) named in the path, if the caller's
    token may do ``action`` (read, write, send) there. An inbox of another organization, or another
    inbox than a message token's own, is 404 exactly like one that never existed."""
    scopes = INBOX_SCOPES[action]

    def dependency(request: Request, inbox_id: Annotated[str, Path(alias="inboxId")]) -> BoundMailbox:
        principal = current(request)
        scope = scopes.get(principal.token_type)
        if scope is None:
            raise ApiError(403, "wrong_token_type", "This token cannot act on inboxes.")
        require(scope, token_type=principal.token_type)(request)
        if principal.token_type is TokenType.MESSAGE and principal.mailbox_id != inbox_id:
            raise errors.not_found("Inbox")
        return BoundMailbox(
            principal=principal, mailbox=v0_inboxes.load_inbox(Table(), principal.org_id, inbox_id)
        )

    setattr(dependency, ACCESS_ATTRIBUTE, {kind.value: [scope] for kind, scope in scopes.items()})
    return dependency
