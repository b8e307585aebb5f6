"""Build outbound MIME with the standard library, refusing anything that could inject headers.

Rules (each failure is a ``ComposeError`` with the field, a stable code and a message that states
the limit): no CR, LF or NUL in any address, the subject, or a custom header's name or value; no
overriding of reserved headers; at most ``MAX_RECIPIENTS`` recipients (to + cc + bcc); at most
``MAX_MESSAGE_BYTES`` once encoded. Bcc recipients are envelope recipients only, never a header.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid

MAX_RECIPIENTS = 50
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # what fits through API Gateway's 10 MB request limit, encoded
MAX_SUBJECT_CHARS = 998
MAX_CUSTOM_HEADERS = 50
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
_FORBIDDEN_CHARS = ("\r", "\n", "\x00")
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext, bounded
_LOCAL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


class ComposeError(ValueError):
    def __init__(self, field_name: str, message: str, code: str = "validation_error") -> None:
        super().__init__(message)
        self.field = field_name
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(slots=True)
class Draft:
    sender: str  # "Name <addr>" or "addr": the mailbox or one of its identities
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
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


def _no_injection(field_name: str, value: str) -> None:
    if any(c in value for c in _FORBIDDEN_CHARS):
        raise ComposeError(field_name, f"{field_name} must not contain CR, LF or NUL characters")


def as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def parse_address(field_name: str, value: str) -> tuple[str, str]:
    """(display name, address) of one recipient, strictly validated."""
    _no_injection(field_name, value)
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ComposeError(field_name, f"{field_name}: '{value[:100]}' is not one email address")
    name, address = pairs[0]
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_RE.match(local) or ".." in local or not _DOMAIN_RE.match(domain):
        raise ComposeError(field_name, f"{field_name}: '{address[:100]}' is not a valid email address")
    return name, f"{local}@{domain.lower()}"


def _formatted(field_name: str, values: list[str]) -> list[str]:
    return [formataddr(parse_address(field_name, v)) for v in values]


def check_custom_headers(headers: dict[str, str]) -> None:
    """Custom headers a send may carry: valid names, no reserved ones, no injection. Checked while
    composing, and on its own by callers that want to refuse a request before costly work."""
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise ComposeError("headers", f"at most {MAX_CUSTOM_HEADERS} custom headers")
    for name, value in headers.items():
        if not _HEADER_NAME_RE.match(name):
            raise ComposeError("headers", f"'{name[:80]}' is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ComposeError(
                "headers", f"{name} is set by Mailroom and cannot be overridden", code="reserved_header"
            )
        _no_injection(f"headers.{name}", value)


def compose(draft: Draft, *, now: float | None = None) -> Composed:
    sender_name, sender = parse_address("from", draft.sender)
    to = _formatted("to", draft.to)
    cc = _formatted("cc", draft.cc)
    bcc = _formatted("bcc", draft.bcc)
    reply_to = _formatted("reply_to", draft.reply_to)
    recipients = [parse_address("to", a)[1] for a in to + cc + bcc]
    if not recipients:
        raise ComposeError("to", "at least one recipient is required")
    if len(recipients) > MAX_RECIPIENTS:
        raise ComposeError(
            "to",
            f"at most {MAX_RECIPIENTS} recipients (to + cc + bcc), got {len(recipients)}",
            code="too_many_recipients",
        )
    _no_injection("subject", draft.subject)
    if len(draft.subject) > MAX_SUBJECT_CHARS:
        raise ComposeError("subject", f"subject is longer than {MAX_SUBJECT_CHARS} characters")
    check_custom_headers(draft.headers)
    for reference in [draft.in_reply_to or "", *draft.references]:
        _no_injection("references", reference)

    message = EmailMessage(policy=policy.SMTP)
    message["From"] = formataddr((sender_name, sender))
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = draft.subject
    message["Date"] = formatdate(now, usegmt=True)
    message_id = make_msgid(domain=sender.rpartition("@")[2])
    message["Message-ID"] = message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        message["References"] = " ".join(draft.references[-20:])
    message["MIME-Version"] = "1.0"
    for name, value in draft.headers.items():
        message[name] = value

    text = draft.text if draft.text is not None else ("" if draft.html is None else None)
    if text is not None:
        message.set_content(text)
        if draft.html is not None:
            message.add_alternative(draft.html, subtype="html")
    else:
        message.set_content(draft.html or "", subtype="html")
    for attachment in draft.attachments:
        _no_injection("attachments.filename", attachment.filename)
        content_type = (
            attachment.content_type
            or mimetypes.guess_type(attachment.filename)[0]
            or "application/octet-stream"
        )
        maintype, _, subtype = content_type.partition("/")
        if not subtype or any(c in content_type for c in _FORBIDDEN_CHARS):
            raise ComposeError("attachments.content_type", f"'{content_type[:80]}' is not a MIME type")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            disposition="inline" if attachment.inline else "attachment",
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    raw = message.as_bytes()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ComposeError(
            "attachments",
            f"the encoded message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes",
            code="message_too_large",
        )
    return Composed(raw=raw, message_id=message_id, envelope_from=sender, recipients=recipients)


def address_only(value: str) -> str:
    """The bare, lower-cased address of ``"Name <addr>"``: Mailroom addresses are case-insensitive."""
    name_addr = getaddresses([value])
    return (name_addr[0][1] if name_addr and name_addr[0][1] else value).strip().lower()


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
