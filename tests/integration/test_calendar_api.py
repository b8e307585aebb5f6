"""The calendar through CalendarFunction, as API Gateway invokes it, under moto: events stored as
iCalendar, ranges with recurring events expanded (across a daylight-saving change, with EXDATEs),
all-day and long events, 422s naming the field, .ics and the feed, isolation."""

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
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import message_token

EVENTS = "/api/v1/messages/calendar/events"
_keys = itertools.count()


@dataclass
class Cal:
    org: NewOrganization
    mailbox: dict[str, Any]
    token: str


@pytest.fixture
def cal(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cal]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "owner", name="Owner")
    yield Cal(org, mailbox, message_token(org, mailbox["id"]))
    get_settings.cache_clear()


def api(cal: Cal | str, method: str, path: str, body: Any = None, **query: Any) -> Result:
    token = cal.token if isinstance(cal, Cal) else cal
    headers = {"Idempotency-Key": f"e-{next(_keys)}"} if method in ("POST", "PUT") else None
    return call("calendar", method, path, token=token, json_body=body, headers=headers, query=query or None)


def data(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:1500])
    return result.json()["data"]


def create(cal: Cal, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = data(api(cal, "POST", EVENTS, fields), 201)
    return created


def occurrences(cal: Cal, since: str, before: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data(api(cal, "GET", EVENTS, since=since, before=before))
    return found


def test_a_weekly_meeting_keeps_its_local_time_across_the_dst_change(cal: Cal) -> None:
    # Europe/Berlin moves to summer time on Sunday 29 March 2026: 09:00 local is 08:00Z, then 07:00Z.
    event = create(
        cal,
        summary="Standup",
        start="2026-03-16T09:00:00",
        end="2026-03-16T09:15:00",
        time_zone="Europe/Berlin",
        rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=6",
        exdates=["2026-04-06T09:00:00"],
        attendees=[{"email": "bob@example.org", "name": "Bob", "status": "accepted"}],
        organizer={"email": "owner@example.com"},
        reminders=[10],
    )
    assert event["recurring"] and event["start_utc"] == "2026-03-16T08:00:00Z"
    assert event["attendees"] == [
        {"email": "bob@example.org", "name": "Bob", "status": "accepted", "role": "req-participant"}
    ]
    found = occurrences(cal, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z")
    assert [(o["start"], o["start_utc"]) for o in found] == [
        ("2026-03-16T09:00:00", "2026-03-16T08:00:00Z"),
        ("2026-03-23T09:00:00", "2026-03-23T08:00:00Z"),
        ("2026-03-30T09:00:00", "2026-03-30T07:00:00Z"),  # the first Monday of summer time
        # 6 April is an EXDATE
        ("2026-04-13T09:00:00", "2026-04-13T07:00:00Z"),
        ("2026-04-20T09:00:00", "2026-04-20T07:00:00Z"),
    ]
    assert all(o["event_id"] == event["id"] and o["time_zone"] == "Europe/Berlin" for o in found)
    assert found[2]["end"] == "2026-03-30T09:15:00"
    # A range inside the series expands only what overlaps it.
    inside = occurrences(cal, "2026-03-29T00:00:00Z", "2026-04-01T00:00:00Z")
    assert [o["start_utc"] for o in inside] == ["2026-03-30T07:00:00Z"]


def test_an_endless_series_and_single_all_day_and_long_events_in_a_range(cal: Cal) -> None:
    daily = create(cal, summary="Walk", start="2026-01-01T07:00:00Z", rrule="FREQ=DAILY")
    single = create(cal, summary="Dentist", start="2026-05-04T14:00:00+02:00", time_zone="Europe/Paris")
    holiday = create(cal, summary="Holiday", start="2026-05-01", all_day=True)
    trip = create(cal, summary="Trip", start="2026-04-20", end="2026-05-20", all_day=True)
    outside = create(cal, summary="Later", start="2026-06-01T10:00:00Z")
    found = occurrences(cal, "2026-05-01T00:00:00Z", "2026-05-05T00:00:00Z")
    by_event: dict[str, list[dict[str, Any]]] = {}
    for occurrence in found:
        by_event.setdefault(occurrence["event_id"], []).append(occurrence)
    assert len(by_event[daily["id"]]) == 4
    assert by_event[single["id"]][0]["start"] == "2026-05-04T14:00:00"
    assert by_event[holiday["id"]][0]["all_day"] and by_event[holiday["id"]][0]["end"] == "2026-05-02"
    assert by_event[trip["id"]][0]["start"] == "2026-04-20"  # a 30-day event reaching into the range
    assert outside["id"] not in by_event
    starts = [o["start_utc"] for o in found]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=SECONDLY"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
        ({"end": "2026-03-16T08:00:00"}, "end"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"start": "next tuesday"}, "start"),
        ({"attendees": [{"email": "not an address"}]}, "attendees.0.email"),
        ({"exdates": ["2026-03-23T09:00:00"]}, "exdates"),
    ],
)
def test_bad_input_is_422_naming_the_field(cal: Cal, fields: dict[str, Any], field: str) -> None:
    body = {"summary": "Bad", "start": "2026-03-16T09:00:00", "time_zone": "Europe/Berlin", **fields}
    result = api(cal, "POST", EVENTS, body)
    assert (result.status, result.error_code) == (422, "validation_error"), result.body
    assert result.json()["error"]["fields"][0]["field"] == field


def test_update_delete_ics_and_feed(cal: Cal) -> None:
    event = create(cal, summary="Review", start="2026-03-16T09:00:00", time_zone="Europe/Berlin")
    path = f"{EVENTS}/{event['id']}"
    moved = data(api(cal, "PATCH", path, {"start": "2026-03-17T15:00:00", "location": "Room 1"}))
    assert (moved["start"], moved["end"], moved["location"], moved["sequence"]) == (
        "2026-03-17T15:00:00",
        "2026-03-17T16:00:00",
        "Room 1",
        1,
    )
    assert occurrences(cal, "2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z") == []
    assert len(occurrences(cal, "2026-03-17T00:00:00Z", "2026-03-18T00:00:00Z")) == 1
    bad = api(cal, "PATCH", path, {"end": "2026-03-17T14:00:00"})
    assert (bad.status, bad.json()["error"]["fields"][0]["field"]) == (422, "end")

    ics = api(cal, "GET", f"{path}/ics")
    assert ics.status == 200 and ics.headers["content-type"].startswith("text/calendar")
    parsed = Calendar.from_ical(ics.body)
    assert [c.name for c in parsed.subcomponents] == ["VTIMEZONE", "VEVENT"]
    assert str(parsed.walk("VEVENT")[0]["UID"]) == event["uid"]

    create(cal, summary="Other", start="2026-03-20T10:00:00Z")
    feed = api(cal, "GET", "/api/v1/messages/calendar/feed")
    assert len(Calendar.from_ical(feed.body).walk("VEVENT")) == 2

    assert api(cal, "DELETE", path).status == 204
    assert api(cal, "GET", path).status == 404
    assert occurrences(cal, "2026-03-17T00:00:00Z", "2026-03-18T00:00:00Z") == []


def test_ranges_are_bounded_and_mailboxes_isolated(cal: Cal) -> None:
    too_long = api(cal, "GET", EVENTS, since="2026-01-01T00:00:00Z", before="2027-06-01T00:00:00Z")
    assert (too_long.status, too_long.error_code) == (422, "range_too_large")
    backwards = api(cal, "GET", EVENTS, since="2026-02-01T00:00:00Z", before="2026-01-01T00:00:00Z")
    assert backwards.status == 422
    event = create(cal, summary="Mine", start="2026-03-16T09:00:00Z")
    other = new_mailbox(cal.org, "other")
    token = message_token(cal.org, other["id"])
    assert api(token, "GET", f"{EVENTS}/{event['id']}").status == 404
    assert data(api(token, "GET", EVENTS, since="2026-03-01T00:00:00Z", before="2026-04-01T00:00:00Z")) == []
