"""Parse raw RFC 5322 / MIME bytes into what Mailroom stores, with explicit limits.

The standard library does the parsing (``email.parser.BytesParser`` with ``policy.default``). The
limits are checked in the cheapest possible order so a hostile message costs little: size and
header block before parsing, a bounded pre-scan of boundary lines before parsing (10^5 tiny parts
would otherwise take the parser tens of seconds), depth and part count after. Anything that breaks
a limit or cannot be parsed raises ``Unparseable`` with a reason; the caller quarantines the raw
bytes. Decoding problems inside a part (unknown charset, broken base64) never raise: the text is
decoded with replacement characters and the part is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from mailroom.mail.addresses import display
from mailroom.mail.header_text import join_encoded_words
from mailroom.mail.limits import DEFAULT_LIMITS, ParseLimits

PREVIEW_CHARS = 200
_MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WS_RE = re.compile(r"\s+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LINE_END_RE = re.compile(r"\r|\n")
_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


class Unparseable(ValueError):
    """The message breaks a limit or cannot be parsed; ``reason`` says which (stable, snake_case)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int
    filename: str | None
    content_type: str
    disposition: str  # attachment or inline
    content_id: str | None
    payload: bytes

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(slots=True)
class ParsedMessage:
    from_: str | None
    from_address: str | None
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    subject: str
    date: str | None  # ISO 8601 UTC, when the Date header parses
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text: str | None
    html: str | None
    attachments: list[Attachment]
    headers: list[tuple[str, str]]
    size: int
    preview: str = ""
    truncated: list[str] = field(default_factory=list)

    @property
    def has_attachments(self) -> bool:
        return any(a.disposition == "attachment" for a in self.attachments)


def one_line(value: str) -> str:
    """A header value safe to store and show: no CR, LF, NUL or other controls (an encoded newline
    in a Subject must not become a header injection later), no lone surrogates (the parser keeps
    raw 8-bit header bytes as surrogate escapes: read as UTF-8, RFC 6532; else U+FFFD)."""
    if _SURROGATE_RE.search(value):
        try:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that is no escaped byte
            value = _SURROGATE_RE.sub("\ufffd", value)
    return _WS_RE.sub(" ", _CONTROL_RE.sub(" ", value.replace("\r", " ").replace("\n", " "))).strip()


class _MemoRegistry(HeaderRegistry):
    """``policy.default``'s header registry, keeping the headers it parsed for one message. The
    parser, then the walk over the parts, read each part's Content-Type and Content-Disposition
    several times, and the policy parses the header again on every read: that was more than half of
    the time a message took to parse. Header objects are immutable (``str`` subclasses), so one
    parse can serve every read of the same (name, value); what fails to parse is not kept, and
    fails again the same way."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        made = self._made.get((name, value))
        if made is None:
            made = self._made[(name, value)] = super().__call__(name, value)
        return made


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a malformed header the policy cannot parse: its raw form, as received
        value = next((v for n, v in message.raw_items() if n.lower() == name.lower()), None)
    return one_line(str(value)) if value is not None else None


def _addresses(message: Message, name: str) -> list[str]:
    """The header's mailboxes in display form (``Name <addr>``, the name quoted or encoded so that
    reading the string again gives the same mailbox: see ``addresses.Address``).

    Read as ``policy.default`` reads a header, but with the whitespace between adjacent RFC 2047
    encoded words taken out first: RFC 2047 (6.2) says it is not part of the text, and Python's
    address parser would otherwise put a space into every name written as several encoded words.
    """
    pairs = [
        pair
        for header_name, raw in message.raw_items()
        if header_name.lower() == name.lower()
        for pair in _mailboxes(name, join_encoded_words(_LINE_END_RE.sub("", str(raw))))
    ]
    return [display(one_line(n), one_line(a)) for n, a in pairs if "@" in a]


def _mailboxes(name: str, value: str) -> list[tuple[str, str]]:
    try:
        header = policy.default.header_factory(name, value)
    except Exception:  # e.g. a name that decodes to CR or LF, which the registry refuses: names undecoded
        return getaddresses([value])
    return (
        [(a.display_name, a.addr_spec) for a in header.addresses] if isinstance(header, AddressHeader) else []
    )


def _bare_address(value: str | None) -> str | None:
    if not value:
        return None
    pairs = getaddresses([value])
    return pairs[0][1].lower() if pairs and "@" in pairs[0][1] else None


def message_ids(value: str | None) -> list[str]:
    return _MESSAGE_ID_RE.findall(value or "")


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, ValueError):  # an unknown charset name, or one no codec lookup takes (a NUL)
        return payload.decode("utf-8", errors="replace")


def _prescan(raw: bytes, limits: ParseLimits) -> None:
    if len(raw) > limits.max_message_bytes:
        raise Unparseable("too_large", f"{len(raw)} bytes exceeds {limits.max_message_bytes}")
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    if end > limits.max_header_bytes:
        raise Unparseable(
            "header_too_large", f"header block of {end} bytes exceeds {limits.max_header_bytes}"
        )
    # Every MIME part starts with a boundary line "--..."; far more of them than parts allowed means
    # the parser would spend seconds building parts we would refuse anyway.
    boundary_lines = raw.count(b"\n--")
    if boundary_lines > 2 * limits.max_parts + 10:
        raise Unparseable(
            "too_many_parts", f"about {boundary_lines} boundary lines (limit {limits.max_parts} parts)"
        )


def _walk(message: Message, limits: ParseLimits) -> list[tuple[Message, int]]:
    """Every part with its depth, iteratively (no recursion to exhaust)."""
    parts: list[tuple[Message, int]] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > limits.max_depth:
            raise Unparseable("too_deep", f"MIME nesting deeper than {limits.max_depth}")
        parts.append((part, depth))
        if len(parts) > limits.max_parts:
            raise Unparseable("too_many_parts", f"more than {limits.max_parts} MIME parts")
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                # A malformed multipart can hold bare strings; only Message parts are walked.
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
    return parts


def html_to_text(html: str) -> str:
    return _WS_RE.sub(" ", _TAG_RE.sub(" ", html)).strip()


def preview_of(text: str | None, html: str | None) -> str:
    source = text if text and text.strip() else html_to_text(html or "")
    return _WS_RE.sub(" ", source).strip()[:PREVIEW_CHARS]


def parse(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedMessage:
    _prescan(raw, limits)
    try:
        # A registry per message: nothing of one message is kept for the next.
        memo_policy = policy.default.clone(header_factory=_MemoRegistry())
        message: EmailMessage = BytesParser(policy=memo_policy).parsebytes(raw)  # type: ignore[assignment]
    except RecursionError as exc:
        raise Unparseable("too_deep", "MIME nesting too deep to parse") from exc
    except Exception as exc:  # the parser is lenient; anything it still cannot handle is quarantined
        raise Unparseable("unparseable", f"{type(exc).__name__}: {exc}") from exc
    try:
        parts = _walk(message, limits)
    except RecursionError as exc:
        raise Unparseable("too_deep", "MIME nesting too deep to walk") from exc

    text = html = None
    attachments: list[Attachment] = []
    truncated: list[str] = []
    for part, _depth in parts:
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
        is_body_candidate = disposition != "attachment" and not filename
        if is_body_candidate and content_type == "text/plain" and text is None:
            text = _text_of(part)
            continue
        if is_body_candidate and content_type == "text/html" and html is None:
            html = _text_of(part)
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = str(part.get_payload()).encode("utf-8", "replace")
        content_id = part.get("Content-ID")
        attachments.append(
            Attachment(
                index=len(attachments),
                filename=one_line(filename) if filename else None,
                content_type=content_type,
                disposition="inline" if disposition == "inline" else "attachment",
                content_id=one_line(str(content_id)).strip("<>") if content_id else None,
                payload=payload,
            )
        )
    if text is not None and len(text) > limits.max_body_chars:
        text, truncated = text[: limits.max_body_chars], [*truncated, "text"]
    if html is not None and len(html) > limits.max_body_chars:
        html, truncated = html[: limits.max_body_chars], [*truncated, "html"]

    date = None
    raw_date = _header(message, "Date")
    if raw_date:
        try:
            parsed_date = parsedate_to_datetime(raw_date)
            if parsed_date.tzinfo is not None:
                from mailroom import clock

                date = clock.isoformat(parsed_date)
        except (TypeError, ValueError, IndexError):
            date = None
    from_header = _addresses(message, "From")
    message_id = message_ids(_header(message, "Message-ID"))
    in_reply_to = message_ids(_header(message, "In-Reply-To"))
    headers: list[tuple[str, str]] = []
    for name, value in message.raw_items():
        headers.append((name, one_line(str(value))[:4096]))
    parsed = ParsedMessage(
        from_=from_header[0] if from_header else _header(message, "From"),
        from_address=_bare_address(from_header[0] if from_header else None),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        reply_to=_addresses(message, "Reply-To"),
        subject=_header(message, "Subject") or "",
        date=date,
        message_id=message_id[0] if message_id else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(_header(message, "References"))[-50:],
        text=text,
        html=html,
        attachments=attachments,
        headers=headers[:200],
        size=len(raw),
        truncated=truncated,
    )
    parsed.preview = preview_of(text, html)
    return parsed


def header_dict(headers: list[tuple[str, str]]) -> dict[str, Any]:
    """Headers as a mapping (agentmail's ``headers``): repeated names keep their first value."""
    result: dict[str, Any] = {}
    for name, value in headers:
        result.setdefault(name, value)
    return result
