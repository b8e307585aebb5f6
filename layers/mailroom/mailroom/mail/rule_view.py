"""A parsed message as mailbox rules see it (``domain.rules.MessageView``). Pure."""

from __future__ import annotations

import html
import re

from mailroom.domain.rules import MAX_BODY_CHARS, MessageView
from mailroom.mail.addresses import address_only
from mailroom.mail.parse import ParsedMessage

_TAG_RE = re.compile(r"<[^<>]*>")  # no nesting, no backtracking: linear in the text
_SKIPPED_ELEMENTS_RE = re.compile(r"<(style|script)\b[^<>]*>[^<]*</\1\s*>", re.IGNORECASE)


def body_text(parsed: ParsedMessage) -> str:
    """The text a body condition reads: the text part, else the HTML part's text (Sieve's
    ``body :text``), cut to the first MAX_BODY_CHARS."""
    if parsed.text:
        return parsed.text[:MAX_BODY_CHARS]
    if parsed.html:
        source = parsed.html[: MAX_BODY_CHARS * 2]
        return html.unescape(_TAG_RE.sub(" ", _SKIPPED_ELEMENTS_RE.sub(" ", source)))[:MAX_BODY_CHARS]
    return ""


def view_of(
    parsed: ParsedMessage, *, spam: bool, envelope_from: str | None = None, envelope_to: str | None = None
) -> MessageView:
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in parsed.headers:
        key = name.lower()
        headers[key] = (*headers.get(key, ()), value)
    return MessageView(
        from_=tuple(a for a in [parsed.from_address] if a),
        to=tuple(address_only(a) for a in parsed.to),
        cc=tuple(address_only(a) for a in parsed.cc),
        envelope_from=tuple(a for a in [(envelope_from or "").strip("<>").lower()] if a),
        envelope_to=tuple(a for a in [(envelope_to or "").lower()] if a),
        subject=parsed.subject,
        body=body_text(parsed),
        headers=headers,
        size=parsed.size,
        has_attachment=parsed.has_attachments,
        spam=spam,
    )
