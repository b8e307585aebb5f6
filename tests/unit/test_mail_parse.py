"""Parsing with limits: every corpus message is parsed or refused with a reason, never a crash."""

from __future__ import annotations

import pytest

from mailroom.mail.limits import ParseLimits
from mailroom.mail.parse import Unparseable, parse
from tests.support.mail_corpus import hostile_messages, stdlib_messages


@pytest.mark.parametrize(("name", "raw"), stdlib_messages(), ids=[n for n, _ in stdlib_messages()])
def test_every_stdlib_message_parses_or_is_refused_with_a_reason(name: str, raw: bytes) -> None:
    try:
        parsed = parse(raw)
    except Unparseable as refused:
        assert refused.reason in {
            "too_deep",
            "too_many_parts",
            "header_too_large",
            "too_large",
            "unparseable",
        }
        return
    assert parsed.size == len(raw)
    assert "\n" not in parsed.subject and "\r" not in parsed.subject
    assert all(a.size == len(a.payload) for a in parsed.attachments)


@pytest.mark.parametrize(
    ("name", "raw", "reason"), hostile_messages(), ids=[n for n, _, _ in hostile_messages()]
)
def test_hostile_messages(name: str, raw: bytes, reason: str | None) -> None:
    if reason is None:
        parsed = parse(raw)
        assert "\n" not in parsed.subject and "\r" not in parsed.subject
    else:
        with pytest.raises(Unparseable) as refused:
            parse(raw)
        assert refused.value.reason == reason


def test_an_encoded_newline_cannot_smuggle_a_header() -> None:
    raw = b"From: a@example.net\r\nSubject: =?utf-8?q?hi=0D=0ABcc:_evil@example.org?=\r\n\r\nbody"
    assert parse(raw).subject == "hi Bcc: evil@example.org"


def test_fields_of_a_multipart_message() -> None:
    raw = (
        b'From: Ann Example <Ann@Example.COM>\r\nTo: b@example.org, "C, D" <c@example.org>\r\n'
        b"Cc: e@example.org\r\nReply-To: r@example.org\r\nSubject: Report\r\nMessage-ID: <m1@example.com>\r\n"
        b"In-Reply-To: <p@example.com>\r\nReferences: <r0@example.com> <p@example.com>\r\n"
        b"Date: Wed, 15 Jan 2025 10:30:00 +0100\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello  there,\r\nsee the file.\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>\r\n--a--\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n"
        b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n"
    )
    parsed = parse(raw)
    assert parsed.from_ == "Ann Example <Ann@Example.COM>"
    assert parsed.from_address == "ann@example.com"
    assert parsed.to == ["b@example.org", '"C, D" <c@example.org>']
    assert (parsed.cc, parsed.reply_to) == (["e@example.org"], ["r@example.org"])
    assert (parsed.message_id, parsed.in_reply_to) == ("<m1@example.com>", "<p@example.com>")
    assert parsed.references == ["<r0@example.com>", "<p@example.com>"]
    assert parsed.date == "2025-01-15T09:30:00.000Z"
    assert parsed.text is not None and parsed.text.startswith("Hello  there,")
    assert parsed.html == "<p>Hello <b>there</b></p>"
    assert parsed.preview == "Hello there, see the file."
    assert [(a.index, a.filename, a.disposition, a.content_id) for a in parsed.attachments] == [
        (0, None, "inline", "logo@x"),
        (1, "r.pdf", "attachment", None),
    ]
    assert parsed.attachments[1].payload == b"%PDF-1.4"
    assert parsed.has_attachments


def test_limits_are_configurable() -> None:
    with pytest.raises(Unparseable) as refused:
        parse(b"Subject: x\r\n\r\n" + b"a" * 100, ParseLimits(max_message_bytes=50))
    assert refused.value.reason == "too_large"


def test_html_only_message_gets_a_text_preview() -> None:
    parsed = parse(b"Content-Type: text/html\r\n\r\n<style>p{color:red}</style><p>Only <i>HTML</i></p>")
    assert parsed.text is None
    assert parsed.preview == "Only HTML"


@pytest.mark.parametrize("charset", ["no-such-charset", "utf\x00-8"])
def test_a_charset_no_codec_takes_reads_as_utf8(charset: str) -> None:
    # Found by the parse fuzz: a NUL in the name makes the codec lookup raise ValueError.
    raw = (
        "From: a@example.net\r\nTo: b@example.net\r\nSubject: s\r\n"
        f'Content-Type: text/plain; charset="{charset}"\r\n\r\nh\xc3\xa9llo\r\n'
    ).encode("latin-1")
    assert parse(raw).text.strip() == "h\u00e9llo"
