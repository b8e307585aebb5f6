"""An ops token's access to the mailbox a path names (``/api/v1/mailboxes/{mailbox_id}...``): the
dependency the mailboxes, message-token and delete-intent routers share (each its own function)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from mailroom.api.models import errors
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import mailboxes as service
from mailroom.store.table import Item, Table

MailboxId = Annotated[
    str,
    Path(
        max_length=320,
        description="The mailbox's id (mbx_...) or its address (user@example.com, any case), as "
        "mailcow's /mailboxes/{email}",
    ),
]
NOT_FOUND = errors(e404="not_found: no such mailbox in this organization")


@dataclass(frozen=True, slots=True)
class LoadedMailbox:
    principal: Principal
    item: Item


def mailbox_with(scope: str) -> Callable[[Request, str], LoadedMailbox]:
    """A dependency: the caller (an ops token with ``scope``) and the mailbox the path names."""
    authorized = require(scope)

    def load(request: Request, mailbox_id: MailboxId) -> LoadedMailbox:
        principal = authorized(request)
        return LoadedMailbox(principal, service.load(Table(), principal.org_id, mailbox_id))

    return load


ReadableMailbox = Annotated[LoadedMailbox, Depends(mailbox_with("mailboxes:read"))]
WritableMailbox = Annotated[LoadedMailbox, Depends(mailbox_with("mailboxes:write"))]
