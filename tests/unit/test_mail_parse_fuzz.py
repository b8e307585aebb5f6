"""A hypothesis fuzz of the MIME parser, with real-world messages (tests/fixtures/mail) mutated and
bytes of no shape: ``parse`` returns a message or raises ``Unparseable`` with a known reason,
never anything else; what it returns is valid text, one line per header field; every address in it
is either one a reply can go to or refused with a ``ComposeError``; and forwarding the message
gives one whose sender is exactly the forwarding address."""

from __future__ import annotations

import contextlib

from hypothesis import given

from mailroom.mail import forwarding, quoting
from mailroom.mail.addresses import parse_mailbox
from mailroom.mail.compose import ComposeError
from mailroom.mail.parse import ParsedMessage, Unparseable, parse
from mailroom.services import inbound_message
from tests.support.fuzzing import corpus, fuzz, received_mail

SEEDS = corpus()
REASONS = {"too_large", "header_too_large", "too_many_parts", "too_deep", "unparseable"}
FORWARDER = "fwd@example.com"


def one_line_text(value: str) -> None:
    value.encode("utf-8")  # no unpaired surrogate: it could be neither stored nor shown
    assert "\r" not in value and "\n" not in value, value


def replyable(value: str) -> None:
    with contextlib.suppress(ComposeError):
        parse_mailbox("to", value)


@fuzz(examples=400)
@given(raw=received_mail(SEEDS))
def test_any_message_is_parsed_or_refused_with_a_reason(raw: bytes) -> None:
    safely = inbound_message.parse_safely(raw, len(raw))
    try:
        parsed = parse(raw)
    except Unparseable as problem:
        assert problem.reason in REASONS and isinstance(safely, Unparseable)
        assert safely.reason == problem.reason
        return
    assert isinstance(safely, ParsedMessage)

    addresses = [v for v in [parsed.from_, *parsed.to, *parsed.cc, *parsed.reply_to] if v is not None]
    for value in [
        parsed.subject,
        *addresses,
        *(part for pair in parsed.headers for part in pair),
        *[v for v in (parsed.message_id, parsed.in_reply_to, parsed.date, parsed.from_address) if v],
        *parsed.references,
        *(a.filename or "" for a in parsed.attachments),
        *(a.content_id or "" for a in parsed.attachments),
        parsed.preview,
    ]:
        one_line_text(value)
    for body in (parsed.text, parsed.html):
        (body or "").encode("utf-8")
    for value in addresses:
        replyable(value)
    quoting.reply_recipients(
        own=["inbox@example.com"],
        sender=parsed.from_,
        reply_to=parsed.reply_to,
        to=parsed.to,
        cc=parsed.cc,
        reply_all=True,
    )
    quoting.references_for_reply(parsed.message_id, parsed.references)

    out = forwarding.forwarded(
        raw,
        forwarder=FORWARDER,
        original_from=parsed.from_,
        original_reply_to=parsed.reply_to,
        original_message_id=parsed.message_id,
        references=parsed.references,
    )
    try:
        again = parse(out)
    except Unparseable as problem:
        assert problem.reason in REASONS
        return
    assert again.from_address == FORWARDER
    assert [parse_mailbox("from", again.from_ or "").address] == [FORWARDER]
