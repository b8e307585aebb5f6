"""A parsed message as mailbox rules see it (``domain.rules.MessageView``). Pure.

It reads what ``mail.parse.ParsedMessage`` has, through a Protocol: domain/ and mail/ are siblings
that do not import each other."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from email.utils import getaddresses
from typing import Protocol

from mailroom.domain.rules import MAX_BODY_CHARS, MessageView


class Parsed(Protocol):
    """The parts of a parsed message (``mail.parse.ParsedMessage``) that rules read."""

    from_address: str | None
    to: list[str]
    cc: list[str]
    subject: str
    text: str | None
    html: str | None
    headers: list[tuple[str, str]]
    size: int

    @property
    def has_attachments(self) -> bool: ...


def address_only(value: str) -> str:
    """The bare, lower-cased address of ``"Name <addr>"``."""
    pairs = getaddresses([value])
    return (pairs[0][1] if pairs and pairs[0][1] else value).strip().lower()


def _bare(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(address_only(a) for a in values)


_TAG_RE = re.compile(r"<[^<>]*>")  # no nesting, no backtracking: linear in the text
_SKIPPED_ELEMENTS_RE = re.compile(r"<(style|script)\b[^<>]*>[^<]*</\1\s*>", re.IGNORECASE)


def body_text(parsed: Parsed) -> str:
    """The text a body condition reads: the text part, else the HTML part's text (Sieve's
    ``body :text``), cut to the first MAX_BODY_CHARS."""
    if parsed.text:
        return parsed.text[:MAX_BODY_CHARS]
    if parsed.html:
        source = parsed.html[: MAX_BODY_CHARS * 2]
        return html.unescape(_TAG_RE.sub(" ", _SKIPPED_ELEMENTS_RE.sub(" ", source)))[:MAX_BODY_CHARS]
    return ""


def view_of(
    parsed: Parsed, *, spam: bool, envelope_from: str | None = None, envelope_to: str | None = None
) -> MessageView:
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in parsed.headers:
        key = name.lower()
        headers[key] = (*headers.get(key, ()), value)
    return MessageView(
        from_=tuple(a for a in [parsed.from_address] if a),
        to=_bare(parsed.to),
        cc=_bare(parsed.cc),
        envelope_from=tuple(a for a in [(envelope_from or "").strip("<>").lower()] if a),
        envelope_to=tuple(a for a in [(envelope_to or "").lower()] if a),
        subject=parsed.subject,
        body=body_text(parsed),
        headers=headers,
        size=parsed.size,
        has_attachment=parsed.has_attachments,
        spam=spam,
    )
