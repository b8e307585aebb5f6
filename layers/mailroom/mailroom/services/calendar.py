"""A mailbox's calendar (``/api/v1/messages/calendar/...``): events kept as iCalendar, listed by
time range with recurring events expanded inside the range, exported as ``.ics`` and as a feed.
See docs/contacts-calendar.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mailroom import errors, ids
from mailroom.domain import calendar as ical
from mailroom.domain.calendar import EventInput, InvalidEvent, Person
from mailroom.services import exports
from mailroom.services.message_downloads import Download
from mailroom.store import calendar as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

MAX_RANGE = timedelta(days=366)
MAX_OCCURRENCES = 2000
DEFAULT_RANGE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RangeListing:
    since: datetime
    before: datetime
    occurrences: list[dict[str, Any]]


def event_view(item: Item) -> dict[str, Any]:
    fields = item.get("fields") or {}
    return {
        "id": item["id"],
        "uid": item["uid"],
        **{
            name: fields.get(name)
            for name in (
                "summary",
                "description",
                "location",
                "start",
                "end",
                "time_zone",
                "all_day",
                "rrule",
                "organizer",
                "status",
            )
        },
        "exdates": fields.get("exdates") or [],
        "attendees": fields.get("attendees") or [],
        "reminders": fields.get("reminders") or [],
        "start_utc": item["start_utc"],
        "end_utc": item["end_utc"],
        "recurring": bool(item.get("recurring")),
        "sequence": int(item.get("sequence", 0)),
        "source": item.get("source", "api"),
        "message_id": item.get("message_id"),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def invalid(exc: InvalidEvent) -> errors.MailroomError:
    return errors.validation(exc.message, field=exc.field)


def indexed_values(source: str) -> dict[str, Any]:
    indexed = ical.index(source)
    return {
        "ics": source,
        "uid": indexed.uid,
        "summary": indexed.summary,
        "start_utc": indexed.start_utc,
        "end_utc": indexed.end_utc,
        "recurring": indexed.recurring,
        "until_utc": indexed.until_utc,
        "status": indexed.status,
        "sequence": indexed.sequence,
        "fields": indexed.fields,
    }


def load(table: Table, mailbox: Item, event_id: str) -> Item:
    found = (
        store.get(table, mailbox["org_id"], mailbox["id"], event_id) if ids.is_id(event_id, "evt") else None
    )
    if found is None:
        raise errors.not_found("Event")
    return found


def create(table: Table, mailbox: Item, given: EventInput) -> Item:
    uid = f"{ids.ulid()}@mailroom"
    try:
        source = ical.build(given, uid=uid)
        values = indexed_values(source)
    except InvalidEvent as exc:
        raise invalid(exc) from exc
    try:
        return store.create(table, mailbox["org_id"], mailbox["id"], {**values, "source": "api"})
    except store.LimitReached as exc:
        raise errors.LimitReached("event_limit_reached", str(exc)) from exc
    except store.UidTaken as exc:  # a fresh ULID: only a retried write of the same event
        raise errors.concurrent_update() from exc


def input_of(item: Item, changes: dict[str, Any]) -> EventInput:
    """The stored event's fields with ``changes`` over them, as a client would give them."""
    current = dict(item.get("fields") or {})
    current.update(changes)

    def person(value: dict[str, Any]) -> Person:
        return Person(
            email=str(value["email"]),
            name=value.get("name"),
            status=str(value.get("status") or "needs-action"),
            role=str(value.get("role") or "req-participant"),
        )

    return EventInput(
        summary=str(current.get("summary") or ""),
        start=str(current["start"]),
        end=current.get("end"),
        time_zone=str(current.get("time_zone") or "UTC"),
        all_day=bool(current.get("all_day")),
        description=current.get("description"),
        location=current.get("location"),
        rrule=current.get("rrule"),
        exdates=tuple(current.get("exdates") or ()),
        attendees=tuple(person(a) for a in current.get("attendees") or []),
        organizer=person(current["organizer"]) if current.get("organizer") else None,
        status=str(current.get("status") or "confirmed"),
        reminders=tuple(int(r) for r in current.get("reminders") or ()),
    )


def update(table: Table, mailbox: Item, current: Item, changes: dict[str, Any]) -> Item:
    """PATCH: the fields given replace the stored ones; a new SEQUENCE (RFC 5546) is written."""
    if ("start" in changes or "all_day" in changes) and "end" not in changes:
        changes = {**changes, "end": None}  # an end kept from before could now precede the start
    try:
        source = ical.build(
            input_of(current, changes), uid=str(current["uid"]), sequence=int(current.get("sequence", 0)) + 1
        )
        values = indexed_values(source)
    except InvalidEvent as exc:
        raise invalid(exc) from exc
    try:
        return store.replace(table, mailbox["org_id"], mailbox["id"], current, values)
    except ConditionFailed as exc:
        raise errors.concurrent_update() from exc


def remove(table: Table, mailbox: Item, current: Item) -> None:
    try:
        store.remove(table, mailbox["org_id"], mailbox["id"], current)
    except ConditionFailed as exc:
        raise errors.concurrent_update() from exc


def _range(since: datetime | None, before: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    start = (since or now).astimezone(UTC)
    end = (before or start + DEFAULT_RANGE).astimezone(UTC)
    if end <= start:
        raise errors.validation("before must be later than since", field="before")
    if end - start > MAX_RANGE:
        raise errors.validation("a range spans at most 366 days", field="before", code="range_too_large")
    return start, end


def list_range(
    table: Table, mailbox: Item, *, since: datetime | None, before: datetime | None, now: datetime
) -> RangeListing:
    start, end = _range(since, before, now)
    occurrences: list[dict[str, Any]] = []
    for item in store.in_range(table, mailbox["org_id"], mailbox["id"], start, end):
        fields = item.get("fields") or {}
        for occurrence in ical.occurrences(str(item["ics"]), start, end):
            occurrences.append(
                {
                    "event_id": item["id"],
                    "summary": occurrence.summary,
                    "location": fields.get("location"),
                    "start": occurrence.start,
                    "end": occurrence.end,
                    "start_utc": occurrence.start_utc,
                    "end_utc": occurrence.end_utc,
                    "time_zone": fields.get("time_zone"),
                    "all_day": bool(fields.get("all_day")),
                    "recurrence_id": occurrence.recurrence_id,
                    "status": occurrence.status,
                }
            )
            if len(occurrences) > MAX_OCCURRENCES:
                raise errors.validation(
                    f"more than {MAX_OCCURRENCES} occurrences in this range: ask for a shorter one",
                    field="before",
                    code="range_too_large",
                )
    occurrences.sort(key=lambda o: (o["start_utc"], o["event_id"]))
    return RangeListing(start, end, occurrences)


ICS = "text/calendar; charset=utf-8"


def event_ics(mailbox: Item, item: Item) -> Download:
    data = ical.export([str(item["ics"])]).encode("utf-8")
    return exports.download(mailbox, data, media_type=ICS, filename=f"{item['id']}.ics")


def feed(table: Table, mailbox: Item) -> Download:
    """Every event of the mailbox as one iCalendar file (subscribe or import it elsewhere)."""
    events = store.all_events(table, mailbox["org_id"], mailbox["id"])
    data = ical.export(str(e["ics"]) for e in events).encode("utf-8")
    return exports.download(mailbox, data, media_type=ICS, filename="calendar.ics")
