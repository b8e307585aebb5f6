"""The pure side of the calendar (``domain.calendar``, ``domain.itip``): bad input names its field,
occurrences keep their wall-clock time across daylight-saving changes, and the iTIP rewrites
(an invitation's copy, a cancellation, a reply and its answer) follow RFC 5546."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from icalendar import Calendar

from mailroom.domain import itip
from mailroom.domain.calendar import EventInput, InvalidEvent, Person, build, index, occurrences
from mailroom.mail.compose import Draft, OutgoingAttachment, compose

ORGANIZER, ME = "olga@example.net", "adam@example.org"


def event(**fields: object) -> EventInput:
    given: dict[str, object] = {
        "summary": "Sync",
        "start": "2026-03-16T09:00:00",
        "time_zone": "Europe/Berlin",
    }
    given.update(fields)
    return EventInput(**given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"rrule": "FREQ=FORTNIGHTLY"}, "rrule"),
        ({"rrule": "FREQ=HOURLY"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
        ({"rrule": "FREQ=DAILY;COUNT=100000"}, "rrule"),
        ({"rrule": "FREQ=DAILY;UNTIL=20260401T000000"}, "rrule"),  # a zoned start needs a UTC UNTIL
        ({"rrule": "FREQ=DAILY\r\nATTENDEE:mailto:x@example.org"}, "rrule"),
        ({"end": "2026-03-16T08:00:00"}, "end"),
        ({"end": "2026-03-16T09:00:00"}, "end"),
        ({"start": "next tuesday"}, "start"),
        ({"all_day": True, "start": "2026-03-16", "end": "2026-03-16"}, "end"),
        ({"exdates": ("2026-03-23T09:00:00",)}, "exdates"),
        ({"status": "maybe"}, "status"),
        ({"reminders": (60 * 24 * 30,)}, "reminders.0"),
        ({"attendees": (Person("x@example.org", status="perhaps"),)}, "attendees.0.status"),
    ],
)
def test_bad_input_names_its_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        build(event(**fields), uid="u@test")
    assert raised.value.field == field


def test_a_weekly_meeting_keeps_its_local_time_across_the_dst_change() -> None:
    source = build(event(rrule="FREQ=WEEKLY;COUNT=3", exdates=()), uid="weekly@test")
    found = occurrences(source, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC))
    assert [(o.start, o.start_utc) for o in found] == [
        ("2026-03-16T09:00:00", "2026-03-16T08:00:00Z"),
        ("2026-03-23T09:00:00", "2026-03-23T08:00:00Z"),
        ("2026-03-30T09:00:00", "2026-03-30T07:00:00Z"),  # CEST from 29 March
    ]
    indexed = index(source)
    assert (indexed.recurring, indexed.until_utc) == (True, "2026-03-30T08:00:00Z")


def test_a_range_gets_only_its_occurrences_without_the_excluded_ones() -> None:
    source = build(
        event(
            start="2026-10-19T09:30:00",
            time_zone="America/New_York",
            rrule="FREQ=WEEKLY",
            exdates=("2026-10-26T09:30:00",),
        ),
        uid="ny@test",
    )
    found = occurrences(source, datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    assert [o.start_utc for o in found] == ["2026-11-02T14:30:00Z", "2026-11-09T14:30:00Z"]  # EST from 1 Nov
    assert index(source).until_utc is None  # endless: indexed as long-running


def _invitation(sequence: int = 0, *, partstat: str = "NEEDS-ACTION") -> itip.Itip:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        "UID:inv-1@example.net\r\nDTSTAMP:20260310T081512Z\r\n"
        "DTSTART;TZID=Europe/Berlin:20260316T100000\r\nDTEND;TZID=Europe/Berlin:20260316T110000\r\n"
        f"SUMMARY:Project sync\r\nSEQUENCE:{sequence}\r\nSTATUS:CONFIRMED\r\n"
        f"ORGANIZER;CN=Olga:mailto:{ORGANIZER}\r\n"
        f"ATTENDEE;PARTSTAT={partstat};RSVP=TRUE:mailto:{ME}\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.org\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (found,) = itip.read(text)
    return found


def test_an_invitation_is_tentative_and_keeps_an_answer_until_the_organizer_changes_it() -> None:
    first = itip.invited_copy(_invitation(), ME, None)
    assert index(first).status == "tentative" and itip.partstat_of(first, ME) == "NEEDS-ACTION"
    accepted = itip.answered_copy(first, ME, "accepted")
    assert index(accepted).status == "confirmed" and itip.partstat_of(accepted, ME) == "ACCEPTED"
    # The same version again keeps the answer; a new SEQUENCE (a significant change) asks again.
    assert itip.partstat_of(itip.invited_copy(_invitation(0), ME, accepted), ME) == "ACCEPTED"
    changed = itip.invited_copy(_invitation(1), ME, accepted)
    assert itip.partstat_of(changed, ME) == "NEEDS-ACTION" and index(changed).status == "tentative"


def test_a_reply_names_this_attendee_alone_and_the_organizer_applies_it_for_the_sender_only() -> None:
    copy = itip.invited_copy(_invitation(), ME, None)
    reply = Calendar.from_ical(itip.reply(copy, ME, "tentative", comment="Maybe late"))
    (answer,) = reply.walk("VEVENT")
    assert str(reply["METHOD"]) == "REPLY" and str(answer["UID"]) == "inv-1@example.net"
    attendee = answer["ATTENDEE"]
    assert (str(attendee), attendee.params["PARTSTAT"]) == (f"mailto:{ME}", "TENTATIVE")
    assert str(answer["COMMENT"]) == "Maybe late" and [str(z["TZID"]) for z in reply.walk("VTIMEZONE")] == [
        "Europe/Berlin"
    ]
    (replied,) = itip.read(reply.to_ical().decode())
    organizer_copy = build(
        event(organizer=Person(ORGANIZER), attendees=(Person(ME),)), uid="inv-1@example.net"
    )
    # From someone else, it changes nothing; from the attendee, its status.
    assert itip.replied_copy(replied, organizer_copy, "mallory@example.org")[1] is None
    updated, status = itip.replied_copy(replied, organizer_copy, ME)
    assert status == "TENTATIVE" and itip.partstat_of(updated, ME) == "TENTATIVE"


def test_a_cancellation_cancels_the_event_or_only_the_occurrences_it_names() -> None:
    weekly = build(event(rrule="FREQ=WEEKLY;COUNT=4"), uid="inv-1@example.net", sequence=0)
    (whole,) = itip.read(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\n"
        "UID:inv-1@example.net\r\nDTSTAMP:20260310T081512Z\r\nDTSTART:20260316T080000Z\r\nSEQUENCE:1\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert index(itip.cancelled_copy(whole, weekly)).status == "cancelled"
    (one,) = itip.read(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\n"
        "UID:inv-1@example.net\r\nDTSTAMP:20260310T081512Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260323T090000\r\n"
        "SEQUENCE:1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    left = itip.cancelled_copy(one, weekly)
    assert index(left).status == "confirmed"
    starts = [
        o.start for o in occurrences(left, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    ]
    assert starts == ["2026-03-16T09:00:00", "2026-03-30T09:00:00", "2026-04-06T09:00:00"]


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("text/calendar; method=REPLY", "REPLY"),
        ('text/calendar; charset=utf-8; METHOD="request"', "REQUEST"),
        ('text/calendar; method="bad;x"', None),  # not a method token
        ("text/calendar", None),
        ("text/plain; method=REPLY", None),  # only calendar parts carry one
    ],
)
def test_a_composed_calendar_part_carries_its_itip_method(given: str, written: str | None) -> None:
    """RFC 6047 2.4: the iTIP method is a parameter of the text/calendar part's Content-Type."""
    composed = compose(
        Draft(
            sender="adam@example.org",
            to=["olga@example.net"],
            subject="Accepted: Sync",
            text="Accepted",
            attachments=[OutgoingAttachment("invite.ics", given, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")],
        )
    )
    (part,) = message_from_bytes(composed.raw, policy=policy.default).iter_attachments()
    assert part.get_param("method") == written
