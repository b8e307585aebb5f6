"""What makes an imported message the same as one the mailbox has (domain/duplicates.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.domain.duplicates import body_digest, digest, fingerprint, identity_headers, split

BASE = (
    b"From: Ann <ann@example.net>\r\nTo: owner@example.com\r\nSubject: Weekly report\r\n"
    b"Date: Mon, 6 Jan 2025 10:00:00 +0000\r\nMessage-ID: <shared@example.net>\r\n\r\nNumbers: 1\r\n"
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Numbers: 1", b"Numbers: 2"),  # the body, at the same size
        (b"Mon, 6 Jan", b"Tue, 7 Jan"),  # the Date
        (b"Ann <ann@", b"Bob <ann@"),  # the From
        (b"Weekly report", b"Weekly  Report"),  # the Subject
        (b"<shared@example.net>", b"<other@example.net>"),  # the Message-ID
    ],
)
def test_a_message_that_differs_in_an_identity_header_or_its_body_is_distinct(old: bytes, new: bytes) -> None:
    assert BASE.count(old) == 1
    assert fingerprint(BASE.replace(old, new)) != fingerprint(BASE)


@pytest.mark.parametrize(
    "copy",
    [
        b"Received: from mx.example.org by imap.example.net; Mon, 6 Jan 2025 10:00:01 +0000\r\n" + BASE,
        BASE.replace(b"To: owner@example.com", b"To: someone-else@example.com\r\nX-Spam-Score: 0"),
        BASE.replace(b"\r\n", b"\n"),  # stored with LF line ends
        BASE + b"\r\n\r\n",  # trailing empty lines
        BASE.replace(b"Subject: Weekly report", b"Subject: Weekly\r\n report"),  # folded
    ],
)
def test_the_same_message_as_another_server_kept_it_is_the_same(copy: bytes) -> None:
    assert fingerprint(copy) == fingerprint(BASE)
    assert digest(copy) != digest(BASE)  # the bytes themselves differ


def test_identity_headers_are_taken_as_written() -> None:
    header_block, body = split(BASE)
    assert identity_headers(header_block) == (
        "<shared@example.net>",
        "Mon, 6 Jan 2025 10:00:00 +0000",
        "Ann <ann@example.net>",
        "Weekly report",
    )
    assert body == b"Numbers: 1\r\n"
    encoded = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: J\xc3\xb6rg <j@example.de>\r\n"
    assert identity_headers(encoded)[2:] == ("J\udcc3\udcb6rg <j@example.de>", "=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
    assert identity_headers(b"X-Other: 1") == ("", "", "", "")


def test_a_message_without_a_body_or_headers() -> None:
    assert split(b"Subject: only headers") == (b"Subject: only headers", b"")
    assert fingerprint(b"Subject: a") != fingerprint(b"Subject: b")
    assert fingerprint(b"") == fingerprint(b"\r\n\r\n")


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_bodies_are_equal_exactly_when_their_lines_are(first: bytes, second: bytes) -> None:
    def lines(body: bytes) -> bytes:
        return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n")

    assert (body_digest(first) == body_digest(second)) == (lines(first) == lines(second))


def test_raw_8bit_headers_that_differ_stay_distinct() -> None:
    joerg = BASE.replace(b"From: Ann", b"From: J\xc3\xb6rg")
    juerg = BASE.replace(b"From: Ann", b"From: J\xc3\xbcrg")
    assert fingerprint(joerg) != fingerprint(juerg)
    assert fingerprint(joerg) == fingerprint(joerg.replace(b"\r\n", b"\n"))
