"""The calendar of a message token's mailbox (``/api/v1/messages/calendar/...``): events as
iCalendar, a time range with recurring events expanded, ``.ics`` exports and a feed, and replies
to invitations. Served by CalendarFunction; see docs/contacts-calendar.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from pydantic import AwareDatetime

from mailroom import clock
from mailroom.api import downloads
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.calendar import (
    EventBody,
    EventPatch,
    EventView,
    OccurrenceList,
    RespondBody,
    RespondResult,
)
from mailroom.services import calendar, calendar_invites
from mailroom.store.table import Item, Table

router = api_router("/api/v1/messages/calendar", tags=["calendar"])

Reader = Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]
Writer = Annotated[BoundMailbox, Depends(require_mailbox("messages:write"))]
EventIdPath = Annotated[str, Path(description="The event's id (evt_...)")]
EVENT_404 = "not_found: no such event in this mailbox"
FIELD_422 = (
    "validation_error naming the field: an unknown time_zone, an invalid rrule, an end before the start"
)


@dataclass(frozen=True, slots=True)
class Opened:
    mailbox: Item
    event: Item


def _readable_event(bound: Reader, calendar_event_id: EventIdPath) -> Opened:
    return Opened(bound.mailbox, calendar.load(Table(), bound.mailbox, calendar_event_id))


def _writable_event(request: Request, bound: Writer, calendar_event_id: EventIdPath) -> Opened:
    audit_target(request, "event", calendar_event_id)
    return Opened(bound.mailbox, calendar.load(Table(), bound.mailbox, calendar_event_id))


def _answerable_event(
    request: Request,
    bound: Annotated[BoundMailbox, Depends(require_mailbox("messages:send"))],
    calendar_event_id: EventIdPath,
) -> Opened:
    audit_target(request, "event", calendar_event_id)
    return Opened(bound.mailbox, calendar.load(Table(), bound.mailbox, calendar_event_id))


ReadableEvent = Annotated[Opened, Depends(_readable_event)]
AnswerableEvent = Annotated[Opened, Depends(_answerable_event)]
WritableEvent = Annotated[Opened, Depends(_writable_event)]


@router.get(
    "/events",
    name="event.list",
    response_model=OccurrenceList,
    summary="Events in a time range, recurring events expanded",
    responses=errors(
        e422="validation_error (before not after since), range_too_large (over 366 days or 2,000 occurrences)"
    ),
)
async def list_events(
    bound: Reader,
    since: Annotated[
        AwareDatetime | None, Query(description="Start of the range, with an offset (default: now)")
    ] = None,
    before: Annotated[
        AwareDatetime | None, Query(description="End of the range, exclusive (default: since + 30 days)")
    ] = None,
) -> dict[str, Any]:
    """Every occurrence overlapping [since, before), in start order: single events once, recurring
    events once per occurrence (RRULE with EXDATEs and overrides applied, in the event's own time
    zone, so 09:00 stays 09:00 across a daylight-saving change). At most 366 days."""
    listing = calendar.list_range(Table(), bound.mailbox, since=since, before=before, now=clock.utcnow())
    return {
        "data": listing.occurrences,
        "meta": {
            "since": clock.isoformat(listing.since),
            "before": clock.isoformat(listing.before),
            "count": len(listing.occurrences),
        },
    }


@router.post(
    "/events",
    name="event.create",
    status_code=201,
    response_model=One[EventView],
    summary="Add an event",
    responses=errors(e422=f"{FIELD_422}; event_limit_reached (20,000 per mailbox)"),
)
async def create_event(body: EventBody, request: Request, bound: Writer) -> dict[str, Any]:
    """A new event, stored as iCalendar: times in `time_zone` (IANA), or dates with `all_day`;
    recurring with an RRULE (and EXDATEs); attendees with their participation status."""
    item = calendar.create(Table(), bound.mailbox, body.event())
    audit_target(request, "event", str(item["id"]))
    return one(calendar.event_view(item))


@router.get(
    "/feed",
    name="event.feed",
    summary="The whole calendar as one iCalendar file",
    response_class=Response,
    responses=downloads.documented("text/calendar", "Every event (VCALENDAR with VTIMEZONEs), RFC 5545"),
)
async def calendar_feed(bound: Reader) -> Response:
    """Every event of the mailbox as iCalendar, for another calendar application to import."""
    return downloads.response(calendar.feed(Table(), bound.mailbox))


@router.get(
    "/events/{calendar_event_id}",
    name="event.get",
    response_model=One[EventView],
    summary="One event",
    responses=errors(e404=EVENT_404),
)
async def get_event(opened: ReadableEvent) -> dict[str, Any]:
    """The event's fields as stored (its master VEVENT)."""
    return one(calendar.event_view(opened.event))


@router.get(
    "/events/{calendar_event_id}/ics",
    name="event.ics",
    summary="One event as an .ics file",
    response_class=Response,
    responses={
        **downloads.documented("text/calendar", "The event as iCalendar (RFC 5545)"),
        **errors(e404=EVENT_404),
    },
)
async def event_ics(opened: ReadableEvent) -> Response:
    """The event as a VCALENDAR with its VTIMEZONE, for any calendar application."""
    return downloads.response(calendar.event_ics(opened.mailbox, opened.event))


@router.patch(
    "/events/{calendar_event_id}",
    name="event.update",
    response_model=One[EventView],
    summary="Change an event",
    responses=errors(e404=EVENT_404, e409="concurrent_update", e422=FIELD_422),
)
async def update_event(body: EventPatch, opened: WritableEvent) -> dict[str, Any]:
    """Only the fields given change (a new start without an end keeps the default length); the
    event's SEQUENCE goes up."""
    return one(calendar.event_view(calendar.update(Table(), opened.mailbox, opened.event, body.changes())))


@router.delete(
    "/events/{calendar_event_id}",
    name="event.delete",
    status_code=204,
    summary="Delete an event (every occurrence)",
    responses=errors(e404=EVENT_404, e409="concurrent_update"),
)
async def delete_event(opened: WritableEvent) -> Response:
    """The event and all its occurrences."""
    calendar.remove(Table(), opened.mailbox, opened.event)
    return Response(status_code=204)


@router.post(
    "/events/{calendar_event_id}/respond",
    name="event.respond",
    response_model=One[RespondResult],
    summary="Answer an invitation (accept, tentative, decline): sends the organizer an iTIP REPLY",
    responses=errors(
        e403="mailbox_inactive, mailbox_paused (the mailbox may not send)",
        e404=EVENT_404,
        e409="concurrent_update",
        e422="not_an_invitation (the mailbox organizes it), not_an_attendee, or a send refusal "
        "(recipient_suppressed, mailbox_over_quota, send_rejected)",
    ),
)
async def respond(body: RespondBody, opened: AnswerableEvent) -> dict[str, Any]:
    """Sends the organizer a METHOD:REPLY calendar (invite.ics) with this mailbox's participation
    status, through the normal send path (needs messages:send; a Sent copy is kept), and records
    the answer on the event (accepted: CONFIRMED)."""
    return one(calendar_invites.respond(Table(), opened.mailbox, opened.event, body.response, body.comment))
