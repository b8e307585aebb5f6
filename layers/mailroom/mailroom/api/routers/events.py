"""The event log (``/api/v1/events``): what happened in the organization in the last 30 days, as
the webhooks were sent it, newest first; see docs/events.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from mailroom.api import pagination
from mailroom.api.models import Links, Meta, One, Timestamp, errors, one
from mailroom.api.pipeline import api_router
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import event_log as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["events"])
Reader = Annotated[Principal, Depends(require("webhooks:read"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
EventType = Literal[service.LOGGED_EVENT_TYPES]  # type: ignore[valid-type]

EVENT_404 = "not_found: no such event in this organization (or older than 30 days)"


class EventSummary(BaseModel):
    id: str = Field(description="evt_...: the webhook-id its deliveries carry (dedupe by it)")
    event_type: EventType
    created_at: Timestamp
    mailbox_id: str | None = Field(description="The mailbox it happened in; null for organization events")
    resource_id: str | None = Field(
        description="What it is about: the message (msg_...), domain (dom_...), migration (mig_...) "
        "or, for webhook.test, null"
    )


class EventDetail(EventSummary):
    data: dict[str, Any] = Field(
        description="The resource as the API showed it when the event happened: the same `data` as "
        "the webhook payload (message bodies over 64 KB left out, with body_omitted: true)"
    )


class EventMeta(Meta):
    total: int | None = Field(description="Always null: the log's size is not counted")
    last_page: int | None = Field(description="Always null: the log's size is not counted")


class EventPage(BaseModel):
    data: list[EventSummary]
    links: Links
    meta: EventMeta


@router.get(
    "/events",
    name="event.list",
    response_model=EventPage,
    summary="List the organization's events (last 30 days), newest first",
    responses=errors(e422="validation_error: an unknown event_type, since after until, or a bad cursor"),
)
async def list_events(
    request: Request,
    principal: Reader,
    page_query: PageParams,
    event_type: Annotated[EventType | None, Query(description="Only events of this type")] = None,
    mailbox_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only events of this mailbox (mbx_...)")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with a time zone, inclusive")] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="ISO 8601 with a time zone, inclusive; not before since")
    ] = None,
) -> dict[str, Any]:
    """The events the organization's webhooks are sent (message received, sent, delivered, bounced,
    ...; domain verified; migrations), kept 30 days: their type, time and ids. Read one with
    GET /events/{id} for its data; send a time range again to a webhook with
    POST /webhooks/{id}:replay. With both event_type and mailbox_id, pages link forward only."""
    filters = service.Filters(event_type=event_type, mailbox_id=mailbox_id, since=since, until=until)
    page, data = service.list_events(
        Table(), principal.org_id, filters, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.get(
    "/events/{event_id}",
    name="event.get",
    response_model=One[EventDetail],
    summary="Get one event with its data",
    responses=errors(e404=EVENT_404),
)
async def get_event(
    principal: Reader, event_id: Annotated[str, Path(max_length=64, description="The event's id (evt_...)")]
) -> dict[str, Any]:
    """One event of the last 30 days with the `data` its webhook deliveries carry, under the same
    id (the `webhook-id` header), so a receiver can look up an event it missed."""
    return one(service.event_detail(service.load(Table(), principal.org_id, event_id)))
