"""Contacts and calendar end to end, over HTTP against a local stack of this module's own: the
exports Apple Contacts, Google Contacts and Outlook write are imported and an export re-imports
onto itself; a group is a send's recipient; a recurring meeting expands across a daylight-saving
change; an invitation in Google Calendar's MIME, sent over SMTP to the stack's listener, appears as
a tentative event, and accepting it sends an iTIP REPLY (SES → local outbound → the inbound
function) that the organizer's mailbox, hosted in the same stack, applies to its event."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.api_http import data, post, wait_for
from tests.support.calendar_mail import invitation

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("contacts_calendar")]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contacts"
PASSWORD = "Correct-Horse-42"
TIMEOUT = 45.0
EVENTS = "/api/v1/messages/calendar/events"


@dataclass
class World:
    stack: LocalStackProcess
    olga: httpx.Client  # the organizer's message token
    adam: httpx.Client  # the attendee's
    olga_address: str
    adam_address: str


def client(stack: LocalStackProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_stack(tmp_path_factory.mktemp("contacts-calendar-state")) as stack:
        with client(stack, stack.admin_token) as admin:
            domain = data(
                post(admin, "/api/v1/domains", {"domain": f"cal-{uuid.uuid4().hex[:10]}.example.com"}), 201
            )
            tokens, addresses = {}, {}
            for local_part, name in (("olga", "Olga Organizer"), ("adam", "Adam Attendee")):
                body = {
                    "local_part": local_part,
                    "domain": domain["domain"],
                    "password": PASSWORD,
                    "name": name,
                }
                mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
                scopes = {"name": "e2e", "scopes": ["messages:read", "messages:write", "messages:send"]}
                tokens[local_part] = data(
                    post(admin, f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", scopes), 201
                )["token"]
                addresses[local_part] = mailbox["address"]
        with client(stack, tokens["olga"]) as olga, client(stack, tokens["adam"]) as adam:
            yield World(stack, olga, adam, addresses["olga"], addresses["adam"])


def import_file(reader: httpx.Client, fmt: str, content: str) -> dict[str, Any]:
    report: dict[str, Any] = data(
        post(reader, "/api/v1/messages/contacts:import", {"format": fmt, "content": content})
    )
    return report


def test_real_exports_import_and_an_export_reimports_onto_itself(world: World) -> None:
    book = world.olga
    apple = import_file(book, "vcard", (FIXTURES / "apple-contacts.vcf").read_text(encoding="utf-8"))
    assert [r["status"] for r in apple["results"]] == ["imported", "imported", "skipped", "imported"]
    google = import_file(book, "csv", (FIXTURES / "google-contacts.csv").read_text(encoding="utf-8"))
    assert [r["status"] for r in google["results"]] == ["imported", "imported", "imported", "skipped"]
    outlook = import_file(book, "csv", (FIXTURES / "outlook-contacts.csv").read_text(encoding="utf-8-sig"))
    assert outlook["imported"] == 2

    found = data(book.get("/api/v1/messages/contacts", params={"q": "appl"}))
    assert [c["name"] for c in found] == ["Dr. Johnny Appleseed"]  # apple.example.com and "Appleseed": once

    before = book.get("/api/v1/messages/contacts", params={"per_page": 100}).json()
    exported = book.get("/api/v1/messages/contacts:export", params={"format": "vcard"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/vcard")
    again = import_file(book, "vcard", exported.text)
    assert (again["imported"], again["skipped"], again["merged"]) == (0, 0, before["meta"]["total"])
    after = book.get("/api/v1/messages/contacts", params={"per_page": 100}).json()
    assert after["meta"]["total"] == before["meta"]["total"]
    assert {c["id"]: c["emails"] for c in after["data"]} == {c["id"]: c["emails"] for c in before["data"]}

    csv_export = book.get("/api/v1/messages/contacts:export", params={"format": "csv"})
    assert csv_export.headers["content-type"].startswith("text/csv")
    reread = import_file(world.adam, "csv", csv_export.text)  # into another mailbox's empty book
    assert reread["skipped"] == 0 and reread["imported"] == before["meta"]["total"]


def test_a_group_is_a_recipient(world: World) -> None:
    member = data(
        post(
            world.olga,
            "/api/v1/messages/contacts",
            {"name": "Adam", "emails": [{"address": world.adam_address}]},
        ),
        201,
    )
    group = data(post(world.olga, "/api/v1/messages/contact-groups", {"name": "Team"}), 201)
    data(
        post(
            world.olga,
            f"/api/v1/messages/contact-groups/{group['id']}/members",
            {"contact_ids": [member["id"]]},
        )
    )
    subject = f"Team note {uuid.uuid4().hex[:8]}"
    data(
        post(
            world.olga,
            "/api/v1/messages/send",
            {"to": f"group:{group['id']}", "subject": subject, "text": "Hi"},
        ),
        201,
    )

    def arrived() -> dict[str, Any] | None:
        listed = data(world.adam.get("/api/v1/messages", params={"subject": subject}))
        return listed[0] if listed else None

    assert wait_for("the group's message", arrived, timeout=TIMEOUT)["subject"] == subject


def test_a_weekly_meeting_expands_across_the_dst_change(world: World) -> None:
    meeting = data(
        post(
            world.adam,
            EVENTS,
            {
                "summary": "Standup",
                "start": "2026-10-19T09:30:00",
                "time_zone": "America/New_York",
                "rrule": "FREQ=WEEKLY;BYDAY=MO",
            },
        ),
        201,
    )
    # New York leaves daylight time on Sunday 1 November 2026: 09:30 local is 13:30Z, then 14:30Z.
    found = data(
        world.adam.get(EVENTS, params={"since": "2026-10-19T00:00:00Z", "before": "2026-11-10T00:00:00Z"})
    )
    mine = [(o["start"], o["start_utc"]) for o in found if o["event_id"] == meeting["id"]]
    assert mine == [
        ("2026-10-19T09:30:00", "2026-10-19T13:30:00Z"),
        ("2026-10-26T09:30:00", "2026-10-26T13:30:00Z"),
        ("2026-11-02T09:30:00", "2026-11-02T14:30:00Z"),
        ("2026-11-09T09:30:00", "2026-11-09T14:30:00Z"),
    ]
    ics = world.adam.get(f"{EVENTS}/{meeting['id']}/ics")
    assert ics.status_code == 200 and "BEGIN:VTIMEZONE" in ics.text and "TZID:America/New_York" in ics.text


def test_an_invitation_over_smtp_is_accepted_and_the_organizer_sees_it(world: World) -> None:
    own = data(
        post(
            world.olga,
            EVENTS,
            {
                "summary": "Project sync",
                "start": "2026-03-16T10:00:00",
                "time_zone": "Europe/Berlin",
                "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=4",
                "organizer": {"email": world.olga_address, "name": "Olga Organizer"},
                "attendees": [{"email": world.adam_address}],
            },
        ),
        201,
    )
    raw = invitation(
        "google-calendar-invite.eml",
        organizer=world.olga_address,
        attendee=world.adam_address,
        uid=own["uid"],
    )
    with smtplib.SMTP("127.0.0.1", world.stack.smtp_port, timeout=30) as smtp:
        smtp.sendmail(world.olga_address, [world.adam_address], raw)

    def invited() -> dict[str, Any] | None:
        found = data(
            world.adam.get(EVENTS, params={"since": "2026-03-01T00:00:00Z", "before": "2026-04-15T00:00:00Z"})
        )
        return next((o for o in found if o["summary"] == "Project sync"), None)

    first = wait_for("the invitation's event", invited, timeout=TIMEOUT)
    event = data(world.adam.get(f"{EVENTS}/{first['event_id']}"))
    assert (event["status"], event["source"], event["uid"]) == ("tentative", "invitation", own["uid"])
    message = data(world.adam.get(f"/api/v1/messages/{event['message_id']}"))
    assert message["subject"].startswith("Invitation: Project sync")

    answered = data(post(world.adam, f"{EVENTS}/{event['id']}/respond", {"response": "accepted"}))
    assert answered["event"]["status"] == "confirmed"

    def applied() -> dict[str, Any] | None:
        organizer_copy = data(world.olga.get(f"{EVENTS}/{own['id']}"))
        statuses = {a["email"]: a["status"] for a in organizer_copy["attendees"]}
        return organizer_copy if statuses.get(world.adam_address) == "accepted" else None

    wait_for("the organizer's event to show the acceptance", applied, timeout=TIMEOUT)
