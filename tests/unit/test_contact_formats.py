"""The pure side of contacts (``domain.contacts``, ``domain.vcard``, ``domain.contacts_csv``): a file
is cut into records before any is parsed, so no malformed card stops the others (a property over
hostile text); CSV layouts; spreadsheet-safe cells that read back as written; birthdays, merges and
search terms."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.domain import contacts_csv, vcard
from mailroom.domain.contacts import (
    Contact,
    Email,
    InvalidContact,
    Phone,
    first_match,
    merge,
    normalize,
    normalize_birthday,
    search_prefix,
    search_terms,
)
from tests.support.fuzzing import fuzz

GOOD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Card {n}\r\nEMAIL:card{n}@example.org\r\nEND:VCARD\r\n"


def test_a_broken_card_is_reported_at_its_position_and_the_next_ones_are_read() -> None:
    text = (
        GOOD.format(n=1)
        + "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\n"
        + "PHOTO;ENCODING=b;TYPE=JPEG:!!!not base64!!!\r\nEND:VCARD\r\n"
        + "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Never ends\r\n"  # the next BEGIN starts the next card
        + GOOD.format(n=4)
    )
    cards = list(vcard.read_cards(text))
    assert [c.position for c in cards] == [1, 2, 3, 4]
    assert cards[0].contact is not None and cards[0].contact.name == "Card 1"
    assert cards[1].contact is None and cards[1].error and "not a readable vCard" in cards[1].error
    assert cards[2].contact is None and cards[2].error == "the card has no END:VCARD"
    assert cards[3].contact is not None and cards[3].contact.email_addresses == ["card4@example.org"]


hostile_line = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "BEGIN:VCARD",
            "END:VCARD",
            "VERSION:4.0",
            "N:;;;;;;;;",
            "EMAIL;TYPE=:",
            "BDAY:99999999",
            "ADR:;;",
            "PHOTO;ENCODING=b:%%%",
            " folded continuation",
            "item1.X-ABLabel:_$!<Mobile>!$_",
            "TEL;VALUE=uri:tel:+1-555",
        ]
    ),
)


@fuzz(200)
@given(
    noise=st.lists(st.lists(hostile_line, max_size=6), min_size=4, max_size=4),
    good=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_hostile_text_between_good_cards_never_loses_them(noise: list[list[str]], good: list[bool]) -> None:
    """Whatever stands around them, the well-formed cards are read, and reading never raises."""
    pieces = ["\r\n".join(noise[0])]
    for n, keep in enumerate(good):
        if keep:
            pieces.append(GOOD.format(n=n))
        pieces.append("\r\n".join(noise[n + 1]))
    cards = list(vcard.read_cards("\r\n".join(pieces)))
    found = {c.contact.name for c in cards if c.contact is not None}
    assert {f"Card {n}" for n, keep in enumerate(good) if keep} <= found
    assert [c.position for c in cards] == list(range(1, len(cards) + 1))


@pytest.mark.parametrize(
    ("header", "layout"),
    [
        ("First Name,Last Name,E-mail 1 - Label,E-mail 1 - Value", "google"),
        ("Given Name,Family Name,Organization Name", "google"),
        ('"First Name","Last Name","E-mail Address","Job Title"', "outlook"),
        ("Name,Email,Phone", "plain"),
        ("full name,emails", "plain"),
    ],
)
def test_csv_layouts_are_told_apart_by_their_header(header: str, layout: str) -> None:
    assert contacts_csv.layout_of(next(csv.reader([header]))) == layout


def test_an_unknown_header_names_the_layouts_it_could_be() -> None:
    with pytest.raises(contacts_csv.UnknownLayout, match="Google Contacts or Outlook"):
        list(contacts_csv.read_rows("a,b\r\n1,2\r\n"))


def test_cells_a_spreadsheet_would_run_are_quoted_and_read_back_as_written() -> None:
    tricky = Contact(
        name='=HYPERLINK("http://x.example")',
        emails=(Email("a@example.org", "work"), Email("b@example.org")),
        phones=(Phone("+1 415 555 0134", "mobile"),),
        notes="-2+3\nsecond line",
        organization="@Acme",
    )
    text = "".join(contacts_csv.write_csv([tricky]))
    assert "'=HYPERLINK" in text and "'-2+3" in text and "'@Acme" in text
    assert ",+1 415 555 0134," in text  # an international number is data, not a formula
    (row,) = contacts_csv.read_rows(text)
    assert row.contact is not None
    assert (row.contact.name, row.contact.notes, row.contact.organization) == (
        tricky.name,
        tricky.notes,
        tricky.organization,
    )
    assert row.contact.emails == (Email("a@example.org", "work"), Email("b@example.org", "other"))
    assert row.contact.phones == tricky.phones


def test_a_vcard_export_reads_back_to_the_same_contact() -> None:
    contact = normalize(
        Contact(
            name="José Núñez",
            given_name="José",
            family_name="Núñez",
            emails=(Email("Jose@Example.org", "home"),),
            phones=(Phone("+34 600 000 000", "cell"),),
            birthday="--02-29",
            notes="Line one\nline two; with, punctuation",
            photo_url="https://example.org/p.jpg",
        )
    )
    (card,) = vcard.read_cards("".join(vcard.write_cards([("ct_01JQ0000000000000000000000", contact)])))
    assert card.uid == "urn:mailroom:ct_01JQ0000000000000000000000"
    assert card.contact is not None and normalize(card.contact) == contact


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("1985-04-12", "1985-04-12"),
        ("19850412", "1985-04-12"),
        ("1985-04-12T00:00:00Z", "1985-04-12"),
        ("--0412", "--04-12"),
        ("--04-12", "--04-12"),
        ("1604-12-10", "--12-10"),  # Apple's year for "no year"
        ("", None),
    ],
)
def test_birthdays(raw: str, stored: str | None) -> None:
    assert normalize_birthday("birthday", raw) == stored


@pytest.mark.parametrize("raw", ["2023-02-29", "1985-13-01", "12/04/1985", "--0432"])
def test_impossible_birthdays_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidContact) as raised:
        normalize_birthday("birthday", raw)
    assert raised.value.field == "birthday"


def test_a_merge_keeps_what_the_contact_says_and_adds_what_it_lacks() -> None:
    existing = Contact(
        name="Ada Lovelace", emails=(Email("ada@example.org"),), phones=(Phone("+44 20 7946 0001"),)
    )
    incoming = Contact(
        name="Augusta Ada King",
        title="Countess",
        emails=(Email("ada@example.org", "home"), Email("countess@example.org")),
        phones=(Phone("+44 (20) 7946-0001"), Phone("+44 20 7946 0002")),
    )
    merged = merge(existing, incoming)
    assert (merged.name, merged.title) == ("Ada Lovelace", "Countess")
    assert merged.email_addresses == ["ada@example.org", "countess@example.org"]
    assert [p.number for p in merged.phones] == ["+44 20 7946 0001", "+44 20 7946 0002"]  # same digits: one


def test_search_terms_ignore_case_and_accents_and_find_words() -> None:
    contact = normalize(
        Contact(name="Zoë Saldaña-Núñez", emails=(Email("zoe@example.org"),), organization="Ünited Artists")
    )
    terms = search_terms(contact)
    for query in ("zoe", "ZOË S", "salda", "nunez", "zoe@ex", "united"):
        assert first_match(terms, search_prefix(query)) is not None, query
    assert first_match(terms, search_prefix("artists")) is None  # the organization as a whole only
