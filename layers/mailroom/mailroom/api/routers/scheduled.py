"""Scheduled send of the token's mailbox (served by ComposeFunction): ``/api/v1/messages/scheduled``.
A send body or a draft, sent once at ``send_at`` by a one-off EventBridge Scheduler schedule. See
docs/compose.md ("Scheduled send") and services/scheduled_sends.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from mailroom.api import pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import ListOf, One, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.send import COMPOSE_422, SendMessageBody
from mailroom.services import scheduled_sends
from mailroom.store.table import Table

router = api_router("/api/v1/messages", tags=["compose"])
Reader = Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]
Sender = Annotated[BoundMailbox, Depends(require_mailbox("messages:send"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
Status = Literal["pending", "sending", "sent", "failed", "cancelled"]


class ScheduleBody(SendMessageBody):
    """The send body (or `draft_uid` alone), plus when to send it."""

    send_at: AwareDatetime = Field(
        description="ISO 8601 with its offset (2026-05-01T09:00:00+02:00): at least 1 minute and at "
        "most 1 year ahead"
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="An IANA zone (Europe/Paris) the schedule is kept in and shown with; the instant "
        "is send_at's either way. Default UTC",
    )
    draft_uid: str | None = Field(
        default=None,
        max_length=64,
        description="Schedule this draft (msg_... in Drafts) instead of a body: it is sent as it is "
        "at the time and leaves Drafts then; give no body field with it",
    )

    @model_validator(mode="after")
    def draft_alone(self) -> ScheduleBody:
        if self.draft_uid is not None and self.model_fields_set - {"draft_uid", "send_at", "time_zone"}:
            raise ValueError(
                "draft_uid schedules the draft as saved: give only send_at and time_zone with it"
            )
        return self


class Failure(BaseModel):
    code: str = Field(
        description="mailbox_paused, mailbox_inactive, mailbox_deleted, draft_already_sent, ..."
    )
    message: str


class ScheduledView(BaseModel):
    id: str = Field(description="sch_...")
    status: Status = Field(
        description="pending until the time; sending while it goes out; then sent or failed (with "
        "`failure`); cancelled by DELETE"
    )
    send_at: Timestamp
    time_zone: str
    draft_uid: str | None = Field(description="The draft it sends, if scheduled by draft_uid")
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    sent_message_id: str | None = Field(description="Once sent: the Sent copy (GET /api/v1/messages/{id})")
    failure: Failure | None = Field(description="Once failed: why; nothing was sent")
    created_at: Timestamp
    updated_at: Timestamp
    sent_at: Timestamp | None
    failed_at: Timestamp | None
    cancelled_at: Timestamp | None


ScheduledId = Annotated[str, Path(max_length=64, description="The scheduled send's id (sch_...)")]


@router.post(
    "/scheduled",
    name="scheduled.create",
    status_code=201,
    response_model=One[ScheduledView],
    summary="Schedule a send (a body or a draft) for a later time",
    responses={
        201: {
            "description": "Scheduled; nothing is sent before send_at",
            "headers": {
                "Location": {
                    "description": "/api/v1/messages/scheduled/{id}",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        **errors(
            e403="mailbox_inactive or mailbox_paused: this mailbox may not send now",
            e404="not_found: draft_uid names no message of this mailbox",
            e409="draft_already_sent: the draft was sent already",
            e422=f"{COMPOSE_422}, not_a_draft, scheduled_body_too_large (300 KB: schedule a draft "
            "instead); validation_error on send_at (less than 1 minute or more than 1 year ahead, or "
            "without an offset) or time_zone",
            e502="scheduler_unavailable: EventBridge Scheduler refused the schedule; nothing was scheduled",
            e503="scheduling_unavailable: scheduled send is not configured on this deployment",
        ),
    },
)
async def create_scheduled(
    body: ScheduleBody, request: Request, response: Response, bound: Sender
) -> dict[str, Any]:
    """Send this message at `send_at`, once. Everything a send checks is checked now (recipients,
    template and its variables, identity, size), so the send itself rarely fails; if the mailbox is
    paused or deleted by then it fails with the reason recorded. The Sent copy threads like any
    send, and `message.sent` fires at the time, not now. Cancel with DELETE until it fires."""
    mailbox = bound.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    table = Table()
    if body.draft_uid is not None:
        item = scheduled_sends.create(
            table, mailbox, send_at=body.send_at, time_zone=body.time_zone, draft_id=body.draft_uid
        )
    else:
        item = scheduled_sends.create(
            table,
            mailbox,
            send_at=body.send_at,
            time_zone=body.time_zone,
            request=body.to_request(),
            options=body.compose_options(),
        )
    audit_target(request, "scheduled_send", item["id"], mailbox_id=mailbox["id"], send_at=item["send_at"])
    response.headers["Location"] = f"/api/v1/messages/scheduled/{item['id']}"
    return one(scheduled_sends.view(item))


@router.get(
    "/scheduled",
    name="scheduled.list",
    response_model=ListOf[ScheduledView],
    summary="Scheduled sends of this mailbox (pending, sent, failed, cancelled)",
)
async def list_scheduled(
    request: Request,
    bound: Reader,
    page_query: PageParams,
    status: Annotated[Status | None, Query(description="Only those in this state")] = None,
) -> dict[str, Any]:
    """Newest first. Sent, failed and cancelled ones stay listed for 30 days."""
    page = scheduled_sends.list_scheduled(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor, status=status
    )
    data = [scheduled_sends.view(item) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.delete(
    "/scheduled/{scheduled_id}",
    name="scheduled.cancel",
    response_model=One[ScheduledView],
    summary="Cancel a scheduled send that has not gone out",
    responses=errors(
        e404="not_found: no such scheduled send in this mailbox",
        e409="scheduled_send_not_pending: it is sending, sent, failed or cancelled already",
    ),
)
async def cancel_scheduled(scheduled_id: ScheduledId, request: Request, bound: Sender) -> dict[str, Any]:
    """Cancel it: it will never be sent, and stays listed as `cancelled`. A cancel racing the
    send either wins (nothing is sent) or loses with 409 (it is being sent); never both."""
    audit_target(request, "scheduled_send", scheduled_id, mailbox_id=bound.mailbox["id"])
    return one(scheduled_sends.view(scheduled_sends.cancel(Table(), bound.mailbox, scheduled_id)))
