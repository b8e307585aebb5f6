"""Invitations by mail under moto: a Google Calendar invitation received by a mailbox (the inbound
function, as SES invokes it) becomes a tentative event linked to its message; answering it sends
an iTIP REPLY through SES that the organizer's mailbox applies when it arrives; a cancellation
cancels; forged changes from others are ignored; an Outlook invitation in a Windows time zone is
expanded across the DST change and answered."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from icalendar import Calendar

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.calendar_mail import invitation
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import message_token, sent_messages

EVENTS = "/api/v1/messages/calendar/events"
_keys = itertools.count()


@dataclass
class World:
    bucket: str
    organizer: dict[str, Any]
    attendee: dict[str, Any]
    organizer_token: str
    attendee_token: str


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    organizer = new_mailbox(org, "olga", name="Olga Organizer")
    attendee = new_mailbox(org, "adam", name="Adam Attendee")
    yield World(
        bucket, organizer, attendee, message_token(org, organizer["id"]), message_token(org, attendee["id"])
    )
    get_settings.cache_clear()


def api(token: str, method: str, path: str, body: Any = None, **query: Any) -> Result:
    headers = {"Idempotency-Key": f"i-{next(_keys)}"} if method in ("POST", "PUT") else None
    return call("calendar", method, path, token=token, json_body=body, headers=headers, query=query or None)


def data(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:1500])
    return result.json()["data"]


def events_of(token: str) -> list[dict[str, Any]]:
    occurrences = data(api(token, "GET", EVENTS, since="2026-03-01T00:00:00Z", before="2026-05-01T00:00:00Z"))
    ids = list(dict.fromkeys(o["event_id"] for o in occurrences))
    return [data(api(token, "GET", f"{EVENTS}/{i}")) for i in ids]


def test_an_invitation_is_answered_and_the_organizer_sees_the_answer(world: World) -> None:
    # The organizer's event, whose UID the invitation (written as Google Calendar writes it) carries.
    own = data(
        api(
            world.organizer_token,
            "POST",
            EVENTS,
            {
                "summary": "Project sync",
                "start": "2026-03-16T10:00:00",
                "time_zone": "Europe/Berlin",
                "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
                "organizer": {"email": world.organizer["address"]},
                "attendees": [{"email": world.attendee["address"]}],
            },
        ),
        201,
    )
    raw = invitation(
        "google-calendar-invite.eml",
        organizer=world.organizer["address"],
        attendee=world.attendee["address"],
        uid=own["uid"],
    )
    _, report = sim.receive(world.bucket, raw, [world.attendee["address"]], source=world.organizer["address"])
    assert report["stored"] == 1

    (invited,) = events_of(world.attendee_token)
    assert (invited["source"], invited["status"], invited["uid"]) == ("invitation", "tentative", own["uid"])
    assert invited["message_id"] and invited["location"] == "Room Kepler"
    assert invited["organizer"]["email"] == world.organizer["address"]
    mine = next(a for a in invited["attendees"] if a["email"] == world.attendee["address"])
    assert mine["status"] == "needs-action"
    occurrences = data(
        api(world.attendee_token, "GET", EVENTS, since="2026-03-01T00:00:00Z", before="2026-05-01T00:00:00Z")
    )
    # Google's VTIMEZONE for Europe/Berlin: 10:00 local is 09:00Z, then 08:00Z from 29 March.
    assert [o["start_utc"] for o in occurrences] == [
        "2026-03-16T09:00:00Z",
        "2026-03-23T09:00:00Z",
        "2026-03-30T08:00:00Z",
        "2026-04-06T08:00:00Z",
    ]

    answered = data(
        api(
            world.attendee_token,
            "POST",
            f"{EVENTS}/{invited['id']}/respond",
            {"response": "accepted", "comment": "See you there"},
        )
    )
    assert answered["event"]["status"] == "confirmed"
    assert (
        next(a for a in answered["event"]["attendees"] if a["email"] == world.attendee["address"])["status"]
        == "accepted"
    )
    sent = sent_messages()[-1]
    assert sent.destinations == [world.organizer["address"]] or world.organizer["address"] in str(
        sent.destinations
    )
    reply = Calendar.from_ical(_calendar_part(sent.raw_data))
    assert str(reply["METHOD"]) == "REPLY"
    (event,) = reply.walk("VEVENT")
    assert str(event["UID"]) == own["uid"] and event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"

    # The reply arrives at the organizer's mailbox (as SES would deliver it).
    _, report = sim.receive(
        world.bucket, sent.raw_data.encode(), [world.organizer["address"]], source=world.attendee["address"]
    )
    assert report["stored"] == 1
    updated = data(api(world.organizer_token, "GET", f"{EVENTS}/{own['id']}"))
    assert updated["attendees"] == [
        {"email": world.attendee["address"], "name": None, "status": "accepted", "role": "req-participant"}
    ]


def _calendar_part(raw: str) -> bytes:
    import email
    from email import policy

    message = email.message_from_string(raw, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no text/calendar part")


def _calendar_method(raw: str) -> str | None:
    import email
    from email import policy

    message = email.message_from_string(raw, policy=policy.default)
    found = [p.get_param("method") for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(found) == 1
    return str(found[0]) if found[0] else None


def test_a_cancellation_from_the_organizer_cancels_and_forgeries_do_nothing(world: World) -> None:
    uid = "7kukuqrfedlm2f9t2j5eb2h9m1@google.com"
    organizer, attendee = "olga.external@example.net", world.attendee["address"]
    invite = invitation("google-calendar-invite.eml", organizer=organizer, attendee=attendee, uid=uid)
    sim.receive(world.bucket, invite, [attendee], source=organizer)
    (invited,) = events_of(world.attendee_token)
    # The same invitation again (Google re-sends it) changes nothing and adds nothing.
    sim.receive(world.bucket, invite.replace(b"6f8a1d2e", b"6f8a1d2f"), [attendee], source=organizer)
    assert [e["id"] for e in events_of(world.attendee_token)] == [invited["id"]]

    # Someone else mailing a cancellation of it is ignored.
    forged = invitation("google-calendar-cancel.eml", organizer=organizer, attendee=attendee, uid=uid)
    forged = forged.replace(
        f"From: Olga Organizer <{organizer}>".encode(), b"From: Mallory <mallory@example.org>"
    )
    sim.receive(world.bucket, forged, [attendee], source="mallory@example.org")
    assert data(api(world.attendee_token, "GET", f"{EVENTS}/{invited['id']}"))["status"] == "tentative"

    cancel = invitation("google-calendar-cancel.eml", organizer=organizer, attendee=attendee, uid=uid)
    sim.receive(world.bucket, cancel, [attendee], source=organizer)
    cancelled = data(api(world.attendee_token, "GET", f"{EVENTS}/{invited['id']}"))
    assert cancelled["status"] == "cancelled" and cancelled["sequence"] == 1


def test_only_invitations_can_be_answered(world: World, org: NewOrganization) -> None:
    own = data(
        api(world.organizer_token, "POST", EVENTS, {"summary": "Mine", "start": "2026-03-16T10:00:00Z"}), 201
    )
    refused = api(world.organizer_token, "POST", f"{EVENTS}/{own['id']}/respond", {"response": "accepted"})
    assert (refused.status, refused.error_code) == (422, "not_an_invitation")
    cannot_send = message_token(org, world.organizer["id"], ["messages:read", "messages:write"])
    assert api(cannot_send, "POST", f"{EVENTS}/{own['id']}/respond", {"response": "accepted"}).status == 403


def test_an_outlook_invitation_with_a_windows_time_zone_is_added_and_answered(world: World) -> None:
    # Exchange's UID and its Windows zone name ("W. Europe Standard Time", with Exchange's VTIMEZONE).
    uid = "040000008200E00074C5B7101A82E00800000000B0C3A2F1E6B0DC01000000000000000010000000D9E1B6E3B7A4F54B"
    organizer, attendee = "olga@contoso.example.net", world.attendee["address"]
    raw = invitation("outlook-invite.eml", organizer=organizer, attendee=attendee, uid=uid)
    _, report = sim.receive(world.bucket, raw, [attendee], source=organizer)
    assert report["stored"] == 1

    (invited,) = events_of(world.attendee_token)
    assert (invited["source"], invited["status"], invited["uid"]) == ("invitation", "tentative", uid)
    assert (invited["summary"], invited["location"]) == ("Quarterly planning", "Room Kepler")
    # Its Windows zone is shown as IANA's (the .ics keeps Outlook's own VTIMEZONE name).
    assert (invited["time_zone"], invited["start"]) == ("Europe/Berlin", "2026-03-16T10:00:00")
    assert invited["organizer"] == {"email": organizer, "name": "Olga Organizer"}
    occurrences = data(
        api(world.attendee_token, "GET", EVENTS, since="2026-03-01T00:00:00Z", before="2026-05-01T00:00:00Z")
    )
    # 10:00 in Berlin's zone on each Monday up to UNTIL: 09:00Z, then 08:00Z after the change.
    assert [(o["start"], o["start_utc"]) for o in occurrences] == [
        ("2026-03-16T10:00:00", "2026-03-16T09:00:00Z"),
        ("2026-03-23T10:00:00", "2026-03-23T09:00:00Z"),
        ("2026-03-30T10:00:00", "2026-03-30T08:00:00Z"),
        ("2026-04-06T10:00:00", "2026-04-06T08:00:00Z"),
    ]
    # Outlook's own properties are kept in the event's iCalendar.
    ics = api(world.attendee_token, "GET", f"{EVENTS}/{invited['id']}/ics")
    assert ics.status == 200 and "X-MICROSOFT-SKYPETEAMSMEETINGURL" in ics.body.decode()

    answered = data(
        api(world.attendee_token, "POST", f"{EVENTS}/{invited['id']}/respond", {"response": "declined"})
    )
    mine = next(a for a in answered["event"]["attendees"] if a["email"] == attendee)
    assert mine["status"] == "declined"
    sent = sent_messages()[-1]
    assert organizer in str(sent.destinations)
    reply = Calendar.from_ical(_calendar_part(sent.raw_data))
    (event,) = reply.walk("VEVENT")
    assert (str(reply["METHOD"]), str(event["UID"])) == ("REPLY", uid)
    assert _calendar_method(sent.raw_data) == "REPLY"  # iMIP: the part's Content-Type says it too
    assert event["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    # The reply names the zone its times are in, with a VTIMEZONE for it.
    assert event["DTSTART"].params["TZID"] == "W. Europe Standard Time"
    assert [str(z["TZID"]) for z in reply.walk("VTIMEZONE")] == ["W. Europe Standard Time"]

    # The attendee's copy can be edited like any event: its zone is a valid time_zone.
    moved = data(
        api(world.attendee_token, "PATCH", f"{EVENTS}/{invited['id']}", {"start": "2026-03-16T11:00:00"})
    )
    assert (moved["time_zone"], moved["start_utc"], moved["rrule"]) == (
        "Europe/Berlin",
        "2026-03-16T10:00:00Z",
        invited["rrule"],
    )
