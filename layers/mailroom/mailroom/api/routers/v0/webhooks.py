"""``/api/v0/webhooks`` (agentmail-v0-api.txt; services/v0_webhooks.py): the same webhooks as
``/api/v1/webhooks``, with the same delivery (Standard Webhooks signatures, retries).

Scopes, for v1 ops tokens used here: ``webhooks:read`` to read, ``webhooks:write`` to change.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, WithJsonSchema, field_validator

from mailroom.api.models import Strict, Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.domain.webhooks import V0_EVENT_TYPES, known_event_types, mailbox_filter
from mailroom.services import v0_webhooks as service
from mailroom.store.table import Item, Table

router = api_router("/api/v0/webhooks", tags=["v0 webhooks"])
Pages = Annotated[PageParams, Depends(page_params)]
Reader = Annotated[Principal, Depends(require("webhooks:read"))]
Writer = Annotated[Principal, Depends(require("webhooks:write"))]
WebhookId = Annotated[str, Path(alias="webhookId", description="A webhook_id of the organization (wh_...)")]
MAX_INBOX_FILTER = 100
NOT_FOUND = "not_found: no such webhook in this organization"
URL_RULES = (
    "An https URL whose host resolves to public addresses only (no redirects are followed); checked "
    "by the server, 422 naming `url` otherwise."
)

# The validators below refuse unknown types with a message listing the known ones; the document
# lists them as an enum.
EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": list(V0_EVENT_TYPES)})]
InboxRef = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64})]


def _event_types(value: list[str] | None) -> list[str] | None:
    return None if value is None else known_event_types(value, V0_EVENT_TYPES)


def _inbox_ids(value: list[str] | None) -> list[str] | None:
    return None if value is None else mailbox_filter(value)


class V0CreateWebhook(Strict):
    url: str = Field(
        min_length=1, max_length=2048, description=URL_RULES, examples=["https://your-app.com/webhooks/email"]
    )
    event_types: list[EventType] = Field(
        min_length=1, max_length=len(V0_EVENT_TYPES), description="What to be sent (repeats are dropped)"
    )
    inbox_ids: list[InboxRef] = Field(
        default_factory=list,
        max_length=MAX_INBOX_FILTER,
        description="Only events of these inboxes (each an inbox of the organization); empty: all",
    )
    client_id: str | None = Field(default=None, max_length=128, description="Your own reference")

    _types = field_validator("event_types")(_event_types)
    _inboxes = field_validator("inbox_ids")(_inbox_ids)


class V0UpdateWebhook(Strict):
    """Only the fields given change; none may be null."""

    url: str | None = Field(default=None, min_length=1, max_length=2048, description=URL_RULES)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(V0_EVENT_TYPES))
    inbox_ids: list[InboxRef] | None = Field(
        default=None, max_length=MAX_INBOX_FILTER, description="Replaces the filter; empty: all inboxes"
    )
    enabled: bool | None = Field(default=None, description="false stops deliveries; true resumes them")

    _types = field_validator("event_types")(_event_types)
    _inboxes = field_validator("inbox_ids")(_inbox_ids)


class V0Webhook(BaseModel):
    webhook_id: str = Field(examples=["wh_01JABCDEF0123456789ABCDEFG"])
    url: str
    event_types: list[EventType]
    inbox_ids: list[str] = Field(description="Only events of these inboxes; empty: all")
    enabled: bool
    client_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


class V0NewWebhook(V0Webhook):
    secret: str = Field(
        description="whsec_...: the signing secret, shown once. Verify deliveries with it (Standard "
        "Webhooks: webhook-id, webhook-timestamp, webhook-signature headers)."
    )


def _readable(principal: Reader, webhook_id: WebhookId) -> Item:
    return service.load_webhook(Table(), principal.org_id, webhook_id)


def _writable(principal: Writer, webhook_id: WebhookId) -> Item:
    return service.load_webhook(Table(), principal.org_id, webhook_id)


# The webhook named in the path, for a caller holding the scope of the action.
ReadableWebhook = Annotated[Item, Depends(_readable)]
WritableWebhook = Annotated[Item, Depends(_writable)]
BAD_WEBHOOK = (
    "validation_error (a field; `errors` names it); invalid_webhook_url, webhook_url_unresolvable, "
    "webhook_url_not_allowed (`url`); unknown_mailbox (`inbox_ids`: not inboxes of this organization)"
)


@router.post(
    "",
    name="v0.webhook.create",
    response_model=V0NewWebhook,
    summary="Create a webhook",
    responses=errors(e422=f"{BAD_WEBHOOK}, webhook_limit_reached"),
)
async def create_webhook(body: V0CreateWebhook, request: Request, principal: Writer) -> dict[str, Any]:
    """Subscribe a URL to events. Returns the webhook with its signing `secret`, shown only here."""
    item, secret = await service.create_webhook(
        Table(),
        principal.org_id,
        service.NewWebhook(
            url=body.url, event_types=body.event_types, inbox_ids=body.inbox_ids, client_id=body.client_id
        ),
    )
    audit_target(request, "webhook", item["id"], url=item["url"])
    return {**service.webhook_view(item), "secret": secret}


@router.get("", name="v0.webhook.list", response_model=PageOf[V0Webhook], summary="List webhooks")
async def list_webhooks(principal: Reader, params: Pages) -> dict[str, Any]:
    """The organization's webhooks in creation order (without secrets), a numbered page at a time."""
    data, total = service.list_webhooks(
        Table(), principal.org_id, offset=params.offset, limit=params.page_size
    )
    return page_body(data, total=total, params=params)


@router.get(
    "/{webhookId}",
    name="v0.webhook.get",
    response_model=V0Webhook,
    summary="Get a webhook",
    responses=errors(e404=NOT_FOUND),
)
async def get_webhook(webhook: ReadableWebhook) -> dict[str, Any]:
    """One webhook of the organization by its id: its URL, event types, inbox filter and whether
    it is enabled (never its secret)."""
    return service.webhook_view(webhook)


@router.patch(
    "/{webhookId}",
    name="v0.webhook.update",
    response_model=V0Webhook,
    summary="Update a webhook",
    responses=errors(e404=NOT_FOUND, e422=f"{BAD_WEBHOOK}; a field given as null"),
)
async def update_webhook(webhook: WritableWebhook, body: V0UpdateWebhook, request: Request) -> dict[str, Any]:
    """Change the URL, the event types, the inbox filter or whether it is enabled; the fields not
    given stay. Returns the webhook."""
    audit_target(request, "webhook", webhook["id"])
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return service.webhook_view(await service.update_webhook(Table(), webhook, changes))


@router.delete(
    "/{webhookId}",
    name="v0.webhook.delete",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook",
    responses=errors(e404=NOT_FOUND),
)
async def delete_webhook(webhook_id: WebhookId, request: Request, principal: Writer) -> Response:
    """Stop and remove the webhook. Returns 204 No Content."""
    audit_target(request, "webhook", webhook_id)
    service.delete_webhook(Table(), principal.org_id, webhook_id)
    return Response(status_code=204)
