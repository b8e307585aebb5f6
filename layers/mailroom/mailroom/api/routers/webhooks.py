"""Webhook endpoints, their deliveries, secret rotation, tests, retries and replays
(``/api/v1/webhooks``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from mailroom import clock, errors
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.domain.webhooks import EVENT_TYPES, known_event_types, mailbox_filter
from mailroom.errors import MailroomError
from mailroom.services import webhooks as service
from mailroom.store import organizations
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store import webhooks as store
from mailroom.store.events import RETENTION_SECONDS as EVENT_RETENTION_SECONDS
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["webhooks"])
READ = require("webhooks:read")
WRITE = require("webhooks:write")
MAX_MAILBOX_FILTER = 100


def _event_types(value: list[str]) -> list[str]:
    return known_event_types(value, EVENT_TYPES)


def _mailbox_ids(value: list[str]) -> list[str]:
    return mailbox_filter(value)


class CreateWebhook(Strict):
    url: str = Field(min_length=1, max_length=2048, description="https URL on a public address")
    event_types: list[str] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description=", ".join(EVENT_TYPES)
    )
    mailbox_ids: list[str] = Field(
        default_factory=list, max_length=MAX_MAILBOX_FILTER, description="Only events of these mailboxes"
    )
    enabled: bool = True
    description: str | None = Field(default=None, max_length=500)
    client_id: str | None = Field(default=None, max_length=128, description="Your own reference")

    _types = field_validator("event_types")(_event_types)
    _mailboxes = field_validator("mailbox_ids")(_mailbox_ids)


class UpdateWebhook(Strict):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    mailbox_ids: list[str] | None = Field(default=None, max_length=MAX_MAILBOX_FILTER)
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def known_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _event_types(value)

    @field_validator("mailbox_ids")
    @classmethod
    def mailbox_ids_ok(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _mailbox_ids(value)


class Replay(Strict):
    since: AwareDatetime = Field(description="ISO 8601 with a time zone; events from this time")
    until: AwareDatetime | None = Field(default=None, description="Up to this time (default: now)")
    include_succeeded: bool = Field(default=False, description="Also re-send events already delivered")
    cursor: str | None = Field(default=None, max_length=2048, description="next_cursor of the last call")


class WebhookView(BaseModel):
    id: str
    url: str
    event_types: list[str]
    mailbox_ids: list[str]
    enabled: bool
    description: str | None
    client_id: str | None
    disabled_reason: str | None = Field(description="manual, endpoint_gone (410) or failing_continuously")
    disabled_at: str | None
    failing_since: str | None = Field(description="First failure with no success since")
    secret_last_four: str | None
    secret_rotated_at: str | None
    previous_secret_expires_at: str | None
    delivery_count: int
    created_at: str
    updated_at: str


class WebhookWithSecret(WebhookView):
    secret: str = Field(description="whsec_...: shown once. Verify deliveries with it.")


class Attempt(BaseModel):
    attempt: int
    at: str | None
    status_code: int | None
    duration_ms: int | None
    error: str | None
    response: str | None
    trigger: str | None


class DeliveryView(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    event_created_at: str | None
    state: str = Field(description="pending, succeeded or failed")
    failure_reason: str | None
    attempt_count: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    completed_at: str | None
    trigger: str | None
    attempts: list[Attempt]
    created_at: str
    updated_at: str


class TestSent(BaseModel):
    event_id: str
    event_type: str
    delivery_id: str
    webhook_id: str
    created_at: str


class ReplayView(BaseModel):
    scanned: int
    matched: int
    replayed: int
    skipped: int
    next_cursor: str | None


def _load(table: Table, principal: Principal, webhook_id: str) -> Item:
    return service.load(table, principal.org_id, webhook_id)


def _disabled() -> MailroomError:
    return errors.conflict(
        "The webhook is disabled.",
        code="webhook_disabled",
        hint='Enable it with PATCH {"enabled": true} first.',
    )


@router.get("/webhooks", name="webhook.list", response_model=ListOf[WebhookView], summary="List webhooks")
async def list_webhooks(
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    page = store.list_page(table, principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor)
    org = organizations.get(table, principal.org_id) or {}
    return pagination.envelope(
        request,
        page,
        [service.webhook_view(w) for w in page.items],
        per_page=page_query.per_page,
        total=int(org.get("webhook_count", 0)),
    )


@router.post(
    "/webhooks",
    name="webhook.create",
    status_code=201,
    response_model=One[WebhookWithSecret],
    summary="Create a webhook (its secret is returned once)",
)
async def create_webhook(
    body: CreateWebhook, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    url = await service.valid_url(body.url)
    table = Table()
    service.check_mailboxes(table, principal.org_id, body.mailbox_ids)
    item, secret = service.add_webhook(
        table,
        principal.org_id,
        service.NewWebhook(
            url=url,
            event_types=body.event_types,
            mailbox_ids=body.mailbox_ids,
            enabled=body.enabled,
            description=body.description,
            client_id=body.client_id,
        ),
    )
    audit_target(request, "webhook", item["id"], url=url)
    return one({**service.webhook_view(item), "secret": secret})


@router.get(
    "/webhooks/{webhook_id}", name="webhook.get", response_model=One[WebhookView], summary="Get a webhook"
)
async def get_webhook(webhook_id: str, principal: Annotated[Principal, Depends(READ)]) -> dict[str, Any]:
    return one(service.webhook_view(_load(Table(), principal, webhook_id)))


@router.patch(
    "/webhooks/{webhook_id}",
    name="webhook.update",
    response_model=One[WebhookView],
    summary="Change the URL, event types, mailbox filter, enabled or description",
)
async def update_webhook(
    webhook_id: str,
    body: UpdateWebhook,
    request: Request,
    principal: Annotated[Principal, Depends(WRITE)],
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook", webhook_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    updated = await service.patch_webhook(table, webhook, changes, nullable=("description",))
    return one(service.webhook_view(updated))


@router.delete("/webhooks/{webhook_id}", name="webhook.delete", status_code=204, summary="Delete a webhook")
async def delete_webhook(
    webhook_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> Response:
    audit_target(request, "webhook", webhook_id)
    if not store.delete(Table(), principal.org_id, webhook_id):
        raise errors.not_found("Webhook")
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}:rotate-secret",
    name="webhook.rotate_secret",
    response_model=One[WebhookWithSecret],
    summary="New secret; the previous one keeps signing for 24 hours",
)
async def rotate_secret(
    webhook_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook", webhook_id)
    try:
        item, secret = service.rotate_secret(table, webhook)
    except service.ConcurrentChange as exc:
        raise errors.conflict(
            "The secret was rotated by another request at the same time.",
            code="concurrent_rotation",
            hint="Send the request again (with a new Idempotency-Key) to rotate once more.",
        ) from exc
    return one({**service.webhook_view(item), "secret": secret})


@router.post(
    "/webhooks/{webhook_id}:test",
    name="webhook.test",
    status_code=202,
    response_model=One[TestSent],
    summary="Send a webhook.test event to this webhook (delivered like any event)",
)
async def test_webhook(
    webhook_id: str, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook", webhook_id)
    event = service.send_test(table, webhook)
    return one(
        {
            "event_id": event["event_id"],
            "event_type": event["event_type"],
            "delivery_id": deliveries.delivery_id_for(event["event_id"]),
            "webhook_id": webhook_id,
            "created_at": event["created_at"],
        }
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    name="webhook.deliveries",
    response_model=ListOf[DeliveryView],
    summary="Deliveries, newest event first, each with its attempts",
)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(READ)],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    page = deliveries.list_page(
        table, principal.org_id, webhook_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request,
        page,
        [service.delivery_view(d) for d in page.items],
        per_page=page_query.per_page,
        total=int(webhook.get("delivery_count", 0)),
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    name="webhook.delivery",
    response_model=One[DeliveryView],
    summary="One delivery and its attempts",
)
async def get_delivery(
    webhook_id: str, delivery_id: str, principal: Annotated[Principal, Depends(READ)]
) -> dict[str, Any]:
    table = Table()
    _load(table, principal, webhook_id)
    delivery = deliveries.get(table, principal.org_id, webhook_id, delivery_id)
    if delivery is None:
        raise errors.not_found("Delivery")
    return one(service.delivery_view(delivery))


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}:retry",
    name="webhook.delivery_retry",
    status_code=202,
    response_model=One[DeliveryView],
    summary="Attempt a delivery again now (same webhook-id), with a fresh retry schedule",
)
async def retry_delivery(
    webhook_id: str,
    delivery_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(WRITE)],
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook_delivery", delivery_id, webhook_id=webhook_id)
    delivery = deliveries.get(table, principal.org_id, webhook_id, delivery_id)
    if delivery is None:
        raise errors.not_found("Delivery")
    if not webhook.get("enabled"):
        raise _disabled()
    try:
        restarted = service.retry_delivery(table, webhook, delivery)
    except service.EventExpired as exc:
        raise errors.conflict(
            "The delivery's event is past its retention; it cannot be sent again.", code="event_expired"
        ) from exc
    except LookupError as exc:
        raise errors.not_found("Delivery") from exc
    return one(service.delivery_view(restarted))


@router.post(
    "/webhooks/{webhook_id}:replay",
    name="webhook.replay",
    status_code=202,
    response_model=One[ReplayView],
    summary="Send again the events since a time that this webhook did not receive",
)
async def replay(
    webhook_id: str, body: Replay, request: Request, principal: Annotated[Principal, Depends(WRITE)]
) -> dict[str, Any]:
    table = Table()
    webhook = _load(table, principal, webhook_id)
    audit_target(request, "webhook", webhook_id, since=body.since.isoformat())
    if not webhook.get("enabled"):
        raise _disabled()
    now = clock.utcnow()
    until = body.until or now
    if body.since > until:
        raise errors.validation("since must not be after until", field="since")
    if body.since < now - timedelta(seconds=EVENT_RETENTION_SECONDS):
        raise errors.validation("events are kept 30 days; since is older than that", field="since")
    result = service.replay(
        table,
        webhook,
        since=body.since,
        until=until,
        include_succeeded=body.include_succeeded,
        cursor=body.cursor,
    )
    return one(
        {
            "scanned": result.scanned,
            "matched": result.matched,
            "replayed": result.replayed,
            "skipped": result.skipped,
            "next_cursor": result.next_cursor,
        }
    )
