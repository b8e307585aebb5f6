"""Inbound mail, step 3 of services/inbound.py: the received message parsed once, within explicit
limits, and cut to what a DynamoDB item may hold. A message the parser cannot read is a reason
(``Unparseable``), never an exception: it is quarantined, never lost."""

from __future__ import annotations

import re
from dataclasses import replace

from mailroom.mail.limits import DEFAULT_LIMITS
from mailroom.mail.parse import Attachment, ParsedMessage, Unparseable, parse

# Bounds on what one message puts in its DynamoDB item (a header can be up to the header limit).
MAX_HEADER_TEXT = 998
MAX_LISTED_ADDRESSES = 100
MAX_ATTACHMENT_LABEL = 255
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Valid Unicode for DynamoDB: header bytes the parser could not decode stay in its strings as
    lone surrogates (``surrogateescape``), which no store accepts. They become the UTF-8 they were,
    or U+FFFD."""
    if not _SURROGATE_RE.search(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return _SURROGATE_RE.sub("\ufffd", value)


def _bounded(parsed: ParsedMessage) -> ParsedMessage:
    """The parsed message as it may be stored: valid Unicode everywhere, and every unbounded string
    and list cut to a size that keeps its DynamoDB item small (a header may legally be hundreds of
    kilobytes)."""

    def text(value: str | None, limit: int | None = None) -> str | None:
        return clean_text(value)[:limit] if value else value

    def addresses(values: list[str]) -> list[str]:
        return [clean_text(a)[:MAX_HEADER_TEXT] for a in values[:MAX_LISTED_ADDRESSES]]

    attachments: list[Attachment] = [
        replace(
            a,
            filename=text(a.filename, MAX_ATTACHMENT_LABEL),
            content_id=text(a.content_id, MAX_ATTACHMENT_LABEL),
            content_type=clean_text(a.content_type)[:MAX_ATTACHMENT_LABEL],
        )
        for a in parsed.attachments
    ]
    return replace(
        parsed,
        from_=text(parsed.from_, MAX_HEADER_TEXT),
        subject=clean_text(parsed.subject)[:MAX_HEADER_TEXT],
        to=addresses(parsed.to),
        cc=addresses(parsed.cc),
        reply_to=addresses(parsed.reply_to),
        message_id=text(parsed.message_id, MAX_HEADER_TEXT),
        in_reply_to=text(parsed.in_reply_to, MAX_HEADER_TEXT),
        references=[clean_text(r)[:MAX_HEADER_TEXT] for r in parsed.references],
        text=text(parsed.text),
        html=text(parsed.html),
        headers=[(clean_text(name), clean_text(value)) for name, value in parsed.headers],
        preview=clean_text(parsed.preview),
        attachments=attachments,
    )


def parse_safely(raw: bytes | None, size: int) -> ParsedMessage | Unparseable:
    """Parsed, or why not. ``parse`` is pure, so anything it raises is about the message."""
    if raw is None:
        return Unparseable("too_large", f"{size} bytes exceeds {DEFAULT_LIMITS.max_message_bytes}")
    try:
        return _bounded(parse(raw))
    except Unparseable as problem:
        return problem
    except Exception as exc:  # a standard-library corner the parser did not foresee: keep the bytes
        return Unparseable("unparseable", f"{type(exc).__name__}: {exc}")
