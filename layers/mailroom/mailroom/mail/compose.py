"""Build outbound MIME with the standard library for the bodies and Mailroom's own header writer.

Rules (each failure is a ``ComposeError`` with the field, a stable code and a message that states
the limit): every address is exactly one mailbox (``mail.addresses.parse_mailbox``); no header
value (addresses and their names, the subject, a custom header, a Message-ID, an attachment's
filename, type or content id) carries a line break, a control character or an unpaired surrogate
(``mail.header_text``), and no body an unpaired surrogate; no overriding of reserved headers; at
most ``MAX_RECIPIENTS`` recipients (to + cc + bcc); at most ``MAX_MESSAGE_BYTES`` once encoded.
Bcc recipients are envelope recipients only, never a header.

The address headers, the subject, the threading headers and custom headers are encoded and folded
here (``header_text.Written``): built from ``Address`` values, a display name can never be read
back as another mailbox, whatever it contains. The ``email`` package builds the MIME structure.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailroom.mail.addresses import Address, address_header, address_only, parse_mailbox
from mailroom.mail.header_text import (
    ComposeError,
    Written,
    bracketed_message_id,
    check_body_text,
    check_header_text,
    fold,
    shown,
    unstructured,
)

__all__ = [
    "MAX_CUSTOM_HEADERS",
    "MAX_MESSAGE_BYTES",
    "MAX_RECIPIENTS",
    "MAX_SUBJECT_CHARS",
    "RESERVED_HEADERS",
    "Address",
    "ComposeError",
    "Composed",
    "Draft",
    "OutgoingAttachment",
    "address_only",
    "as_list",
    "check_custom_headers",
    "compose",
    "media_type",
    "parse_mailbox",
    "usable_content_id",
    "with_message_id",
]

MAX_RECIPIENTS = 50
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # what fits through API Gateway's 10 MB request limit, encoded
MAX_SUBJECT_CHARS = 998
MAX_CUSTOM_HEADERS = 50
MAX_REFERENCES = 20
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "Sender",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Content-ID",
        "Return-Path",
        "Received",
        "DKIM-Signature",
        "Authentication-Results",
        "ARC-Seal",
        "ARC-Message-Signature",
        "ARC-Authentication-Results",
        "X-SES-CONFIGURATION-SET",
    )
)
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext, bounded
# type/subtype, each an RFC 2045 token
_MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,127}/[A-Za-z0-9!#$%&'*+.^_`|~-]{1,127}$")
# iMIP (RFC 6047 2.4): a text/calendar part carries its iTIP method as a Content-Type parameter.
_ITIP_METHOD_RE = re.compile(
    r';\s*method\s*=\s*(?:"([A-Za-z-]{1,20})"|([A-Za-z-]{1,20}))\s*(?:;|$)', re.IGNORECASE
)
_CONTENT_ID_RE = re.compile(r"^[!-;=?-~]{1,250}$")  # printable ASCII, no space or angle bracket


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(slots=True)
class Draft:
    sender: str | Address  # the mailbox or one of its identities
    to: Sequence[str | Address]
    cc: Sequence[str | Address] = field(default_factory=list)
    bcc: Sequence[str | Address] = field(default_factory=list)
    reply_to: Sequence[str | Address] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[OutgoingAttachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Composed:
    raw: bytes
    message_id: str
    envelope_from: str
    recipients: list[str]  # to + cc + bcc, bare addresses, lower-cased domain
    sender: Address
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]


def as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_custom_headers(headers: dict[str, str]) -> None:
    """Custom headers a send may carry: valid names, no reserved ones, values a header can carry.
    Checked while composing, and on its own by callers that want to refuse a request before costly
    work."""
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise ComposeError("headers", f"at most {MAX_CUSTOM_HEADERS} custom headers")
    for name, value in headers.items():
        if not _HEADER_NAME_RE.match(name):
            raise ComposeError("headers", f"'{shown(name, 80)}' is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ComposeError(
                "headers", f"{name} is set by Mailroom and cannot be overridden", code="reserved_header"
            )
        check_header_text(f"headers.{name}", value)


def media_type(field_name: str, value: str, filename: str) -> tuple[str, str]:
    """(maintype, subtype) of an attachment: the given ``type/subtype`` (parameters dropped), else
    one guessed from the filename, else ``application/octet-stream``."""
    check_header_text(field_name, value)
    given = value.partition(";")[0].strip()
    chosen = given or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if not _MEDIA_TYPE_RE.match(chosen):
        raise ComposeError(field_name, f"'{shown(value, 80)}' is not a MIME type (type/subtype)")
    maintype, _, subtype = chosen.lower().partition("/")
    return maintype, subtype


def _message_ids(field_name: str, values: Sequence[str]) -> list[str]:
    ids = []
    for value in values:
        check_header_text(field_name, value)
        found = bracketed_message_id(value.strip())
        if found is None:
            raise ComposeError(
                field_name,
                f"{field_name}: '{shown(value)}' is not a Message-ID (<id@domain>, printable ASCII)",
            )
        ids.append(found)
    return ids


def _addresses(field_name: str, values: Sequence[str | Address]) -> list[Address]:
    return [parse_mailbox(field_name, value) for value in values]


def _set(message: EmailMessage, name: str, folded: str) -> None:
    message[name] = Written(name, folded)


def usable_content_id(value: str | None) -> str | None:
    """``value`` without its angle brackets when it can be a Content-ID, else None."""
    bare = (value or "").strip().strip("<>")
    return bare if _CONTENT_ID_RE.match(bare) else None


def _attach(message: EmailMessage, position: int, attachment: OutgoingAttachment) -> None:
    where = f"attachments.{position}"
    check_header_text(f"{where}.filename", attachment.filename)
    if not attachment.filename.strip():
        # Without one, a text part would be read back as the message's body.
        raise ComposeError(f"{where}.filename", f"{where}.filename: an attachment needs a filename")
    maintype, subtype = media_type(f"{where}.content_type", attachment.content_type, attachment.filename)
    content_id = usable_content_id(attachment.content_id)
    if attachment.content_id and content_id is None:
        check_header_text(f"{where}.content_id", attachment.content_id)
        raise ComposeError(
            f"{where}.content_id",
            f"{where}.content_id: '{shown(attachment.content_id, 80)}' is not a Content-ID (printable ASCII, "
            "no spaces)",
        )
    message.add_attachment(
        attachment.content,
        maintype=maintype,
        subtype=subtype,
        filename=attachment.filename,
        disposition="inline" if attachment.inline else "attachment",
        cid=f"<{content_id}>" if content_id else None,
    )
    method = (
        _ITIP_METHOD_RE.search(attachment.content_type)
        if (maintype, subtype) == ("text", "calendar")
        else None
    )
    if method is not None:
        *_, part = message.iter_attachments()
        part.set_param("method", (method.group(1) or method.group(2)).upper())


def compose(draft: Draft, *, now: float | None = None, require_recipient: bool = True) -> Composed:
    """The MIME of ``draft``; ``require_recipient=False`` for a saved draft (not sent yet)."""
    sender = parse_mailbox("from", draft.sender)
    to = _addresses("to", draft.to)
    cc = _addresses("cc", draft.cc)
    bcc = _addresses("bcc", draft.bcc)
    reply_to = _addresses("reply_to", draft.reply_to)
    recipients = [a.address for a in to + cc + bcc]
    if not recipients and require_recipient:
        raise ComposeError("to", "at least one recipient is required")
    if len(recipients) > MAX_RECIPIENTS:
        raise ComposeError(
            "to",
            f"at most {MAX_RECIPIENTS} recipients (to + cc + bcc), got {len(recipients)}",
            code="too_many_recipients",
        )
    check_header_text("subject", draft.subject)
    if len(draft.subject) > MAX_SUBJECT_CHARS:
        raise ComposeError("subject", f"subject is longer than {MAX_SUBJECT_CHARS} characters")
    check_custom_headers(draft.headers)
    in_reply_to = _message_ids("in_reply_to", [draft.in_reply_to] if draft.in_reply_to else [])
    references = _message_ids("references", draft.references)[-MAX_REFERENCES:]
    for name, body in (("text", draft.text), ("html", draft.html)):
        if body is not None:
            check_body_text(name, body)

    message = EmailMessage(policy=policy.SMTP)
    _set(message, "From", address_header("From", [sender]))
    if to:
        _set(message, "To", address_header("To", to))
    if cc:
        _set(message, "Cc", address_header("Cc", cc))
    if reply_to:
        _set(message, "Reply-To", address_header("Reply-To", reply_to))
    _set(message, "Subject", unstructured("Subject", draft.subject))
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    _set(message, "Date", format_datetime(moment))
    rfc_message_id = make_msgid(domain=sender.address.rpartition("@")[2])
    _set(message, "Message-ID", rfc_message_id)
    if in_reply_to:
        _set(message, "In-Reply-To", in_reply_to[0])
    if references:
        _set(message, "References", fold("References", references))
    _set(message, "MIME-Version", "1.0")
    for name, value in draft.headers.items():
        _set(message, name, unstructured(name, value, encode=False))

    text = draft.text if draft.text is not None else ("" if draft.html is None else None)
    if text is not None:
        message.set_content(text)
        if draft.html is not None:
            message.add_alternative(draft.html, subtype="html")
    else:
        message.set_content(draft.html or "", subtype="html")
    for position, attachment in enumerate(draft.attachments):
        _attach(message, position, attachment)
    raw = message.as_bytes()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ComposeError(
            "attachments",
            f"the encoded message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes",
            code="message_too_large",
        )
    return Composed(
        raw=raw,
        message_id=rfc_message_id,
        envelope_from=sender.address,
        recipients=recipients,
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
    )


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """``raw`` with its Message-ID header (folded or not) replaced, or added when missing: what SES does
    to a message it sends. CRLF or bare LF line ends, whichever the message uses."""
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    head, separator, body = raw.partition(newline * 2)
    kept: list[bytes] = []
    replaced = skipping = False
    for line in head.split(newline):
        if skipping and line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the header being replaced
        skipping = False
        if line.lower().startswith(b"message-id:"):
            skipping = True
            if not replaced:
                kept.append(b"Message-ID: " + message_id.encode())
                replaced = True
            continue
        kept.append(line)
    if not replaced:
        kept.insert(0, b"Message-ID: " + message_id.encode())
    return newline.join(kept) + separator + body
