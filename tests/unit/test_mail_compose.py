"""Outbound MIME: injection refused, reserved headers kept, limits stated; reply/forward prefill."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from mailroom.mail.compose import MAX_RECIPIENTS, ComposeError, Draft, OutgoingAttachment, compose
from mailroom.mail.parse import parse
from mailroom.mail.quoting import (
    forward_subject,
    quote,
    references_for_reply,
    reply_recipients,
    reply_subject,
)
from mailroom.mail.sanitize import sanitize_html
from mailroom.mail.threading import is_reply_subject, normalize_subject, parent_candidates


def draft(**changes: object) -> Draft:
    base = Draft(sender="Agent <agent@example.com>", to=["b@example.org"], subject="Hi", text="hello")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_composed_message_round_trips_through_the_parser() -> None:
    composed = compose(
        draft(
            cc=["C <c@example.org>"],
            bcc=["hidden@example.net"],
            reply_to=["r@example.org"],
            html="<p>hello</p>",
            headers={"X-Campaign": "q1"},
            in_reply_to="<p@x>",
            references=["<r@x>", "<p@x>"],
            attachments=[OutgoingAttachment("r.pdf", "application/pdf", b"%PDF-1.4\x00\xff")],
        )
    )
    assert composed.recipients == ["b@example.org", "c@example.org", "hidden@example.net"]
    assert composed.envelope_from == "agent@example.com"
    parsed = parse(composed.raw)
    assert parsed.message_id == composed.message_id and composed.message_id.endswith("@example.com>")
    assert (parsed.to, parsed.cc, parsed.reply_to) == (
        ["b@example.org"],
        ["C <c@example.org>"],
        ["r@example.org"],
    )
    assert parsed.in_reply_to == "<p@x>" and parsed.references == ["<r@x>", "<p@x>"]
    assert parsed.text == "hello\r\n" and parsed.html == "<p>hello</p>\r\n"  # SMTP line endings
    assert parsed.attachments[0].payload == b"%PDF-1.4\x00\xff"
    message = message_from_bytes(composed.raw, policy=policy.default)
    assert message["Bcc"] is None and b"hidden@example.net" not in composed.raw
    assert message["X-Campaign"] == "q1"


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"subject": "a\r\nBcc: evil@example.org"}, "subject", "validation_error"),
        ({"subject": "a\x00"}, "subject", "validation_error"),
        ({"to": ["b@example.org\nX-Evil: 1"]}, "to", "validation_error"),
        ({"cc": ["not an address"]}, "cc", "validation_error"),
        ({"reply_to": ["a@b"]}, "reply_to", "validation_error"),
        ({"headers": {"Message-ID": "<x@y>"}}, "headers", "reserved_header"),
        ({"headers": {"X-Ok": "v\r\nBcc: x@y.z"}}, "headers.X-Ok", "validation_error"),
        ({"headers": {"Bad Name": "v"}}, "headers", "validation_error"),
        ({"to": [f"u{i}@example.org" for i in range(MAX_RECIPIENTS + 1)]}, "to", "too_many_recipients"),
        ({"to": []}, "to", "validation_error"),
        (
            {
                "attachments": [
                    OutgoingAttachment("big.bin", "application/octet-stream", b"x" * (11 * 1024 * 1024))
                ]
            },
            "attachments",
            "message_too_large",
        ),
        (
            {"attachments": [OutgoingAttachment("a\r\nb.txt", "text/plain", b"x")]},
            "attachments.0.filename",
            "validation_error",
        ),
    ],
)
def test_invalid_drafts_are_refused_with_field_and_code(
    changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(ComposeError) as refused:
        compose(draft(**changes))
    assert (refused.value.field, refused.value.code) == (field, code)


def test_the_size_error_states_the_limit() -> None:
    with pytest.raises(ComposeError) as refused:
        compose(
            draft(attachments=[OutgoingAttachment("b.bin", "application/octet-stream", b"x" * 11_000_000)])
        )
    assert "10485760 bytes" in refused.value.message


def test_reply_and_forward_prefill() -> None:
    assert reply_subject("Hello") == "Re: Hello"
    assert reply_subject("RE: Hello") == "RE: Hello"
    assert forward_subject("Hello") == "Fwd: Hello"
    assert references_for_reply("<m@x>", ["<a@x>", "<m@x>"]) == ["<a@x>", "<m@x>"]
    assert (
        quote("one\n\ntwo", sender="Ann <a@x.com>", date="Mon")
        == "\n\nOn Mon, Ann <a@x.com> wrote:\n> one\n>\n> two\n"
    )
    to, cc = reply_recipients(
        own=["me@ex.com"],
        sender="A <a@x.com>",
        reply_to=[],
        to=["Me <ME@ex.com>", "b@x.com"],
        cc=["c@x.com", "a@x.com"],
        reply_all=True,
    )
    assert (to, cc) == (["A <a@x.com>", "b@x.com"], ["c@x.com"])
    assert reply_recipients(
        own=["me@ex.com"], sender="A <a@x.com>", reply_to=["list@x.com"], to=[], cc=[], reply_all=False
    ) == (["list@x.com"], [])


def test_threading_keys() -> None:
    assert normalize_subject("Re: AW: Fwd:  The   Plan") == "the plan"
    assert is_reply_subject("SV: x") and not is_reply_subject("Revenue report")
    assert parent_candidates("<p>", ["<a>", "<b>", "<p>"]) == ["<p>", "<b>", "<a>"]


def test_sanitized_html_blocks_scripts_and_remote_content() -> None:
    clean = sanitize_html(
        '<p onclick="x()">Hi<script>alert(1)</script><img src="https://t.example/p.gif" alt="l">'
        '<img src="cid:logo"><a href="https://example.com">link</a></p>'
    )
    assert "script" not in clean and "onclick" not in clean and "t.example" not in clean
    assert 'src="cid:logo"' in clean and 'rel="noopener noreferrer nofollow"' in clean
