"""Request and response models of the calendar (``/api/v1/messages/calendar/...``). The service
checks every field again (``domain.calendar``: an unknown time zone, an invalid RRULE or an end
before the start are 422 naming the field); these state the rules for clients."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mailroom.api.models import Strict, Timestamp
from mailroom.domain import calendar as rules
from mailroom.domain.calendar import EventInput, Person

PartStat = Literal["needs-action", "accepted", "declined", "tentative", "delegated"]
Role = Literal["chair", "req-participant", "opt-participant", "non-participant"]
Status = Literal["confirmed", "tentative", "cancelled"]
WHEN = (
    "A local date-time in time_zone (2026-03-23T09:00:00; an offset or Z is converted to time_zone), "
    "or a date (2026-03-23) for an all-day event"
)


class PersonBody(Strict):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)


class AttendeeBody(PersonBody):
    status: PartStat = "needs-action"
    role: Role = "req-participant"


class EventFields(Strict):
    summary: str | None = Field(default=None, min_length=1, max_length=rules.MAX_TEXT)
    description: str | None = Field(default=None, max_length=rules.MAX_DESCRIPTION)
    location: str | None = Field(default=None, max_length=rules.MAX_TEXT)
    start: str | None = Field(default=None, max_length=40, description=WHEN)
    end: str | None = Field(
        default=None,
        max_length=40,
        description="Like start; exclusive for all-day events. Default: an hour after start, or the next day",
    )
    time_zone: str | None = Field(
        default=None, max_length=64, description="IANA zone, e.g. Europe/Berlin (default UTC)"
    )
    all_day: bool | None = None
    rrule: str | None = Field(
        default=None,
        max_length=500,
        description="An RFC 5545 RRULE value (FREQ DAILY, WEEKLY, MONTHLY or YEARLY), "
        "e.g. FREQ=WEEKLY;BYDAY=MO",
    )
    exdates: list[str] | None = Field(
        default=None, max_length=rules.MAX_EXDATES, description="Occurrences left out (like start)"
    )
    attendees: list[AttendeeBody] | None = Field(default=None, max_length=rules.MAX_ATTENDEES)
    organizer: PersonBody | None = None
    status: Status | None = None
    reminders: list[int] | None = Field(
        default=None, max_length=rules.MAX_REMINDERS, description="Minutes before the start (0-40320)"
    )


class EventBody(EventFields):
    summary: str = Field(min_length=1, max_length=rules.MAX_TEXT)
    start: str = Field(max_length=40, description=WHEN)

    def event(self) -> EventInput:
        return EventInput(
            summary=self.summary,
            start=self.start,
            end=self.end,
            time_zone=self.time_zone or "UTC",
            all_day=bool(self.all_day),
            description=self.description,
            location=self.location,
            rrule=self.rrule,
            exdates=tuple(self.exdates or ()),
            attendees=tuple(Person(a.email, a.name, a.status, a.role) for a in self.attendees or []),
            organizer=Person(self.organizer.email, self.organizer.name) if self.organizer else None,
            status=self.status or "confirmed",
            reminders=tuple(self.reminders or ()),
        )


class EventPatch(EventFields):
    """Only the fields given change; null clears an optional field."""

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PersonView(BaseModel):
    email: str
    name: str | None


class AttendeeView(PersonView):
    status: str = Field(description="PARTSTAT: needs-action, accepted, declined, tentative, delegated")
    role: str


class EventView(BaseModel):
    id: str = Field(description="evt_...")
    uid: str = Field(description="The iCalendar UID")
    summary: str | None
    description: str | None
    location: str | None
    start: str | None = Field(description="Wall-clock time in time_zone, or a date for all-day events")
    end: str | None
    time_zone: str | None
    all_day: bool | None
    rrule: str | None
    exdates: list[str]
    attendees: list[AttendeeView]
    organizer: PersonView | None
    status: str | None
    reminders: list[int]
    start_utc: str
    end_utc: str
    recurring: bool
    sequence: int
    source: Literal["api", "invitation"] = Field(
        description="invitation: added from an iTIP REQUEST received by mail"
    )
    message_id: str | None = Field(description="The message (msg_...) the invitation came in, if any")
    created_at: Timestamp
    updated_at: Timestamp


class OccurrenceView(BaseModel):
    event_id: str
    summary: str
    location: str | None
    start: str = Field(description="Wall-clock time in time_zone (or a date)")
    end: str
    start_utc: str
    end_utc: str
    time_zone: str | None
    all_day: bool
    recurrence_id: str | None = Field(
        description="The occurrence's original start (UTC) for recurring events"
    )
    status: str


class RangeMeta(BaseModel):
    since: str
    before: str
    count: int


class OccurrenceList(BaseModel):
    data: list[OccurrenceView]
    meta: RangeMeta


class RespondBody(Strict):
    response: Literal["accepted", "tentative", "declined"]
    comment: str | None = Field(
        default=None, max_length=1000, description="Sent to the organizer with the reply"
    )


class RespondResult(BaseModel):
    event: EventView
    reply_message_id: str = Field(description="The Sent copy of the iTIP REPLY (msg_...)")
