"""``/api/v0/webhooks`` (agentmail-v0-api.txt): the same webhooks as ``/api/v1/webhooks``, with the
same delivery (outbox, SQS, Standard Webhooks signatures, retries; services/webhooks.py).

v0 names the mailbox filter ``inbox_ids`` (inbox ids are mailbox ids) and offers the page's event
types (v1 adds the migration events). The signing secret (``whsec_...``, Standard Webhooks) is in
the create response only.

Scopes, for v1 ops tokens used here: ``webhooks:read`` to read, ``webhooks:write`` to change.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, field_validator

from mailroom import errors
from mailroom.api.models import Strict
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.domain.webhooks import V0_EVENT_TYPES, known_event_types, mailbox_filter
from mailroom.services import webhooks as service
from mailroom.store import organizations
from mailroom.store import webhooks as store
from mailroom.store.table import Item, Table

router = api_router("/api/v0/webhooks", tags=["v0 webhooks"])
Pages = Annotated[PageParams, Depends(page_params)]
Reader = Annotated[Principal, Depends(require("webhooks:read"))]
Writer = Annotated[Principal, Depends(require("webhooks:write"))]
WebhookId = Annotated[str, Path(alias="webhookId")]
MAX_ID_LENGTH = 64  # longer is no id of ours: 404 like any unknown id, without asking DynamoDB
MAX_INBOX_FILTER = 100
EVENT_TYPES_HELP = ", ".join(V0_EVENT_TYPES)


def _event_types(value: list[str] | None) -> list[str] | None:
    return None if value is None else known_event_types(value, V0_EVENT_TYPES)


def _inbox_ids(value: list[str] | None) -> list[str] | None:
    return None if value is None else mailbox_filter(value)


class CreateWebhook(Strict):
    url: str = Field(min_length=1, max_length=2048, description="https URL on a public address")
    event_types: list[str] = Field(min_length=1, max_length=len(V0_EVENT_TYPES), description=EVENT_TYPES_HELP)
    inbox_ids: list[str] = Field(
        default_factory=list, max_length=MAX_INBOX_FILTER, description="Only events of these inboxes"
    )
    client_id: str | None = Field(default=None, max_length=128, description="Your own reference")

    _types = field_validator("event_types")(_event_types)
    _inboxes = field_validator("inbox_ids")(_inbox_ids)


class UpdateWebhook(Strict):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(V0_EVENT_TYPES))
    inbox_ids: list[str] | None = Field(default=None, max_length=MAX_INBOX_FILTER)
    enabled: bool | None = None

    _types = field_validator("event_types")(_event_types)
    _inboxes = field_validator("inbox_ids")(_inbox_ids)


class Webhook(BaseModel):
    webhook_id: str
    url: str
    event_types: list[str]
    inbox_ids: list[str]
    enabled: bool
    client_id: str | None
    created_at: str
    updated_at: str


class NewWebhook(Webhook):
    secret: str = Field(description="whsec_...: shown once. Verify deliveries with it (Standard Webhooks).")


def webhook_view(item: Item) -> dict[str, Any]:
    return {
        "webhook_id": item["id"],
        "url": item["url"],
        "event_types": list(item.get("event_types") or []),
        "inbox_ids": list(item.get("mailbox_ids") or []),
        "enabled": bool(item.get("enabled")),
        "client_id": item.get("client_id"),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def _load(table: Table, principal: Principal, webhook_id: str) -> Item:
    if len(webhook_id) > MAX_ID_LENGTH:
        raise errors.not_found("Webhook")
    return service.load(table, principal.org_id, webhook_id)


@router.post("", name="v0.webhook.create", response_model=NewWebhook, summary="Create a webhook subscription")
async def create_webhook(body: CreateWebhook, request: Request, principal: Writer) -> dict[str, Any]:
    url = await service.valid_url(body.url)
    table = Table()
    service.check_mailboxes(table, principal.org_id, body.inbox_ids, field="inbox_ids")
    item, secret = service.add_webhook(
        table,
        principal.org_id,
        service.NewWebhook(
            url=url, event_types=body.event_types, mailbox_ids=body.inbox_ids, client_id=body.client_id
        ),
    )
    audit_target(request, "webhook", item["id"], url=url)
    return {**webhook_view(item), "secret": secret}


@router.get("", name="v0.webhook.list", response_model=PageOf[Webhook], summary="List webhooks")
async def list_webhooks(principal: Reader, params: Pages) -> dict[str, Any]:
    table = Table()
    items = store.window(table, principal.org_id, offset=params.offset, limit=params.page_size)
    org = organizations.get(table, principal.org_id) or {}
    return page_body([webhook_view(w) for w in items], total=int(org.get("webhook_count", 0)), params=params)


@router.get("/{webhookId}", name="v0.webhook.get", response_model=Webhook, summary="Get a webhook")
async def get_webhook(webhook_id: WebhookId, principal: Reader) -> dict[str, Any]:
    return webhook_view(_load(Table(), principal, webhook_id))


@router.patch(
    "/{webhookId}",
    name="v0.webhook.update",
    response_model=Webhook,
    summary="Change the URL, event types, inbox filter or enabled",
)
async def update_webhook(
    webhook_id: WebhookId, body: UpdateWebhook, request: Request, principal: Writer
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook", webhook_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return webhook_view(await service.patch_webhook(table, webhook, changes, filter_field="inbox_ids"))


@router.delete("/{webhookId}", name="v0.webhook.delete", status_code=204, summary="Delete a webhook")
async def delete_webhook(webhook_id: WebhookId, request: Request, principal: Writer) -> Response:
    audit_target(request, "webhook", webhook_id)
    if len(webhook_id) > MAX_ID_LENGTH or not store.delete(Table(), principal.org_id, webhook_id):
        raise errors.not_found("Webhook")
    return Response(status_code=204)
