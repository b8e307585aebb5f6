"""Calendar events as iCalendar (RFC 5545), through ``icalendar``; occurrences of recurring events
through ``recurring-ical-events``. Pure: no I/O.

An event is kept as its iCalendar source (one VEVENT, plus any RECURRENCE-ID overrides an invitation
carries) and the fields indexed from it. Times carry their IANA zone (``TZID``), so a weekly 09:00
meeting in Europe/Berlin stays at 09:00 local time across a daylight-saving change (its UTC time
moves); all-day events are dates (``VALUE=DATE``), the end exclusive as RFC 5545 says.

The VTIMEZONE components clients need are added when a calendar is written out (``export``), not
stored: ``icalendar`` resolves a TZID through the IANA database when it reads one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from icalendar import Alarm, Calendar, Event, vCalAddress, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from mailroom import lazy_imports

# ``recurring-ical-events`` (~30 ms beyond icalendar) is imported by ``occurrences``, its one user,
# not with this module: of the functions importing this module (calendar, MailTrigger's mailbox, the
# inbound path's invitations) only the calendar's occurrence listing expands recurrences. Declared,
# so that with SnapStart it is loaded before the snapshot.
lazy_imports.declare("recurring_ical_events")

PRODID = "-//Mailroom//Calendar 1.0//EN"
MAX_TEXT = 2000
MAX_DESCRIPTION = 20_000
MAX_ATTENDEES = 100
MAX_REMINDERS = 5
MAX_EXDATES = 500
MAX_COUNT = 5000
LONG_EVENT = timedelta(days=7)  # longer single events are indexed with the recurring ones
MAX_EVENT_SPAN = timedelta(days=5 * 366)
STATUSES = ("confirmed", "tentative", "cancelled")
PARTSTATS = ("needs-action", "accepted", "declined", "tentative", "delegated")
ROLES = ("chair", "req-participant", "opt-participant", "non-participant")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class InvalidEvent(ValueError):
    """A field that cannot make an event; ``field`` names it (``rrule``, ``end``, ``time_zone``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str | None = None
    status: str = "needs-action"  # PARTSTAT, lower case
    role: str = "req-participant"


@dataclass(frozen=True, slots=True)
class EventInput:
    """What a client gives: wall-clock times in ``time_zone``, or dates for all-day events."""

    summary: str
    start: str  # 2026-03-23T09:00[:00] (in time_zone; an offset is converted to it) or 2026-03-23
    end: str | None = None  # default: one hour later, or the next day for all-day events
    time_zone: str = "UTC"
    all_day: bool = False
    description: str | None = None
    location: str | None = None
    rrule: str | None = None
    exdates: tuple[str, ...] = ()
    attendees: tuple[Person, ...] = ()
    organizer: Person | None = None
    status: str = "confirmed"
    reminders: tuple[int, ...] = ()  # minutes before the start


@dataclass(frozen=True, slots=True)
class Indexed:
    """The fields a range query and a list need, read from the iCalendar source."""

    uid: str
    summary: str
    start_utc: str
    end_utc: str
    recurring: bool
    until_utc: str | None  # the end of the last occurrence; None when it recurs forever
    status: str
    sequence: int
    fields: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- input


def zone(field_name: str, name: str) -> ZoneInfo:
    try:
        if not name or not re.fullmatch(r"[A-Za-z0-9_+\-/]{1,64}", name):
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidEvent(
            field_name, f"'{name[:64]}' is not an IANA time zone (e.g. Europe/Berlin)"
        ) from exc


def _text(field_name: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    found = _CONTROL_RE.search(value)
    if found is not None:
        raise InvalidEvent(field_name, f"contains the control character U+{ord(found.group()):04X}")
    if len(value) > limit:
        raise InvalidEvent(field_name, f"at most {limit} characters")
    return value.strip() or None


def _moment(field_name: str, value: str, tz: ZoneInfo, *, all_day: bool) -> date | datetime:
    text = value.strip()
    try:
        if all_day:
            if len(text) != 10:
                raise ValueError(text)
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        kind = "a date (YYYY-MM-DD)" if all_day else "a date-time (YYYY-MM-DDTHH:MM[:SS], optional offset)"
        raise InvalidEvent(field_name, f"'{text[:40]}' is not {kind}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=tz, microsecond=0)
    return parsed.astimezone(tz).replace(microsecond=0)


def _address(field_name: str, raw: str) -> str:
    from mailroom.domain import addresses

    try:
        return addresses.normalize_any(raw.strip().removeprefix("mailto:").removeprefix("MAILTO:")).lower()
    except addresses.InvalidAddress as exc:
        raise InvalidEvent(field_name, f"'{raw[:80]}' is not an email address: {exc}") from exc


def _utc(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def check_rrule(rule: str, start: date | datetime) -> vRecur:
    text = rule.strip().removeprefix("RRULE:")
    if not text or _CONTROL_RE.search(text) or "\n" in text or len(text) > 500:
        raise InvalidEvent("rrule", "an RRULE value such as FREQ=WEEKLY;BYDAY=MO")
    try:
        recur = vRecur.from_ical(text)
        if "FREQ" not in recur:
            raise ValueError("FREQ is required")
        if recur["FREQ"][0] not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
            raise ValueError("FREQ is DAILY, WEEKLY, MONTHLY or YEARLY")
        if recur.get("COUNT") and int(recur["COUNT"][0]) > MAX_COUNT:
            raise ValueError(f"COUNT is at most {MAX_COUNT}")
        anchor = start if isinstance(start, datetime) else datetime(start.year, start.month, start.day)
        until = recur.get("UNTIL")
        if until and isinstance(anchor, datetime) and anchor.tzinfo is not None:
            # RFC 5545: with a zoned DTSTART, UNTIL is UTC; dateutil insists on it.
            value = until[0]
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError("UNTIL must be a UTC time (ending in Z) for an event with a time zone")
        rrulestr(text, dtstart=anchor)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidEvent("rrule", f"'{text[:80]}' is not a valid RRULE: {exc}") from exc
    checked: vRecur = recur
    return checked


def build(given: EventInput, *, uid: str, sequence: int = 0, now: datetime | None = None) -> str:
    """The iCalendar source of a new or changed event (InvalidEvent names the first bad field)."""
    tz = zone("time_zone", given.time_zone)
    summary = _text("summary", given.summary)
    if not summary:
        raise InvalidEvent("summary", "a summary is required")
    start = _moment("start", given.start, tz, all_day=given.all_day)
    if given.end is None:
        end: date | datetime = start + (timedelta(days=1) if given.all_day else timedelta(hours=1))
    else:
        end = _moment("end", given.end, tz, all_day=given.all_day)
    if _utc(end) <= _utc(start) if not given.all_day else end <= start:
        raise InvalidEvent(
            "end", "the end must be after the start" + (" (exclusive date)" if given.all_day else "")
        )
    if _utc(end) - _utc(start) > MAX_EVENT_SPAN:
        raise InvalidEvent("end", "an event lasts at most 5 years")
    if given.status not in STATUSES:
        raise InvalidEvent("status", f"one of {', '.join(STATUSES)}")

    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", (now or datetime.now(UTC)).replace(microsecond=0))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("sequence", sequence)
    event.add("status", given.status.upper())
    if description := _text("description", given.description, MAX_DESCRIPTION):
        event.add("description", description)
    if location := _text("location", given.location):
        event.add("location", location)
    if given.rrule:
        event.add("rrule", check_rrule(given.rrule, start))
    if given.exdates:
        if not given.rrule:
            raise InvalidEvent("exdates", "exdates need an rrule")
        if len(given.exdates) > MAX_EXDATES:
            raise InvalidEvent("exdates", f"at most {MAX_EXDATES}")
        event.add(
            "exdate",
            [_moment(f"exdates.{i}", v, tz, all_day=given.all_day) for i, v in enumerate(given.exdates)],
        )
    if given.organizer is not None:
        event.add("organizer", _cal_address("organizer", given.organizer, organizer=True), encode=False)
    if len(given.attendees) > MAX_ATTENDEES:
        raise InvalidEvent("attendees", f"at most {MAX_ATTENDEES} attendees")
    for position, person in enumerate(given.attendees):
        event.add("attendee", _cal_address(f"attendees.{position}", person), encode=False)
    if len(given.reminders) > MAX_REMINDERS:
        raise InvalidEvent("reminders", f"at most {MAX_REMINDERS} reminders")
    for position, minutes in enumerate(given.reminders):
        if not 0 <= minutes <= 40_320:
            raise InvalidEvent(f"reminders.{position}", "0 to 40320 minutes (4 weeks) before the start")
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", timedelta(minutes=-minutes))
        event.add_component(alarm)
    calendar = _calendar()
    calendar.add_component(event)
    return str(calendar.to_ical().decode("utf-8"))


def _cal_address(field_name: str, person: Person, *, organizer: bool = False) -> vCalAddress:
    address = vCalAddress(f"mailto:{_address(f'{field_name}.email', person.email)}")
    if name := _text(f"{field_name}.name", person.name, 200):
        address.params["CN"] = name
    if not organizer:
        if person.status not in PARTSTATS:
            raise InvalidEvent(f"{field_name}.status", f"one of {', '.join(PARTSTATS)}")
        if person.role not in ROLES:
            raise InvalidEvent(f"{field_name}.role", f"one of {', '.join(ROLES)}")
        address.params["PARTSTAT"] = person.status.upper()
        address.params["ROLE"] = person.role.upper()
    return address


def _calendar(method: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    if method:
        calendar.add("method", method)
    return calendar


# ----------------------------------------------------------------------------- reading


def parse(source: str) -> Calendar:
    try:
        calendar = Calendar.from_ical(source)
    except (ValueError, IndexError, KeyError) as exc:
        raise InvalidEvent("ics", f"not iCalendar: {str(exc)[:200]}") from exc
    if not isinstance(calendar, Calendar):
        raise InvalidEvent("ics", "not a VCALENDAR")
    return calendar


def master(calendar: Calendar) -> Event:
    """The event's main VEVENT (the one without RECURRENCE-ID)."""
    main = next((e for e in calendar.walk("VEVENT") if e.get("recurrence-id") is None), None)
    if not isinstance(main, Event):
        raise InvalidEvent("ics", "no VEVENT")
    return main


def _iso(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    return value.isoformat()


def _utc_iso(value: date | datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _people(event: Event, name: str) -> list[Any]:
    found = event.get(name)
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def _person(value: Any) -> dict[str, Any]:
    params = getattr(value, "params", {})
    return {
        "email": str(value).split(":", 1)[-1].lower() if ":" in str(value) else str(value).lower(),
        "name": params.get("CN"),
        "status": str(params.get("PARTSTAT", "NEEDS-ACTION")).lower(),
        "role": str(params.get("ROLE", "REQ-PARTICIPANT")).lower(),
    }


def _end_of(event: Event, start: date | datetime) -> date | datetime:
    end = event.get("dtend")
    if end is not None:
        value: date | datetime = end.dt
        return value
    duration = event.get("duration")
    if duration is not None:
        return start + duration.dt  # type: ignore[no-any-return]
    return start + timedelta(days=1) if not isinstance(start, datetime) else start


def index(source: str) -> Indexed:
    """The indexed fields of an event's source (its master VEVENT)."""
    calendar = parse(source)
    event = master(calendar)
    uid = str(event.get("uid") or "").strip()
    if not uid:
        raise InvalidEvent("ics", "the VEVENT has no UID")
    start_prop = event.get("dtstart")
    if start_prop is None:
        raise InvalidEvent("ics", "the VEVENT has no DTSTART")
    start = start_prop.dt
    end = _end_of(event, start)
    all_day = not isinstance(start, datetime)
    tz_name = "UTC"
    if isinstance(start, datetime):
        if start.tzinfo is None:  # floating time: read as UTC (documented)
            start = start.replace(tzinfo=UTC)
            end = end.replace(tzinfo=UTC) if isinstance(end, datetime) and end.tzinfo is None else end
        tz_name = str(getattr(start.tzinfo, "key", None) or start_prop.params.get("TZID") or "UTC")
        # Outlook names Windows zones (W. Europe Standard Time): shown, and edited, as IANA's.
        tz_name = WINDOWS_TO_OLSON.get(tz_name, tz_name)
    rrule = event.get("rrule")
    recurring = rrule is not None or event.get("rdate") is not None
    until_utc: str | None = None
    if recurring:
        until_utc = _last_end(calendar, start, end)
    elif _utc(end) - _utc(start) > LONG_EVENT:
        until_utc = _utc_iso(end)
    exdates = []
    for entry in _people(event, "exdate"):
        exdates += [_iso(d.dt) for d in entry.dts]
    reminders = []
    for alarm in event.walk("VALARM"):
        trigger = alarm.get("trigger")
        if trigger is not None and isinstance(trigger.dt, timedelta):
            reminders.append(int(-trigger.dt.total_seconds() // 60))
    organizer = event.get("organizer")
    status = str(event.get("status", "CONFIRMED")).lower()
    fields = {
        "summary": str(event.get("summary", "")),
        "description": str(event["description"]) if event.get("description") is not None else None,
        "location": str(event["location"]) if event.get("location") is not None else None,
        "start": _iso(start),
        "end": _iso(end),
        "time_zone": tz_name,
        "all_day": all_day,
        "rrule": rrule.to_ical().decode() if rrule is not None else None,
        "exdates": exdates,
        "attendees": [_person(a) for a in _people(event, "attendee")],
        "organizer": {k: v for k, v in _person(organizer).items() if k in ("email", "name")}
        if organizer
        else None,
        "status": status if status in STATUSES else "confirmed",
        "reminders": sorted(r for r in reminders if r >= 0),
    }
    return Indexed(
        uid=uid,
        summary=str(fields["summary"]),
        start_utc=_utc_iso(start),
        end_utc=_utc_iso(end),
        recurring=recurring,
        until_utc=until_utc,
        status=str(fields["status"]),
        sequence=int(event.get("sequence", 0)),
        fields=fields,
    )


def _last_end(calendar: Calendar, start: date | datetime, end: date | datetime) -> str | None:
    """The end of the last occurrence of a recurring event, or None when it has no last one."""
    event = master(calendar)
    rule = event.get("rrule")
    if rule is None:
        return None
    if "COUNT" not in rule and "UNTIL" not in rule:
        return None
    if str(rule.get("FREQ", [""])[0]) not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        return None  # an invitation's sub-daily rule: indexed as open-ended rather than expanded here
    anchor = start if isinstance(start, datetime) else datetime(start.year, start.month, start.day)
    occurrences = list(rrulestr(rule.to_ical().decode(), dtstart=anchor))
    if not occurrences:
        return _utc_iso(end)
    last: datetime = occurrences[-1]
    duration = _utc(end) - _utc(start)
    last_start = last if last.tzinfo is not None else last.replace(tzinfo=UTC)
    return (last_start.astimezone(UTC) + duration).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- occurrences


@dataclass(frozen=True, slots=True)
class Occurrence:
    start: str  # wall clock in the event's zone, or a date
    end: str
    start_utc: str
    end_utc: str
    recurrence_id: str | None
    summary: str
    status: str


def occurrences(source: str, since: datetime, before: datetime) -> list[Occurrence]:
    """Every occurrence of the event overlapping [since, before), in order (EXDATEs left out,
    RECURRENCE-ID overrides applied) — ``recurring-ical-events`` does the expansion."""
    import recurring_ical_events

    calendar = parse(source)
    found = []
    recurring = master(calendar).get("rrule") is not None or master(calendar).get("rdate") is not None
    for event in recurring_ical_events.of(calendar).between(since, before):
        start = event["DTSTART"].dt
        end = _end_of(event, start)
        if isinstance(start, datetime) and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
            end = end.replace(tzinfo=UTC) if isinstance(end, datetime) and end.tzinfo is None else end
        found.append(
            Occurrence(
                start=_iso(start),
                end=_iso(end),
                start_utc=_utc_iso(start),
                end_utc=_utc_iso(end),
                recurrence_id=_utc_iso(start) if recurring else None,
                summary=str(event.get("summary", "")),
                status=str(event.get("status", "CONFIRMED")).lower(),
            )
        )
    return sorted(found, key=lambda o: o.start_utc)


# ----------------------------------------------------------------------------- writing out


def export(sources: Iterable[str], *, method: str | None = None) -> str:
    """One VCALENDAR of every event (with the VTIMEZONEs their TZIDs need): a feed, or one .ics."""
    calendar = _calendar(method)
    for source in sources:
        for component in parse(source).subcomponents:
            if component.name == "VEVENT":
                calendar.add_component(component)
    calendar.add_missing_timezones()
    return str(calendar.to_ical().decode("utf-8"))
