"""The agentmail v0 inboxes (``/api/v0/inboxes``, agentmail-v0-api.txt): an inbox is a mailbox.

The same item and services as ``/api/v1/mailboxes`` (``inbox_id`` is the mailbox id, ``username``
its local part, ``display_name`` its name, ``client_id`` kept on it for the caller). Without a
``domain``, or naming the platform domain, an inbox goes on the platform domain
(services/platform_domain.py). A v0 inbox has no password: agents reach it with the organization's
API key. Deleting one is v1's deletion without the intent step (services/deletion.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom import errors
from mailroom.services import deletion, mailboxes, platform_domain
from mailroom.store import mailboxes as store
from mailroom.store import organizations
from mailroom.store.table import Item, Table

MAX_ID_LENGTH = 64  # longer is no id of ours: not found, without asking DynamoDB
# v0 field -> mailbox attribute, for what PATCH /inboxes/{id} may change.
WRITABLE = {"display_name": "name"}


def inbox_view(mailbox: Item) -> dict[str, Any]:
    return {
        "inbox_id": mailbox["id"],
        "email_address": mailbox["address"],
        "username": mailbox["local_part"],
        "domain": mailbox["domain"],
        "display_name": mailbox.get("name"),
        "client_id": mailbox.get("client_id"),
        "created_at": mailbox["created_at"],
        "updated_at": mailbox["updated_at"],
    }


def load_inbox(table: Table, org_id: str, inbox_id: str) -> Item:
    """The organization's inbox, or 404 (another organization's is not found either)."""
    mailbox = store.get(table, org_id, inbox_id) if len(inbox_id) <= MAX_ID_LENGTH else None
    if mailbox is None:
        raise errors.not_found("Inbox")
    return mailbox


@dataclass(frozen=True, slots=True)
class NewInbox:
    username: str
    domain: str | None = None
    display_name: str | None = None
    client_id: str | None = None


def on_platform(domain: str | None) -> bool:
    """Whether an inbox asking for ``domain`` goes on the platform domain (none named, or it)."""
    return domain is None or domain.strip().rstrip(".").lower() == platform_domain.name()


def create_inbox(table: Table, org_id: str, request: NewInbox) -> Item:
    """A mailbox without a password, on the platform domain or a domain of the organization, under
    v1's limits and uniqueness (the mailbox transaction's conditions guarantee them)."""
    domain = platform_domain.domain_for(table, org_id) if on_platform(request.domain) else None
    return mailboxes.create_mailbox(
        table,
        org_id,
        mailboxes.NewMailbox(
            local_part=request.username,
            domain=domain["domain"] if domain else str(request.domain),
            password=None,
            name=request.display_name,
        ),
        domain=domain,
        extra={"client_id": request.client_id},
        local_part_field="username",
    )


def list_inboxes(table: Table, org_id: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page of inboxes in id order, the organization's maintained ``mailbox_count``)."""
    items = store.window(table, org_id, offset=offset, limit=limit)
    org = organizations.get(table, org_id) or {}
    return [inbox_view(m) for m in items], max(0, int(org.get("mailbox_count", 0)))


def update_inbox(table: Table, mailbox: Item, changes: Mapping[str, Any]) -> Item:
    """Apply the v0 fields a PATCH named (``display_name``; null clears it). None named: unchanged."""
    fields = {WRITABLE[name]: value for name, value in changes.items()}
    return mailboxes.set_fields(table, mailbox, fields) if fields else mailbox


def delete_inbox(table: Table, mailbox: Item) -> None:
    """Delete the inbox at once: the mailbox goes and its address is free in one transaction; its
    mail is purged in the background."""
    deletion.delete_now(table, mailbox["org_id"], mailbox["id"], what="Inbox")
