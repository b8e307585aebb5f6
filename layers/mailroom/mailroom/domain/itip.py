"""iTIP (RFC 5546) over mail (iMIP, RFC 6047): invitations, cancellations and replies carried in a
message's ``text/calendar`` part. Pure: reads and rewrites iCalendar text with ``icalendar``.

- REQUEST: the organizer's event (its VEVENTs of one UID) becomes the recipient's copy, TENTATIVE
  until answered. A REQUEST with a higher SEQUENCE is a significant change: the recipient's answer
  is asked again (PARTSTAT back to NEEDS-ACTION); an equal one keeps it.
- CANCEL: the whole event is CANCELLED, or, with a RECURRENCE-ID, that occurrence is left out.
- REPLY: an attendee's PARTSTAT on the organizer's event, for the attendee the reply is from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from icalendar import Calendar, Event, vCalAddress

from mailroom.domain.calendar import PRODID, InvalidEvent, master, parse

CALENDAR_TYPES = ("text/calendar", "application/ics")
MAX_ITIP_BYTES = 1024 * 1024
ANSWERS = {"accepted": "ACCEPTED", "tentative": "TENTATIVE", "declined": "DECLINED"}


@dataclass(frozen=True, slots=True)
class Itip:
    method: str  # REQUEST, CANCEL, REPLY (others are not acted on)
    uid: str
    sequence: int
    organizer: str | None
    events: list[Event]  # the VEVENTs of this UID (a master and/or RECURRENCE-ID instances)


def email_of(value: object) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower() or None


def read(text: str) -> list[Itip]:
    """The iTIP messages of a calendar part (one per UID), or InvalidEvent when it is no iCalendar."""
    calendar = parse(text)
    method = str(calendar.get("method", "")).strip().upper()
    by_uid: dict[str, list[Event]] = {}
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("uid") or "").strip()
        if uid and isinstance(component, Event):
            by_uid.setdefault(uid, []).append(component)
    found = []
    for uid, events in by_uid.items():
        first = next((e for e in events if e.get("recurrence-id") is None), events[0])
        found.append(
            Itip(
                method=method,
                uid=uid,
                sequence=int(first.get("sequence", 0)),
                organizer=email_of(first.get("organizer")),
                events=events,
            )
        )
    return found


def _calendar() -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    return calendar


def _attendees(event: Event) -> list[vCalAddress]:
    found = event.get("attendee")
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def _set_partstat(event: Event, email: str, partstat: str) -> bool:
    changed = False
    for attendee in _attendees(event):
        if email_of(attendee) == email and str(attendee.params.get("PARTSTAT", "")).upper() != partstat:
            attendee.params["PARTSTAT"] = partstat
            changed = True
    return changed


def partstat_of(source: str, email: str) -> str | None:
    for attendee in _attendees(master(parse(source))):
        if email_of(attendee) == email:
            return str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    return None


def invited_copy(itip: Itip, recipient: str, previous: str | None) -> str:
    """The recipient's copy of a REQUEST: TENTATIVE, its own PARTSTAT kept from ``previous`` (its
    earlier copy) unless the SEQUENCE went up."""
    kept = None
    if previous is not None:
        earlier = master(parse(previous))
        if int(earlier.get("sequence", 0)) >= itip.sequence:
            kept = partstat_of(previous, recipient)
    calendar = _calendar()
    for event in itip.events:
        if kept is not None:
            _set_partstat(event, recipient, kept)
        if event.get("recurrence-id") is None:
            event.pop("status", None)
            event.add("status", "CONFIRMED" if kept == "ACCEPTED" else "TENTATIVE")
        calendar.add_component(event)
    return str(calendar.to_ical().decode("utf-8"))


def cancelled_copy(itip: Itip, source: str) -> str:
    """``source`` with the CANCEL applied: every occurrence, or those its RECURRENCE-IDs name."""
    calendar = parse(source)
    main = master(calendar)
    instances = [e.get("recurrence-id") for e in itip.events if e.get("recurrence-id") is not None]
    if itip.sequence > int(main.get("sequence", 0)):
        main.pop("sequence", None)
        main.add("sequence", itip.sequence)
    if not instances:
        main.pop("status", None)
        main.add("status", "CANCELLED")
    else:
        for instance in instances:
            main.add("exdate", instance.dt)
    return str(calendar.to_ical().decode("utf-8"))


def replied_copy(itip: Itip, source: str, sender: str) -> tuple[str, str | None]:
    """``source`` with the PARTSTAT the REPLY gives for ``sender`` (only the attendee the mail is
    from may answer for itself); the new PARTSTAT, or None when nothing changed."""
    answer = None
    for event in itip.events:
        for attendee in _attendees(event):
            if email_of(attendee) == sender:
                answer = str(attendee.params.get("PARTSTAT", "")).upper() or None
    if answer is None:
        return source, None
    calendar = parse(source)
    changed = _set_partstat(master(calendar), sender, answer)
    return str(calendar.to_ical().decode("utf-8")), answer if changed else None


def answered_copy(source: str, attendee: str, answer: str) -> str:
    """The recipient's own copy once it answered: its PARTSTAT, and CONFIRMED when accepted."""
    calendar = parse(source)
    main = master(calendar)
    _set_partstat(main, attendee, ANSWERS[answer])
    main.pop("status", None)
    main.add("status", {"accepted": "CONFIRMED", "tentative": "TENTATIVE", "declined": "TENTATIVE"}[answer])
    return str(calendar.to_ical().decode("utf-8"))


def reply(
    source: str, attendee: str, answer: str, *, comment: str | None, now: datetime | None = None
) -> str:
    """The iTIP REPLY to send the organizer (RFC 5546 3.2.3): the event's UID, SEQUENCE, times and
    ORGANIZER, and this attendee alone with its PARTSTAT."""
    main = master(parse(source))
    mine = next((a for a in _attendees(main) if email_of(a) == attendee), None)
    if mine is None or main.get("organizer") is None:
        raise InvalidEvent("response", "this mailbox is not an attendee of an event with an organizer")
    answered = vCalAddress(f"mailto:{attendee}")
    answered.params.update({k: v for k, v in mine.params.items() if k in ("CN", "ROLE", "CUTYPE")})
    answered.params["PARTSTAT"] = ANSWERS[answer]
    event = Event()
    event.add("uid", str(main["uid"]))
    event.add("sequence", int(main.get("sequence", 0)))
    for name in ("dtstart", "dtend"):
        moment: Any = main.get(name)
        if moment is not None:
            event.add(name, moment.dt)
    if main.get("summary") is not None:
        event.add("summary", str(main["summary"]))
    event.add("organizer", main["organizer"], encode=False)
    event.add("dtstamp", (now or datetime.now(UTC)).replace(microsecond=0))
    event.add("attendee", answered, encode=False)
    if comment:
        event.add("comment", comment)
    calendar = _calendar()
    calendar.add("method", "REPLY")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return str(calendar.to_ical().decode("utf-8"))
