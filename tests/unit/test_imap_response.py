"""Reading IMAP responses as aioimaplib hands them over (lines as bytes, literals as bytearray, the
tagged completion text last), and writing command arguments."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mailroom.imap import response
from mailroom.imap.commands import quote, search_date, uid_set
from mailroom.imap.response import Part, ResponseError

DONE = b"Completed (0.001 + 0.000 secs)."


def test_fetch_responses_with_literals_and_items_on_either_side_of_the_body() -> None:
    body = bytearray(b'Subject: (unbalanced\r\n\r\n) "quoted" {5}\r\n')
    lines: list[Part] = [
        b'1 FETCH (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 41 BODY[] {41}",
        body,
        b")",
        # Exchange-style: the body first, the rest after the literal.
        b"2 FETCH (BODY[] {3}",
        bytearray(b"abc"),
        b' UID 9 FLAGS () INTERNALDATE " 1-Feb-2025 00:00:00 +0000")',
        # An unsolicited flag update has no body: not a message.
        b"3 FETCH (FLAGS (\\Seen))",
        DONE,
    ]
    items, problems = response.parse_fetch(lines)
    assert problems == []
    messages = [response.fetched_message(item) for item in items]
    assert messages[2] is None
    first, second = messages[0], messages[1]
    assert first is not None
    assert second is not None
    assert (first.uid, first.raw, first.flags, first.size) == (
        7,
        bytes(body),
        frozenset({"\\Seen", "$Forwarded"}),
        41,
    )
    assert first.internal_date == datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    assert (second.uid, second.raw, second.flags, second.size) == (9, b"abc", frozenset(), 3)
    assert second.internal_date == datetime(2025, 2, 1, tzinfo=UTC)


def test_a_malformed_fetch_response_is_reported_and_the_others_kept() -> None:
    lines: list[Part] = [
        b"1 FETCH (UID 1 BODY[] {1}",
        bytearray(b"x"),
        b")",
        b'2 FETCH (UID 2 BODY[] "unterminated)',
        DONE,
    ]
    items, problems = response.parse_fetch(lines)
    assert len(items) == 1
    assert response.fetched_message(items[0]) is not None
    assert len(problems) == 1
    assert "unterminated quoted string" in problems[0]


def test_a_body_sent_as_a_quoted_string_or_nil() -> None:
    items, _ = response.parse_fetch(
        [b'1 FETCH (UID 4 BODY[] "a \\"b\\"")', b"2 FETCH (UID 5 BODY[] NIL)", DONE]
    )
    quoted, missing = (response.fetched_message(item) for item in items)
    assert quoted is not None
    assert quoted.raw == b'a "b"'
    assert missing is None


def test_list_responses_with_quoted_literal_and_nil_names() -> None:
    lines: list[Part] = [
        b'(\\HasNoChildren \\Sent) "/" Sent',
        b'(\\HasChildren) "." "Say \\"hi\\" \\\\ back"',
        b'() "/" {10}',
        bytearray(b"*** Urgent"),
        b"(\\Noselect) NIL Public",
        b'(\\HasNoChildren) "/" "Sub" ("CHILDINFO" ("SUBSCRIBED"))',
        DONE,
    ]
    entries = response.parse_list(lines)
    assert [(e.raw_name, e.delimiter) for e in entries] == [
        ("Sent", "/"),
        ('Say "hi" \\ back', "."),
        ("*** Urgent", "/"),
        ("Public", None),
        ("Sub", "/"),
    ]
    assert entries[0].attributes == {"\\HasNoChildren", "\\Sent"}


def test_status_search_and_select_responses() -> None:
    assert response.parse_status([b'"Entw&APw-rfe" (MESSAGES 12 UIDVALIDITY 1700000000)', DONE]) == {
        "MESSAGES": 12,
        "UIDVALIDITY": 1700000000,
    }
    assert response.parse_search([b"4 8 15 16 23 42", DONE]) == [4, 8, 15, 16, 23, 42]
    assert response.parse_search([b"", DONE]) == []
    select = [
        b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"OK [PERMANENTFLAGS ()] Read-only mailbox.",
        b"172 EXISTS",
        b"0 RECENT",
        b"OK [UIDVALIDITY 3857529045] UIDs valid",
        b"OK [UIDNEXT 4392] Predicted next UID",
        b"[READ-ONLY] Examine completed (0.001 + 0.000 secs).",
    ]
    assert response.parse_select(select) == (3857529045, 172)
    assert response.parse_select([b"[READ-ONLY] done"]) == (None, None)


@pytest.mark.parametrize(
    "lines",
    [
        [b"(\\HasNoChildren", DONE],  # unbalanced
        [b'() "/" {5}', DONE],  # a literal announced, none sent
        [b"x)", DONE],
    ],
)
def test_malformed_responses_are_refused(lines: list[bytes]) -> None:
    with pytest.raises(ResponseError):
        response.parse_list(lines)


def test_sections_with_spaces_stay_one_atom() -> None:
    assert response.tokenize([b"BODY[HEADER.FIELDS (SUBJECT FROM)] {3}", bytearray(b"abc")]) == [
        "BODY[HEADER.FIELDS (SUBJECT FROM)]",
        b"abc",
    ]


@pytest.mark.parametrize("value", ["32-Jan-2024 00:00:00 +0000", "01-Foo-2024 00:00:00 +0000", "yesterday"])
def test_impossible_internal_dates_are_none(value: str) -> None:
    assert response.parse_internaldate(value) is None


def test_uid_sets_are_compressed_into_ranges() -> None:
    assert uid_set([7, 1, 2, 3, 5, 8, 3]) == "1:3,5,7:8"
    assert uid_set([42]) == "42"
    assert uid_set(range(1, 201)) == "1:200"
    with pytest.raises(ValueError, match="empty"):
        uid_set([])
    with pytest.raises(ValueError, match="start at 1"):
        uid_set([0, 1])


def test_quoting_and_search_dates() -> None:
    assert quote('Say "hi" \\ back') == '"Say \\"hi\\" \\\\ back"'
    assert quote("Entw&APw-rfe") == '"Entw&APw-rfe"'
    assert search_date(date(2025, 2, 1)) == "1-Feb-2025"
    assert search_date(date(2024, 12, 31)) == "31-Dec-2024"
