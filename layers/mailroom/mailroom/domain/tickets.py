"""Support tickets, the pure part: statuses, the reply address of a ticket, what an emailed reply
says once the quoted thread is cut off, and the HMAC signature of the support endpoints.

A ticket is a thread between an organization and the platform operator (docs/tickets.md). Each
ticket has its own reply address on the platform domain, ``ticket+<ulid>-<token>@<platform domain>``:
the ULID names the ticket, the token (80 random bits, kept on the ticket) proves the mail answers
the message the operator was sent, so knowing a ticket's id is not enough to write into it.

The support endpoints (``/api/v1/support/...``) are called by the operator's automated support
pipeline with no token: each request carries ``X-Mailroom-Timestamp`` (Unix seconds) and
``X-Mailroom-Signature: v1=<hex HMAC-SHA256>`` over ``<timestamp>.<METHOD>.<path>.<body>`` keyed
with the stack's support secret. The method and path are signed with the timestamp and the body:
a DELETE has no body, and a signature over the timestamp alone would delete any message it was
replayed against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
STATUSES = (OPEN, ANSWERED, CLOSED)
ORGANIZATION, OPERATOR = "organization", "operator"
AUTHORS = (ORGANIZATION, OPERATOR)
# How a message reached the ticket.
VIA_API, VIA_EMAIL, VIA_CLI, VIA_SUPPORT_API = "api", "email", "cli", "support_api"
VIAS = (VIA_API, VIA_EMAIL, VIA_CLI, VIA_SUPPORT_API)

MAX_SUBJECT = 200
# Tickets an organization may have open (not closed) at once: a support channel, not a mail relay
# (each ticket and message is an email to the operator). The operator may always reopen one.
MAX_OPEN_TICKETS = 20
MAX_BODY = 20_000
MAX_REFERENCES = 20

REPLY_LOCAL_PREFIX = "ticket+"
_TOKEN_BYTES = 10  # 80 bits, 16 base32 characters
_REPLY_LOCAL_RE = re.compile(r"^ticket\+([0-9a-hjkmnp-tv-z]{26})-([a-z2-7]{16})$")
# Placed at the top of every email to the operator: everything from its quoted copy down is the
# thread being answered, not the answer.
REPLY_MARKER = "##- Reply above this line -##"
_ATTRIBUTION_RE = re.compile(r"^\s*(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.I | re.S)


def new_reply_token() -> str:
    return base64.b32encode(secrets.token_bytes(_TOKEN_BYTES)).decode().lower()


def reply_address(ticket_id: str, token: str, platform_domain: str) -> str:
    """The address the operator's replies to this ticket go to."""
    ulid = ticket_id.partition("_")[2].lower()
    return f"{REPLY_LOCAL_PREFIX}{ulid}-{token}@{platform_domain}"


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    ticket_id: str
    token: str


def parse_reply_address(address: str, platform_domain: str) -> ReplyAddress | None:
    """The ticket and token an address on the platform domain names, or None for any other address."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain != platform_domain.strip().rstrip(".").lower():
        return None
    match = _REPLY_LOCAL_RE.match(local)
    if match is None:
        return None
    return ReplyAddress(ticket_id=f"tkt_{match.group(1).upper()}", token=match.group(2))


def token_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def reply_text(text: str) -> str:
    """What an emailed reply adds to the thread: the text above the quoted copy of our message
    (our marker), above an attribution line (``On ... wrote:``, over two lines as Gmail wraps it,
    or Outlook's ``-----Original Message-----``), without trailing ``>`` quoted lines."""
    text = text.replace("\r\n", "\n")
    marker = text.find(REPLY_MARKER)
    if marker >= 0:
        text = text[:marker]
    lines = text.split("\n")
    for index in range(len(lines)):
        window = " ".join(line.strip() for line in lines[index : index + 2])
        first = lines[index].strip()
        if _ATTRIBUTION_RE.match(first) or (
            first.lower().startswith("on ") and _ATTRIBUTION_RE.match(window)
        ):
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        lines.pop()
    return "\n".join(lines).strip()


def email_subject(ticket_id: str, subject: str, *, reply: bool) -> str:
    return f"{'Re: ' if reply else ''}[{ticket_id}] {subject}"


def references(message_ids: list[str]) -> list[str]:
    """The References chain of the next email: the thread's message ids, oldest first, at most 20."""
    return list(dict.fromkeys(m for m in message_ids if m))[-MAX_REFERENCES:]


# ----------------------------------------------------------------------------- support signatures

TIMESTAMP_HEADER = "X-Mailroom-Timestamp"
SIGNATURE_HEADER = "X-Mailroom-Signature"
SIGNATURE_VERSION = "v1"
REPLAY_WINDOW_SECONDS = 300
MIN_SECRET_LENGTH = 32
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_RE = re.compile(r"^v1=([0-9a-f]{64})$")


class Refusal(StrEnum):
    """Why a signed request was refused (logged; the caller only ever hears 401)."""

    DISABLED = "disabled"  # the stack has no support secret
    MISSING = "missing"
    MALFORMED = "malformed"
    STALE = "stale"
    MISMATCH = "mismatch"
    REPLAYED = "replayed"


class SignatureRefused(ValueError):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


def signed_content(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}.{method.upper()}.{path}.".encode() + body


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The ``X-Mailroom-Signature`` value of a request (the operator's pipeline computes the same)."""
    digest = hmac.new(secret.encode(), signed_content(timestamp, method, path, body), hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify(
    secret: str | None,
    *,
    timestamp: str | None,
    signature: str | None,
    method: str,
    path: str,
    body: bytes,
    now: float,
) -> str:
    """The signature's hex digest when the request is signed with ``secret`` within the replay
    window; ``SignatureRefused`` otherwise. The digest is the request's nonce (one use only)."""
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        raise SignatureRefused(Refusal.DISABLED)
    if not timestamp or not signature:
        raise SignatureRefused(Refusal.MISSING)
    matched = _SIGNATURE_RE.match(signature.strip().lower())
    if not _TIMESTAMP_RE.match(timestamp) or matched is None:
        raise SignatureRefused(Refusal.MALFORMED)
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise SignatureRefused(Refusal.STALE)
    expected = sign(secret, timestamp, method, path, body).partition("=")[2]
    if not hmac.compare_digest(expected, matched.group(1)):
        raise SignatureRefused(Refusal.MISMATCH)
    return expected
