"""Property tests (hypothesis) of the composer: whatever a display name holds, every composed
address header reads back as exactly the intended mailboxes (by the ``email`` package's parser,
``getaddresses`` and Mailroom's own parser); and any draft either composes into a message that
parses back to the intended addresses, subject and bodies, or is refused with a ``ComposeError``
naming a documented field. Never another exception."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses

from hypothesis import example, given
from hypothesis import strategies as st

from mailroom.mail.addresses import Address, clean_name, parse_mailbox, valid_addr_spec
from mailroom.mail.compose import ComposeError, Draft, compose, media_type
from mailroom.mail.header_text import refused_in_header
from mailroom.mail.parse import one_line, parse
from tests.support.fuzzing import drafts, fuzz, mailboxes, names

DOCUMENTED_FIELD = re.compile(
    r"^(from|to|cc|bcc|reply_to|subject|text|html|in_reply_to|references|headers(\..+)?"
    r"|attachments|attachments\.\d+\.(filename|content_type|content_id))$"
)
CODES = {"validation_error", "reserved_header", "too_many_recipients", "message_too_large"}


def intended(address: Address) -> Address:
    spec = valid_addr_spec(address.address)
    assert spec is not None
    return Address(clean_name(address.name), spec)


def mailboxes_of(message: EmailMessage, header: str) -> list[tuple[str, str]]:
    value = message[header]
    return [(a.display_name, a.addr_spec) for a in value.addresses] if value is not None else []


def normalized_body(text: str) -> str:
    return re.sub(r"\r\n|\r", "\n", text).rstrip("\n")


@fuzz(examples=200)
@given(
    sender=mailboxes,
    to=st.lists(mailboxes, min_size=1, max_size=4),
    cc=st.lists(mailboxes, max_size=3),
    reply_to=st.lists(mailboxes, max_size=2),
)
@example(
    sender=Address("Bób <ceo@bank.example>, x", "bob@own.example"),
    to=[
        Address("Eve, <evil@bank.example>", "b@example.net"),
        Address("x" * 200 + ",y <e@bank.example>", "c@x.org"),
    ],
    cc=[Address("=?utf-8?q?=3Cceo=40bank.example=3E?=", "d@x.org")],
    reply_to=[Address('a"b\\c, <r@bank.example>', "r@x.org")],
)
def test_composed_address_headers_read_back_as_exactly_the_intended_mailboxes(
    sender: Address, to: list[Address], cc: list[Address], reply_to: list[Address]
) -> None:
    draft = Draft(sender=sender, to=to, cc=cc, reply_to=reply_to, subject="s", text="t")
    every = [sender, *to, *cc, *reply_to]
    if any(valid_addr_spec(a.address) is None for a in every):  # "=?" in a local part: refused
        try:
            compose(draft)
        except ComposeError as refused:
            assert refused.field in {"from", "to", "cc", "reply_to"}
            return
        raise AssertionError("an address with =? in its local part was composed")
    composed = compose(draft)
    message = message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    stored = parse(composed.raw)
    for header, wanted, found in (
        ("From", [sender], [stored.from_ or ""]),
        ("To", to, stored.to),
        ("Cc", cc, stored.cc),
        ("Reply-To", reply_to, stored.reply_to),
    ):
        expected = [intended(a) for a in wanted]
        # The email package's own reader, and the legacy one, find exactly these addresses...
        assert [a for _, a in mailboxes_of(message, header)] == [e.address for e in expected], header
        raw_value = message.get_all(header, [])
        legacy = getaddresses([str(v) for v in raw_value]) if raw_value else []
        assert [a for _, a in legacy] == [e.address for e in expected], header
        # ...and Mailroom's parser keeps each name as a name: read again, the very same mailbox.
        assert [parse_mailbox(header, value) for value in found] == expected, header
    assert composed.recipients == [intended(a).address for a in [*to, *cc]]


@fuzz(examples=200)
@given(mailbox=mailboxes)
def test_the_display_form_reads_back_as_the_same_mailbox(mailbox: Address) -> None:
    if valid_addr_spec(mailbox.address) is None:
        return
    wanted = intended(mailbox)
    assert parse_mailbox("to", str(wanted)) == wanted


@fuzz(examples=200)
@given(name=names)
def test_a_mailbox_name_never_adds_a_mailbox(name: str) -> None:
    composed = compose(Draft(sender=Address(name, "agent@example.com"), to=[Address(name, "b@example.org")]))
    message = message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert [a for _, a in mailboxes_of(message, "From")] == ["agent@example.com"]
    assert [a for _, a in mailboxes_of(message, "To")] == ["b@example.org"]
    assert composed.recipients == ["b@example.org"]


def check_refusal(draft: Draft, refused: ComposeError) -> None:
    """A refusal names a documented field with a documented code, and the draft really breaks a
    rule there (so a refusal cannot hide a composer bug)."""
    assert DOCUMENTED_FIELD.match(refused.field), refused.field
    assert refused.code in CODES and refused.message
    field = refused.field
    if field in ("subject",):
        assert refused_in_header(draft.subject) or len(draft.subject) > 998
    elif field in ("text", "html"):
        body = getattr(draft, field)
        assert body is not None and re.search("[\ud800-\udfff]", body)
    elif field.startswith("headers."):
        name = field.removeprefix("headers.")
        assert refused_in_header(draft.headers[name]) or len(draft.headers[name]) > 900
    elif field.startswith("attachments.") and field.endswith(".filename"):
        position = int(field.split(".")[1])
        filename = draft.attachments[position].filename
        assert refused_in_header(filename) or not filename.strip()


@fuzz(examples=300)
@given(draft=drafts)
def test_any_draft_composes_into_what_was_asked_or_is_refused_by_field(draft: Draft) -> None:
    try:
        composed = compose(draft)
    except ComposeError as refused:
        check_refusal(draft, refused)
        return
    message = message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    stored = parse(composed.raw)

    def wanted(values: list[str | Address] | list[str] | list[Address], field: str) -> list[str]:
        return [parse_mailbox(field, v).address for v in values]

    assert [a for _, a in mailboxes_of(message, "From")] == wanted([draft.sender], "from")
    assert [a for _, a in mailboxes_of(message, "To")] == wanted(list(draft.to), "to")
    assert [a for _, a in mailboxes_of(message, "Cc")] == wanted(list(draft.cc), "cc")
    assert [a for _, a in mailboxes_of(message, "Reply-To")] == wanted(list(draft.reply_to), "reply_to")
    assert message["Bcc"] is None
    assert composed.recipients == wanted([*draft.to, *draft.cc, *draft.bcc], "to")
    assert [parse_mailbox("to", v).address for v in stored.to] == wanted(list(draft.to), "to")

    assert stored.subject == one_line(draft.subject)
    assert str(message["Subject"] or "") == draft.subject
    if draft.text is not None:
        assert stored.text is not None and normalized_body(stored.text) == normalized_body(draft.text)
    if draft.html is not None:
        assert stored.html is not None and normalized_body(stored.html) == normalized_body(draft.html)
    assert [a.payload for a in stored.attachments] == [a.content for a in draft.attachments]
    assert [a.filename for a in stored.attachments] == [one_line(a.filename) for a in draft.attachments]
    assert [a.content_type for a in stored.attachments] == [
        "/".join(media_type("x", a.content_type, a.filename)) for a in draft.attachments
    ]
    for name, value in draft.headers.items():
        if "=?" not in value:  # ASCII with =? is written as given, and a reader decodes it
            assert one_line(str(message[name])) == one_line(value), name
