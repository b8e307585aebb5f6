"""Contacts and contact groups through ContactsFunction (and a group send through SendFunction),
as API Gateway invokes them, under moto: CRUD with address uniqueness, prefix search without a
Scan, imports of what Apple Contacts, Google Contacts, Outlook and Thunderbird export (reported
per record, a malformed card skipped), export and re-import round trips, groups and group recipients."""

from __future__ import annotations

import email
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import message_token, send, sent_messages

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contacts"
_keys = itertools.count()


@dataclass
class Book:
    org: NewOrganization
    mailbox: dict[str, Any]
    token: str


@pytest.fixture
def book(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[Book]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "owner", name="Owner")
    yield Book(org, mailbox, message_token(org, mailbox["id"]))
    get_settings.cache_clear()


def api(book: Book | str, method: str, path: str, body: Any = None, **query: Any) -> Result:
    token = book.token if isinstance(book, Book) else book
    headers = {"Idempotency-Key": f"c-{next(_keys)}"} if method in ("POST", "PUT") else None
    return call("contacts", method, path, token=token, json_body=body, headers=headers, query=query or None)


def data(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:1500])
    return result.json()["data"]


def error(result: Result, status: int, code: str) -> dict[str, Any]:
    assert (result.status, result.error_code) == (status, code), (result.status, result.body[:1500])
    found: dict[str, Any] = result.json()["error"]
    return found


def create(book: Book, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = data(api(book, "POST", "/api/v1/messages/contacts", fields), 201)
    return created


def search(book: Book, q: str, **query: Any) -> list[str]:
    return [c["id"] for c in data(api(book, "GET", "/api/v1/messages/contacts", q=q, **query))]


def import_file(book: Book, fmt: str, name: str) -> dict[str, Any]:
    content = (FIXTURES / name).read_text(encoding="utf-8-sig")
    report: dict[str, Any] = data(
        api(book, "POST", "/api/v1/messages/contacts:import", {"format": fmt, "content": content})
    )
    return report


def test_create_read_update_delete_with_unique_addresses(book: Book) -> None:
    ada = create(
        book,
        name="Ada Lovelace",
        given_name="Ada",
        family_name="Lovelace",
        emails=[{"address": "Ada@Analytical.Example.com", "label": "home"}],
        phones=[{"number": "+44 20 7946 0001"}],
        birthday="--12-10",
        addresses=[{"city": "London", "country": "UK"}],
        photo_url="https://example.org/ada.jpg",
    )
    assert ada["emails"] == [{"address": "ada@analytical.example.com", "label": "home"}]
    assert ada["birthday"] == "--12-10" and ada["groups"] == []
    path = f"/api/v1/messages/contacts/{ada['id']}"
    assert data(api(book, "GET", path))["name"] == "Ada Lovelace"

    # An address is one contact's: a second contact naming it is a conflict, whatever its case.
    taken = api(
        book,
        "POST",
        "/api/v1/messages/contacts",
        {"name": "X", "emails": [{"address": "ADA@analytical.example.com"}]},
    )
    error(taken, 409, "contact_address_taken")

    changed = data(
        api(book, "PATCH", path, {"title": "Countess", "emails": [{"address": "countess@example.org"}]})
    )
    assert changed["title"] == "Countess" and changed["phones"] == [
        {"number": "+44 20 7946 0001", "label": None}
    ]
    # The old address is free again; the new one is taken.
    create(book, name="Other", emails=[{"address": "ada@analytical.example.com"}])
    error(
        api(book, "POST", "/api/v1/messages/contacts", {"emails": [{"address": "countess@example.org"}]}),
        409,
        "contact_address_taken",
    )

    assert api(book, "DELETE", path).status == 204
    error(api(book, "GET", path), 404, "not_found")
    create(book, name="Again", emails=[{"address": "countess@example.org"}])
    listing = api(book, "GET", "/api/v1/messages/contacts").json()
    assert listing["meta"]["total"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A", "emails": [{"address": "not an address"}]}, "emails.0.address"),
        ({"name": "A", "birthday": "1999-02-30"}, "birthday"),
        ({"name": "A", "photo_url": "javascript:alert(1)"}, "photo_url"),
        ({"name": "A\u0007B"}, "name"),
        ({"notes": "only notes"}, "name"),
    ],
)
def test_bad_fields_are_422_naming_the_field(book: Book, body: dict[str, Any], field: str) -> None:
    found = error(api(book, "POST", "/api/v1/messages/contacts", body), 422, "validation_error")
    assert found["fields"][0]["field"] == field, found


def test_prefix_search_by_name_word_address_and_organization(book: Book) -> None:
    zoe = create(
        book, name="Zoë Ångström", emails=[{"address": "zoe@physics.example.com"}], organization="CERN"
    )
    zack = create(book, name="Zack Zoeller", emails=[{"address": "zack@example.org"}])
    other = create(book, name="Bob", emails=[{"address": "bob@example.org"}])
    assert search(book, "zoe") == [zoe["id"], zack["id"]]  # "zoe" (Zoë) before "zoeller"; once each
    assert search(book, "ang") == [zoe["id"]]  # a word of the name, accents ignored
    assert search(book, "ZACK@") == [zack["id"]]  # an address, case ignored
    assert search(book, "cern") == [zoe["id"]]
    assert search(book, "bo") == [other["id"]]
    assert search(book, "nobody") == []
    # Pages of one follow cursors forward and list each contact once.
    seen, cursor = [], None
    while True:
        query: dict[str, Any] = {"q": "z", "per_page": 1}
        if cursor:
            query["cursor"] = cursor
        page = api(book, "GET", "/api/v1/messages/contacts", **query).json()
        seen += [c["id"] for c in page["data"]]
        link = page["links"]["next"]
        if link is None:
            break
        cursor = link.split("cursor=")[1].split("&")[0]
    assert seen == [zack["id"], zoe["id"]]  # zack@... < zoe...; each once
    # A changed name is found by its new terms only.
    api(book, "PATCH", f"/api/v1/messages/contacts/{zack['id']}", {"name": "Zachary"})
    assert search(book, "zoel") == []
    assert search(book, "zachary") == [zack["id"]]


def test_search_never_scans(book: Book, monkeypatch: pytest.MonkeyPatch) -> None:
    create(book, name="Ann", emails=[{"address": "ann@example.org"}])
    client = aws.client("dynamodb")

    def refuse(**_kwargs: Any) -> None:
        raise AssertionError("a Scan on a request path")

    monkeypatch.setattr(client, "scan", refuse, raising=False)
    assert len(search(book, "an")) == 1


def test_apple_google_and_outlook_exports_import_with_a_report(book: Book) -> None:
    apple = import_file(book, "vcard", "apple-contacts.vcf")
    assert (apple["imported"], apple["merged"], apple["skipped"]) == (3, 0, 1)
    broken = apple["results"][2]
    assert broken["status"] == "skipped" and "base64" in broken["reason"]  # the broken PHOTO only
    johnny = data(api(book, "GET", f"/api/v1/messages/contacts/{apple['results'][0]['contact_id']}"))
    assert johnny["name"] == "Dr. Johnny Appleseed" and johnny["organization"] == "Apple Inc."
    assert johnny["phones"][1] == {"number": "+1 408 555 0199", "label": "other"}  # Apple's X-ABLabel
    assert johnny["notes"] == "Met at WWDC.\nLikes apples, pears."
    ada = data(api(book, "GET", f"/api/v1/messages/contacts/{apple['results'][1]['contact_id']}"))
    assert ada["birthday"] == "--12-10"  # Apple's 1604 "no year"

    # Google's vCard: Ada again (her address) merges and adds her phone.
    google = import_file(book, "vcard", "google-contacts.vcf")
    assert [r["status"] for r in google["results"]] == ["imported", "merged"]
    merged = data(api(book, "GET", f"/api/v1/messages/contacts/{ada['id']}"))
    assert merged["phones"] == [{"number": "+44 20 7946 0001", "label": "home"}]
    assert google["results"][1]["contact_id"] == ada["id"]

    # Google's CSV: Grace (GRACE@ in capitals) merges; a phone-only row imports; a bad row is skipped.
    csv_report = import_file(book, "csv", "google-contacts.csv")
    assert [r["status"] for r in csv_report["results"]] == ["imported", "merged", "imported", "skipped"]
    assert "emails.0.address" in csv_report["results"][3]["reason"]
    robert = data(api(book, "GET", f"/api/v1/messages/contacts/{csv_report['results'][0]['contact_id']}"))
    assert [e["address"] for e in robert["emails"]] == ["rob@acme.example.com", "bob@gmail.example.com"]
    assert robert["birthday"] == "--03-07" and robert["notes"] == "Two\nlines"

    outlook = import_file(book, "csv", "outlook-contacts.csv")
    assert [r["status"] for r in outlook["results"]] == ["imported", "imported"]
    linus = data(api(book, "GET", f"/api/v1/messages/contacts/{outlook['results'][0]['contact_id']}"))
    assert (linus["birthday"], linus["title"], linus["organization"]) == (
        "1969-12-28",
        "Fellow",
        "Linux Foundation",
    )
    assert linus["addresses"][0]["city"] == "Portland"
    assert search(book, "hamil") == [outlook["results"][1]["contact_id"]]


def test_a_thunderbird_vcard_4_export_imports(book: Book) -> None:
    # Thunderbird (115) keeps and exports vCard 4.0: PREF=1, VALUE=DATE birthdays and VALUE=TEXT
    # numbers, --MMDD without a year, an embedded photo as a data: URI (not kept).
    report = import_file(book, "vcard", "thunderbird-contacts.vcf")
    assert (report["imported"], report["merged"], report["skipped"]) == (2, 0, 0)
    grace = data(api(book, "GET", f"/api/v1/messages/contacts/{report['results'][0]['contact_id']}"))
    assert [(e["address"], e["label"]) for e in grace["emails"]] == [
        ("grace@navy.example.mil", None),
        ("ghopper@univac.example.com", "work"),
    ]
    assert grace["phones"] == [
        {"number": "+1 202 555 0147", "label": "cell"},
        {"number": "+1 202 555 0148", "label": "work"},
    ]
    assert (grace["birthday"], grace["nickname"], grace["organization"], grace["title"]) == (
        "1906-12-09",
        "Amazing Grace",
        "US Navy",
        "Rear Admiral",
    )
    assert grace["addresses"][0]["city"] == "Washington" and grace["photo_url"] is None
    assert grace["notes"] == "Invented the first compiler.\nFound the first bug."
    alan = data(api(book, "GET", f"/api/v1/messages/contacts/{report['results'][1]['contact_id']}"))
    assert alan["birthday"] == "--06-23"
    # Its UIDs are Thunderbird's, not contact ids: importing it again merges by address.
    again = import_file(book, "vcard", "thunderbird-contacts.vcf")
    assert [r["status"] for r in again["results"]] == ["merged", "merged"]


def test_import_refuses_what_is_not_a_contacts_file(book: Book) -> None:
    path = "/api/v1/messages/contacts:import"
    error(api(book, "POST", path, {"format": "vcard", "content": "hello"}), 422, "invalid_vcard")
    error(api(book, "POST", path, {"format": "csv", "content": "a,b\n1,2\n"}), 422, "unknown_csv_layout")
    error(api(book, "POST", path, {"format": "ics", "content": "x"}), 422, "validation_error")


def test_records_not_written_in_time_or_refused_by_aws_are_reported_to_send_again(
    book: Book, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailroom.services.contact_import as contact_import
    import mailroom.store.contacts as contact_store
    from mailroom.store.errors import Throttled

    # Out of time before writing: every record is reported, none written, the request succeeds.
    with monkeypatch.context() as patch:
        patch.setattr(contact_import, "TIME_BUDGET_SECONDS", -1.0)
        late = import_file(book, "vcard", "thunderbird-contacts.vcf")
    assert [(r["status"], r["reason"]) for r in late["results"]] == [
        ("skipped", contact_import.OUT_OF_TIME)
    ] * 2
    assert data(api(book, "GET", "/api/v1/messages/contacts")) == []

    # DynamoDB throttles one write past botocore's retries: that record only is to be sent again.
    real = contact_store.create

    def throttled(*args: Any, **kwargs: Any) -> Any:
        if "alan@bletchley.example.org" in kwargs["addresses"]:
            raise Throttled("ProvisionedThroughputExceededException")
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(contact_store, "create", throttled)
        report = import_file(book, "vcard", "thunderbird-contacts.vcf")
    assert [r["status"] for r in report["results"]] == ["imported", "skipped"]
    assert "Throttled" in report["results"][1]["reason"] and "again" in report["results"][1]["reason"]
    again = import_file(book, "vcard", "thunderbird-contacts.vcf")
    assert [r["status"] for r in again["results"]] == ["merged", "imported"]


def test_records_of_one_file_sharing_an_address_become_one_contact(book: Book) -> None:
    content = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A One\r\nEMAIL:shared@example.org\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A Two\r\nEMAIL:SHARED@example.org\r\n"
        "TEL:+1 555 0100\r\nEND:VCARD\r\n"
    )
    report = data(
        api(book, "POST", "/api/v1/messages/contacts:import", {"format": "vcard", "content": content})
    )
    assert [r["status"] for r in report["results"]] == ["imported", "merged"]
    contact = data(api(book, "GET", f"/api/v1/messages/contacts/{report['results'][0]['contact_id']}"))
    assert contact["name"] == "A One" and contact["phones"][0]["number"] == "+1 555 0100"


@pytest.mark.parametrize("fmt", ["vcard", "csv"])
def test_export_then_reimport_round_trips(book: Book, fmt: str) -> None:
    import_file(book, "vcard", "apple-contacts.vcf")
    import_file(book, "csv", "outlook-contacts.csv")
    create(book, name="Phone Only", phones=[{"number": "+1 555 0199"}])
    before = api(book, "GET", "/api/v1/messages/contacts", per_page=100).json()["data"]
    exported = api(book, "GET", "/api/v1/messages/contacts:export", format=fmt)
    assert exported.status == 200
    assert exported.headers["content-type"].startswith("text/vcard" if fmt == "vcard" else "text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    text = exported.body.decode()
    report = data(api(book, "POST", "/api/v1/messages/contacts:import", {"format": fmt, "content": text}))
    assert report["imported"] == (0 if fmt == "vcard" else 1)  # CSV has no UID: the phone-only contact
    assert report["skipped"] == 0
    after = api(book, "GET", "/api/v1/messages/contacts", per_page=100).json()["data"]
    unchanged = {c["id"]: c for c in after}
    for contact in before:
        if fmt == "csv" and not contact["emails"]:
            continue
        kept = unchanged[contact["id"]]
        assert kept["emails"] == contact["emails"] and kept["name"] == contact["name"]
        assert kept["phones"] == contact["phones"] and kept["birthday"] == contact["birthday"]


def test_groups_and_their_members(book: Book) -> None:
    a = create(book, name="A", emails=[{"address": "a@example.org"}])
    b = create(book, name="B", emails=[{"address": "b@example.org"}])
    group = data(api(book, "POST", "/api/v1/messages/contact-groups", {"name": "Team"}), 201)
    members = f"/api/v1/messages/contact-groups/{group['id']}/members"
    added = data(api(book, "POST", members, {"contact_ids": [a["id"], b["id"], a["id"]]}))
    assert added["member_ids"] == sorted([a["id"], b["id"]]) and added["member_count"] == 2
    assert data(api(book, "GET", f"/api/v1/messages/contacts/{a['id']}"))["groups"] == [group["id"]]
    unknown = "ct_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    error(api(book, "POST", members, {"contact_ids": [unknown]}), 422, "unknown_contact")

    renamed = data(api(book, "PATCH", f"/api/v1/messages/contact-groups/{group['id']}", {"name": "Core"}))
    assert renamed["name"] == "Core" and renamed["member_count"] == 2

    # Deleting a contact takes it out of its groups.
    api(book, "DELETE", f"/api/v1/messages/contacts/{b['id']}")
    assert data(api(book, "GET", f"/api/v1/messages/contact-groups/{group['id']}"))["member_ids"] == [a["id"]]
    removed = call("contacts", "DELETE", members, token=book.token, json_body={"contact_ids": [a["id"]]})
    assert data(removed)["member_ids"] == []
    assert data(api(book, "GET", f"/api/v1/messages/contacts/{a['id']}"))["groups"] == []

    assert api(book, "DELETE", f"/api/v1/messages/contact-groups/{group['id']}").status == 204
    error(api(book, "GET", f"/api/v1/messages/contact-groups/{group['id']}"), 404, "not_found")
    assert api(book, "GET", "/api/v1/messages/contact-groups").json()["meta"]["total"] == 0


def test_a_group_is_a_recipient_and_the_recipient_limit_holds(book: Book) -> None:
    cards = "".join(
        f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Member {n}\r\nEMAIL:m{n}@example.org\r\nEND:VCARD\r\n"
        for n in range(51)
    )
    report = data(
        api(book, "POST", "/api/v1/messages/contacts:import", {"format": "vcard", "content": cards})
    )
    ids_ = [r["contact_id"] for r in report["results"]]
    small = data(api(book, "POST", "/api/v1/messages/contact-groups", {"name": "Small"}), 201)
    api(book, "POST", f"/api/v1/messages/contact-groups/{small['id']}/members", {"contact_ids": ids_[:3]})
    sent = send(
        book.token, {"to": [f"group:{small['id']}"], "cc": "carol@example.net", "subject": "Hi", "text": "Hi"}
    )
    assert sent.status == 201, sent.body
    raw = sent_messages()[-1]
    message = email.message_from_string(raw.raw_data, policy=policy.default)
    assert sorted(a.addr_spec for a in message["To"].addresses) == [
        "m0@example.org",
        "m1@example.org",
        "m2@example.org",
    ]
    assert "Member 0" in str(message["To"])

    big = data(api(book, "POST", "/api/v1/messages/contact-groups", {"name": "Big"}), 201)
    for start in (0, 50):
        api(
            book,
            "POST",
            f"/api/v1/messages/contact-groups/{big['id']}/members",
            {"contact_ids": ids_[start : start + 50]},
        )
    refused = send(book.token, {"to": [f"group:{big['id']}"], "subject": "Hi", "text": "Hi"})
    assert (refused.status, refused.error_code) == (422, "too_many_recipients")
    assert "'Big' has 51" in refused.json()["error"]["message"]
    unknown = send(book.token, {"to": "group:cg_01ARZ3NDEKTSV4RRFFQ69G5FAV", "subject": "Hi", "text": "Hi"})
    assert (unknown.status, unknown.error_code) == (422, "unknown_contact_group")


def test_another_mailbox_never_sees_the_contacts(book: Book) -> None:
    contact = create(book, name="Private", emails=[{"address": "private@example.org"}])
    other = new_mailbox(book.org, "other")
    token = message_token(book.org, other["id"])
    error(api(token, "GET", f"/api/v1/messages/contacts/{contact['id']}"), 404, "not_found")
    assert data(api(token, "GET", "/api/v1/messages/contacts", q="priv")) == []
    # The same address is free in another mailbox's book.
    assert (
        api(
            token, "POST", "/api/v1/messages/contacts", {"emails": [{"address": "private@example.org"}]}
        ).status
        == 201
    )
    readonly = message_token(book.org, book.mailbox["id"], ["messages:read"])
    assert api(readonly, "POST", "/api/v1/messages/contacts", {"name": "X"}).status == 403
