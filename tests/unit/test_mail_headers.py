"""Header text and addresses, case by case (issue 22): the forging examples, every refused
character by field, RFC 2047 encoding, the display-name rule for stored names, and the received
mail the parser and the forwarder used to fail on."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailroom.domain.addresses import InvalidDisplayName, check_display_name
from mailroom.mail import forwarding
from mailroom.mail.addresses import Address, parse_mailbox
from mailroom.mail.compose import ComposeError, Draft, OutgoingAttachment, compose
from mailroom.mail.header_text import encoded_words, unstructured
from mailroom.mail.parse import parse

LINE_BREAKS = ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
REFUSED = [*LINE_BREAKS, "\x00", "\x01", "\x7f", "\x9f", "\ud800", "\udfff"]


def draft(**changes: object) -> Draft:
    base = Draft(sender="Agent <agent@example.com>", to=["b@example.org"], subject="Hi", text="hello")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def read(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_issue_example_puts_one_mailbox_in_from() -> None:
    composed = compose(
        draft(
            sender='"Bób <ceo@bank.example>, x" <bob@own.example>',
            to=['"Eve, <evil@bank.example>" <b@example.org>'],
        )
    )
    message = read(composed.raw)
    assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [
        ("Bób <ceo@bank.example>, x", "bob@own.example")
    ]
    assert [a.addr_spec for a in message["To"].addresses] == ["b@example.org"]
    assert b"From: =?utf-8?b?QsOzYiA8Y2VvQGJhbmsuZXhhbXBsZT4sIHg=?= <bob@own.example>\r\n" in composed.raw
    assert b'To: "Eve, <evil@bank.example>" <b@example.org>\r\n' in composed.raw
    assert parse(composed.raw).to == ['"Eve, <evil@bank.example>" <b@example.org>']


def test_an_encoded_word_in_a_local_part_is_refused() -> None:
    # Python reads it as "ceo@bank.example"@x.org: the address parsers would disagree.
    for value in ("=?utf-8?q?ceo=40bank.example?=@x.org", Address("", "=?utf-8?q?x?=@x.org")):
        with pytest.raises(ComposeError):
            parse_mailbox("to", value)


@pytest.mark.parametrize("bad", REFUSED)
@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("subject", lambda b: {"subject": f"a{b}b"}),
        ("headers.X-Note", lambda b: {"headers": {"X-Note": f"a{b}b"}}),
        ("in_reply_to", lambda b: {"in_reply_to": f"<a{b}b@x>"}),
        ("references", lambda b: {"references": [f"<a{b}b@x>"]}),
        ("from", lambda b: {"sender": f'"A{b}B" <agent@example.com>'}),
        ("to", lambda b: {"to": [f'"A{b}B" <b@example.org>']}),
        ("cc", lambda b: {"cc": [Address(f"A{b}B", "c@example.org")]}),
        ("attachments.0.filename", lambda b: {"attachments": [OutgoingAttachment(f"a{b}.txt", "", b"x")]}),
        (
            "attachments.0.content_type",
            lambda b: {"attachments": [OutgoingAttachment("a", f"text/{b}", b"")]},
        ),
        (
            "attachments.0.content_id",
            lambda b: {"attachments": [OutgoingAttachment("a", "", b"", content_id=f"a{b}@x")]},
        ),
    ],
)
def test_every_header_field_refuses_line_breaks_controls_and_surrogates(
    bad: str, field: str, change: object
) -> None:
    assert callable(change)
    with pytest.raises(ComposeError) as refused:
        compose(draft(**change(bad)))
    assert (refused.value.field, refused.value.code) == (field, "validation_error")
    assert "U+" in refused.value.message


@pytest.mark.parametrize("field", ["text", "html"])
def test_bodies_refuse_only_unpaired_surrogates(field: str) -> None:
    with pytest.raises(ComposeError) as refused:
        compose(draft(**{field: "a\ud800b"}))
    assert refused.value.field == field
    composed = compose(draft(**{field: "line\u2028separator\x0bvt\x85nel"}))
    body = getattr(parse(composed.raw), field)
    assert body is not None and "line\u2028separator\x0bvt\x85nel" in body


def test_encoded_words_are_short_whole_characters_and_end_after_a_space() -> None:
    text = "Zoë " * 30 + "終" * 40
    words = encoded_words(text)
    assert all(len(w) <= 75 for w in words)
    message = read(b"Subject: " + " ".join(words).encode() + b"\r\n\r\n")
    assert str(message["Subject"]) == text
    decoded = [base64.b64decode(w.removeprefix("=?utf-8?b?").removesuffix("?=")).decode() for w in words]
    assert "".join(decoded) == text
    assert all(d.endswith(" ") for d in decoded[:3])  # cut after spaces while there are some


def test_plain_subjects_stay_readable_and_others_are_encoded() -> None:
    assert unstructured("Subject", "Quarterly report for Q1") == "Quarterly report for Q1"
    assert unstructured("Subject", "=?utf-8?q?literal?=").startswith("=?utf-8?b?")
    folded = unstructured("Subject", "word " * 40 + "end")
    assert all(len(line) <= 78 for line in folded.split("\n")) and folded.count("\n") >= 2
    message = read(compose(draft(subject="=?utf-8?q?literal?=  two  spaces ")).raw)
    assert str(message["Subject"]) == "=?utf-8?q?literal?=  two  spaces "


@pytest.mark.parametrize(
    "name",
    [
        "Support <support@bank.example>",
        "ceo@bank.example",
        "Ann\nBcc: x",
        "tab\there",
        "A\u202eB",
        "\ud800",
        "\x85",
    ],
)
def test_stored_display_names_refuse_address_syntax_and_controls(name: str) -> None:
    with pytest.raises(InvalidDisplayName) as refused:
        check_display_name(name)
    assert "U+" in str(refused.value)


@pytest.mark.parametrize(
    "name", ['Smith, "Jo" \\ Ann; Team: (Ops)', "Zoë Ünïcode", "東京 本社", "=?utf-8?q?x?=", None]
)
def test_stored_display_names_keep_specials_and_any_script(name: str | None) -> None:
    assert check_display_name(name) == name
    if name:
        message = read(compose(draft(sender=Address(name, "agent@example.com"))).raw)
        assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [
            (name, "agent@example.com")
        ]


# --- received mail the parser and the forwarder used to fail on -------------------------------------


def test_non_ascii_addresses_and_nested_groups_are_parsed_not_quarantined() -> None:
    # formataddr raised UnicodeEncodeError on the first; the header registry AttributeError on the
    # second (a group in a group, found by the parser fuzz): both messages went to quarantine.
    smtputf8 = parse("From: Jörg <jörg@example.org>\r\nTo: a@example.com\r\n\r\nx".encode())
    assert smtputf8.from_ == "Jörg <jörg@example.org>" and smtputf8.from_address == "jörg@example.org"
    nested = parse(b"From: a: b: c@d.example;;\r\nTo: a@example.com, g: h: i@j.example;;\r\n\r\nx")
    assert nested.from_address == "c@d.example"
    assert "a@example.com" in nested.to


def test_names_in_several_encoded_words_read_back_without_extra_spaces() -> None:
    raw = b"To: =?utf-8?b?WsO2w6s=?= =?utf-8?b?IE1hcnRpbg==?= =?utf-8?q?_x?= <z@example.org>\r\n\r\nx"
    assert parse(raw).to == ["Zöë Martin x <z@example.org>"]


def test_a_forward_with_a_non_ascii_reply_to_leaves_it_out() -> None:
    out = forwarding.forwarded(
        b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n",
        forwarder="fwd@example.com",
        original_from='"Carol <ceo@bank.example>, x" <carol@example.net>',
        original_reply_to=["Jörg <jörg@example.org>", "list@example.net"],
        original_message_id="<m@example.net>",
        references=["<not an id>", "<r@example.net>"],
    )
    message = read(out)
    assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [
        ("Carol <ceo@bank.example>, x via Mailroom", "fwd@example.com")
    ]
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["list@example.net"]
    assert str(message["References"]).split() == ["<r@example.net>", "<m@example.net>"]
