"""The agentmail v0 webhooks (``/api/v0/webhooks``, agentmail-v0-api.txt): the same webhooks as
``/api/v1/webhooks``, with the same delivery (outbox, SQS, Standard Webhooks signatures, retries;
services/webhooks.py).

v0 names the mailbox filter ``inbox_ids`` (inbox ids are mailbox ids) and offers the page's event
types (v1 adds the migration events). The signing secret (``whsec_...``) is shown by create only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom import errors
from mailroom.services import webhooks
from mailroom.store import organizations
from mailroom.store import webhooks as store
from mailroom.store.table import Item, Table

MAX_ID_LENGTH = 64  # longer is no id of ours: not found, without asking DynamoDB
FILTER_FIELD = "inbox_ids"


def webhook_view(item: Item) -> dict[str, Any]:
    return {
        "webhook_id": item["id"],
        # An EventBridge destination (a v1 feature) shows its bus ARN where v0 has only a URL.
        "url": item.get("url") or item["event_bus_arn"],
        "event_types": list(item.get("event_types") or []),
        "inbox_ids": list(item.get("mailbox_ids") or []),
        "enabled": bool(item.get("enabled")),
        "client_id": item.get("client_id"),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def load_webhook(table: Table, org_id: str, webhook_id: str) -> Item:
    """The organization's webhook, or 404."""
    if len(webhook_id) > MAX_ID_LENGTH:
        raise errors.not_found("Webhook")
    return webhooks.load(table, org_id, webhook_id)


@dataclass(frozen=True, slots=True)
class NewWebhook:
    url: str
    event_types: Sequence[str]
    inbox_ids: Sequence[str] = ()
    client_id: str | None = None


async def create_webhook(table: Table, org_id: str, request: NewWebhook) -> tuple[Item, str]:
    """The webhook and its secret (to show once). 422 for a URL the SSRF guard refuses, an inbox
    of no one here, or at the webhook limit."""
    url = await webhooks.valid_url(request.url)
    webhooks.check_mailboxes(table, org_id, request.inbox_ids, field=FILTER_FIELD)
    return webhooks.add_webhook(
        table,
        org_id,
        webhooks.NewWebhook(
            url=url,
            event_types=list(request.event_types),
            mailbox_ids=list(request.inbox_ids),
            client_id=request.client_id,
        ),
    )


def list_webhooks(table: Table, org_id: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page of webhooks in id order, the organization's maintained ``webhook_count``)."""
    items = store.window(table, org_id, offset=offset, limit=limit)
    org = organizations.get(table, org_id) or {}
    return [webhook_view(w) for w in items], max(0, int(org.get("webhook_count", 0)))


async def update_webhook(table: Table, webhook: Item, changes: Mapping[str, Any]) -> Item:
    """Apply the fields a PATCH named (none may be null); URL and inbox filter checked as on create."""
    return await webhooks.patch_webhook(table, webhook, dict(changes), filter_field=FILTER_FIELD)


def delete_webhook(table: Table, org_id: str, webhook_id: str) -> None:
    """Delete the webhook; 404 when the organization has no such one."""
    if len(webhook_id) > MAX_ID_LENGTH or not store.delete(table, org_id, webhook_id):
        raise errors.not_found("Webhook")
