"""Webhook endpoints, their deliveries, secret rotation, tests, retries and replays
(``/api/v1/webhooks``). Deliveries are signed per Standard Webhooks; see docs/webhooks.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.webhooks import (
    DeliveryView,
    Replay,
    ReplayView,
    TestSent,
    WebhookCreate,
    WebhookUpdate,
    WebhookView,
    WebhookWithSecret,
)
from mailroom.domain.principal import Principal
from mailroom.services import webhook_deliveries, webhooks
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["webhooks"])
Reader = Annotated[Principal, Depends(require("webhooks:read"))]
Writer = Annotated[Principal, Depends(require("webhooks:write"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
WebhookId = Annotated[str, Path(description="The webhook's id (wh_...)")]
DeliveryId = Annotated[str, Path(description="The delivery's id (dlv_...)")]

WEBHOOK_404 = "not_found: no such webhook in this organization"
DELIVERY_404 = "not_found: no such webhook, or no such delivery of it"


def _readable_webhook(principal: Reader, webhook_id: WebhookId) -> Item:
    return webhooks.load(Table(), principal.org_id, webhook_id)


def _writable_webhook(request: Request, principal: Writer, webhook_id: WebhookId) -> Item:
    audit_target(request, "webhook", webhook_id)
    return webhooks.load(Table(), principal.org_id, webhook_id)


ReadableWebhook = Annotated[Item, Depends(_readable_webhook)]
WritableWebhook = Annotated[Item, Depends(_writable_webhook)]


@router.get(
    "/webhooks",
    name="webhook.list",
    response_model=ListOf[WebhookView],
    summary="List webhooks",
    responses=errors(e422="invalid_cursor, validation_error"),
)
async def list_webhooks(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The organization's webhook endpoints in creation order, with their health (`enabled`,
    `disabled_reason`, `failing_since`); `meta.total` is the maintained count."""
    listing = webhooks.list_webhooks(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@router.post(
    "/webhooks",
    name="webhook.create",
    status_code=201,
    response_model=One[WebhookWithSecret],
    summary="Create a webhook (its secret is returned once)",
    responses=errors(
        e422="invalid_webhook_url, webhook_url_unresolvable, webhook_url_not_allowed (a private "
        "address), unknown_mailbox, webhook_limit_reached, validation_error (e.g. an unknown event type)"
    ),
)
async def create_webhook(body: WebhookCreate, request: Request, principal: Writer) -> dict[str, Any]:
    """Subscribe an https endpoint to event types, optionally only for some mailboxes. Events are
    POSTed to it signed per Standard Webhooks with the `secret` answered here, and only here: keep
    it. Failed deliveries are retried on a schedule; an endpoint failing for days is disabled."""
    item, view = await webhooks.create(
        Table(),
        principal.org_id,
        webhooks.NewWebhook(
            url=body.url,
            event_bus_arn=body.event_bus_arn,
            event_types=body.event_types,
            mailbox_ids=body.mailbox_ids,
            enabled=body.enabled,
            description=body.description,
            client_id=body.client_id,
        ),
    )
    audit_target(request, "webhook", item["id"], url=webhooks.destination(item))
    return one(view)


@router.get(
    "/webhooks/{webhook_id}",
    name="webhook.get",
    response_model=One[WebhookView],
    summary="Get a webhook",
    responses=errors(e404=WEBHOOK_404),
)
async def get_webhook(webhook: ReadableWebhook) -> dict[str, Any]:
    """One webhook endpoint with its subscription and health; never its secret."""
    return one(webhooks.webhook_view(webhook))


@router.patch(
    "/webhooks/{webhook_id}",
    name="webhook.update",
    response_model=One[WebhookView],
    summary="Change the URL, event types, mailbox filter, enabled or description",
    responses=errors(
        e404=WEBHOOK_404,
        e422="invalid_webhook_url, webhook_url_unresolvable, webhook_url_not_allowed, unknown_mailbox, "
        "validation_error (e.g. a null other than description)",
    ),
)
async def update_webhook(body: WebhookUpdate, webhook: WritableWebhook) -> dict[str, Any]:
    """Change only the fields sent. `enabled: true` re-enables a disabled webhook (clearing
    `disabled_reason` and its failure clock); `enabled: false` pauses it."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    updated = await webhooks.patch_webhook(Table(), webhook, changes, nullable=("description",))
    return one(webhooks.webhook_view(updated))


@router.delete(
    "/webhooks/{webhook_id}",
    name="webhook.delete",
    status_code=204,
    summary="Delete a webhook",
    responses=errors(e404=WEBHOOK_404),
)
async def delete_webhook(webhook_id: WebhookId, request: Request, principal: Writer) -> Response:
    """Stop sending events to this endpoint. Its delivery history expires with its retention."""
    audit_target(request, "webhook", webhook_id)
    webhooks.delete_webhook(Table(), principal.org_id, webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}:rotate-secret",
    name="webhook.rotate_secret",
    response_model=One[WebhookWithSecret],
    summary="New secret; the previous one keeps signing for 24 hours",
    responses=errors(
        e404=WEBHOOK_404, e409="concurrent_rotation: another rotation happened at the same time"
    ),
)
async def rotate_secret(webhook: WritableWebhook) -> dict[str, Any]:
    """A new signing secret, answered once. For 24 hours every delivery carries two signatures
    (new and previous secret), so the receiver can switch without missing one."""
    return one(webhooks.rotate(Table(), webhook))


@router.post(
    "/webhooks/{webhook_id}:test",
    name="webhook.test",
    status_code=202,
    response_model=One[TestSent],
    summary="Send a webhook.test event to this webhook (delivered like any event)",
    responses=errors(e404=WEBHOOK_404),
)
async def test_webhook(webhook: WritableWebhook) -> dict[str, Any]:
    """Queue a `webhook.test` event for this endpoint only (even when disabled or not subscribed
    to anything else); follow it with GET .../deliveries/{delivery_id}."""
    return one(webhook_deliveries.test_event(Table(), webhook))


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    name="webhook.deliveries",
    response_model=ListOf[DeliveryView],
    summary="Deliveries, newest event first, each with its attempts",
    responses=errors(e404=WEBHOOK_404, e422="invalid_cursor, validation_error"),
)
async def list_deliveries(
    request: Request, webhook: ReadableWebhook, page_query: PageParams
) -> dict[str, Any]:
    """What was sent to this endpoint in the last 30 days: each event's delivery, its state and
    attempts (status code, duration, error). `meta.total` counts every delivery ever created."""
    listing = webhook_deliveries.list_deliveries(
        Table(), webhook, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    name="webhook.delivery",
    response_model=One[DeliveryView],
    summary="One delivery and its attempts",
    responses=errors(e404=DELIVERY_404),
)
async def get_delivery(webhook: ReadableWebhook, delivery_id: DeliveryId) -> dict[str, Any]:
    """A delivery's state and its newest 25 attempts."""
    return one(
        webhook_deliveries.delivery_view(webhook_deliveries.load_delivery(Table(), webhook, delivery_id))
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}:retry",
    name="webhook.delivery_retry",
    status_code=202,
    response_model=One[DeliveryView],
    summary="Attempt a delivery again now (same webhook-id), with a fresh retry schedule",
    responses=errors(
        e404=DELIVERY_404,
        e409="webhook_disabled (enable it first), event_expired (past the 30 days' retention)",
    ),
)
async def retry_delivery(
    request: Request, webhook: WritableWebhook, delivery_id: DeliveryId
) -> dict[str, Any]:
    """Send one delivery again now, whatever its state, with its own retry schedule. The request
    carries the same `webhook-id`, so a receiver that deduplicates sees it as the same event."""
    audit_target(request, "webhook_delivery", delivery_id, webhook_id=webhook["id"])
    return one(webhook_deliveries.retry(Table(), webhook, delivery_id))


@router.post(
    "/webhooks/{webhook_id}:replay",
    name="webhook.replay",
    status_code=202,
    response_model=One[ReplayView],
    summary="Send again the events since a time that this webhook did not receive",
    responses=errors(
        e404=WEBHOOK_404,
        e409="webhook_disabled: enable it first",
        e422="validation_error: since after until, older than 30 days, or without a time zone",
    ),
)
async def replay(body: Replay, request: Request, webhook: WritableWebhook) -> dict[str, Any]:
    """After an outage: re-send the events of a time range this endpoint subscribes to and never
    received (or whose delivery failed; every one with `include_succeeded`). At most 500 events
    are read per call: call again with `next_cursor` while it is not null."""
    audit_target(request, "webhook", webhook["id"], since=body.since.isoformat())
    result = webhook_deliveries.replay_range(
        Table(),
        webhook,
        since=body.since,
        until=body.until,
        include_succeeded=body.include_succeeded,
        cursor=body.cursor,
    )
    return one(result)
