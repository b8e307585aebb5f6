"""Forwarding a received message to an external address, as SES can send it.

SES sends only from verified identities, so a forward cannot keep the original ``From``: it goes out
from the forwarding address (``"Ann Example via Mailroom" <alias@our-domain>``) with ``Reply-To``
the original sender, so replies still reach them. The original ``Message-ID`` is appended to
``References`` (SES gives the forward its own id) so the target's client threads it with the
conversation. Headers that would be false or refused after the rewrite go: the sender's DKIM and
ARC signatures (they cover the old From), SES's own receipt headers, ``Return-Path``, ``Sender``,
``Bcc``. The body is left byte for byte, so attachments arrive exactly as received. The new
``From`` and ``Reply-To`` are written from ``Address`` values (``mail.addresses``): whatever the
original sender's name holds, it stays a name; a Reply-To address no header of ours can carry (not
one mailbox, non-ASCII) is left out.

Loops: each forward adds ``Delivered-To: <forwarding address>`` (what Postfix and others do); a
message that already carries that line for an address, or too many of them, is not forwarded again.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from mailroom.mail.addresses import Address, address_header, clean_name, parse_mailbox
from mailroom.mail.header_text import ComposeError, bracketed_message_id, fold
from mailroom.mail.parse import one_line

MAX_FORWARD_HOPS = 10
MAX_DISPLAY_NAME_CHARS = 100
_DROPPED = re.compile(
    r"^(from|reply-to|sender|return-path|bcc|message-id|references|dkim-signature|domainkey-signature"
    r"|arc-[a-z-]+|authentication-results|received-spf|x-ses-[a-z-]+)$",
    re.IGNORECASE,
)
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def _split(raw: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(header fields, each with its continuation lines and line ending; the blank line; the body)."""
    match = _HEADER_END_RE.search(raw)
    if match is None:
        block, separator, body = raw, b"", b""
    else:
        # The blank line's own line ending belongs to the separator, the one before to the last field.
        first_eol = raw.index(b"\n", match.start()) + 1
        block, separator, body = raw[:first_eol], raw[first_eol : match.end()], raw[match.end() :]
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, separator, body


def _name_of(field: bytes) -> str:
    return field.split(b":", 1)[0].decode("ascii", "replace").strip().lower()


def delivered_to(raw: bytes) -> list[str]:
    """The ``Delivered-To`` addresses the message already carries (lower case)."""
    fields, _, _ = _split(raw)
    found = []
    for field in fields:
        if _name_of(field) == "delivered-to":
            value = field.split(b":", 1)[1].decode("utf-8", "replace")
            found += [a.lower() for _, a in getaddresses([" ".join(value.split())]) if a]
    return found


def is_looping(raw: bytes, forwarder: str) -> bool:
    seen = delivered_to(raw)
    return forwarder.lower() in seen or len(seen) >= MAX_FORWARD_HOPS


def _mailbox(value: str) -> Address | None:
    """``value`` as a mailbox a header of ours can carry, or None (received mail may hold others)."""
    try:
        return parse_mailbox("reply_to", value)
    except ComposeError:
        return None


def forwarded(
    raw: bytes,
    *,
    forwarder: str,
    original_from: str | None,
    original_reply_to: list[str],
    original_message_id: str | None,
    references: list[str],
) -> bytes:
    """The message to send to the forwarding targets (see the module docstring)."""
    fields, separator, body = _split(raw)
    eol = b"\r\n" if b"\r\n" in (fields[0] if fields else b"\r\n") else b"\n"
    kept = [f for f in fields if b":" in f and not _DROPPED.match(_name_of(f))]
    sender = _mailbox(original_from) if original_from else None
    if sender is not None:
        label = sender.name or sender.address
    else:
        pairs = getaddresses([original_from]) if original_from else []
        label = (pairs[0][0] or pairs[0][1]) if pairs else ""
    label = one_line(label or "Unknown sender")[:MAX_DISPLAY_NAME_CHARS]
    new = [
        ("Delivered-To", forwarder),
        ("From", address_header("From", [Address(clean_name(f"{label} via Mailroom"), forwarder)])),
    ]
    given = original_reply_to or ([original_from] if original_from else [])
    reply_to = [a for a in (_mailbox(v) for v in given[:10]) if a is not None]
    if reply_to:
        new.append(("Reply-To", address_header("Reply-To", reply_to)))
    ids = [*references, *([original_message_id] if original_message_id else [])]
    chain = list(dict.fromkeys(i for i in (bracketed_message_id(r) for r in ids) if i))
    if chain:
        # Folded between ids: a long chain must not make a line over SMTP's 998 characters.
        new.append(("References", fold("References", chain[-20:])))
    head = b"".join(
        f"{name}: {value}".replace("\n", eol.decode()).encode("ascii") + eol for name, value in new
    )
    if not separator:
        separator = eol
    return head + b"".join(kept) + separator + body
