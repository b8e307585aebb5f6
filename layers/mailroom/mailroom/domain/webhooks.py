"""Webhooks, the pure part: event types, signing secrets, Standard Webhooks signatures, the retry
schedule, URL syntax and the payload a delivery carries. No I/O here.

Signatures follow the Standard Webhooks specification (https://www.standardwebhooks.com): the
signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256 keyed with the bytes of
the base64 secret after ``whsec_``, sent as ``v1,<base64 signature>``; several signatures (one per
active secret, during a rotation) are space-separated in one ``webhook-signature`` header.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import math
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

# The events a webhook can subscribe to (agentmail-v0-api.txt's list, plus migrations).
EVENT_TYPES: tuple[str, ...] = (
    "message.received",
    "message.sent",
    "message.delivered",
    "message.bounced",
    "message.complained",
    "message.rejected",
    "domain.verified",
    "migration.completed",
    "migration.failed",
    # Support tickets (docs/tickets.md): organization events, no mailbox.
    "ticket.created",
    "ticket.replied",
    "ticket.closed",
)
# What ``/api/v0`` offers: agentmail-v0-api.txt's list exactly (migrations are a v1 feature).
V0_EVENT_TYPES: tuple[str, ...] = EVENT_TYPES[:7]
# Sent by ``POST /webhooks/{id}:test`` to that one webhook, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook.test"

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
SIGNATURE_VERSION = "v1"

# Standard Webhooks' example schedule: the delay before each retry, after the first attempt.
DEFAULT_RETRY_SCHEDULE: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
RETRY_JITTER = 0.1  # up to +10%: endpoints recovering from an outage are not hit by every retry at once
DISABLE_AFTER_SECONDS = 5 * 86400  # failing continuously this long disables an endpoint
RETRY_AFTER_CAP_SECONDS = 86400  # an endpoint's Retry-After is honoured up to a day

# Message payloads carry metadata and a preview; bodies larger than this are left out (fetch by id).
MAX_INLINE_BODY_BYTES = 64 * 1024
_BODY_FIELDS = ("text", "html", "extracted_text", "extracted_html")
MAX_URL_LENGTH = 2048


class InvalidWebhookUrl(ValueError):
    """A URL that can never be a webhook target (syntax, scheme, credentials)."""


def known_event_types(requested: Iterable[str], allowed: Sequence[str]) -> list[str]:
    """The requested types without repeats, in order; ValueError naming any not in ``allowed``."""
    requested = list(requested)
    unknown = [t for t in requested if t not in allowed]
    if unknown:
        raise ValueError(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(allowed)}")
    return list(dict.fromkeys(requested))


def mailbox_filter(mailbox_ids: Iterable[str]) -> list[str]:
    """A webhook's mailbox filter without repeats, in order; ValueError when an id cannot be one."""
    mailbox_ids = list(mailbox_ids)
    if any(not m or len(m) > 64 for m in mailbox_ids):
        raise ValueError("mailbox ids are 1 to 64 characters")
    return list(dict.fromkeys(mailbox_ids))


# ----------------------------------------------------------------------------- secrets


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the format receivers' Standard Webhooks libraries take)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the bytes its base64 encodes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    raw = secret[len(SECRET_PREFIX) :]
    key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    if not key:
        raise ValueError("a webhook secret cannot be empty")
    return key


# ----------------------------------------------------------------------------- signatures


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``msg_id.timestamp.body``."""
    if "." in msg_id:
        # A dot in the id would make "id.timestamp.body" ambiguous (the spec forbids it).
        raise ValueError("a webhook-id cannot contain '.'")
    signed = msg_id.encode() + b"." + str(int(timestamp)).encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per key, space-separated, in the given order."""
    signatures = [sign(key, msg_id, timestamp, body) for key in keys]
    if not signatures:
        raise ValueError("at least one signing key is needed")
    return " ".join(signatures)


def headers(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
    }


# ----------------------------------------------------------------------------- retries


def parse_schedule(raw: str | None) -> tuple[int, ...]:
    """``"5,300,1800"`` → ``(5, 300, 1800)``: seconds before each retry; empty means the default."""
    if raw is None or not raw.strip():
        return DEFAULT_RETRY_SCHEDULE
    try:
        delays = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"a retry schedule is comma-separated whole seconds, got {raw!r}") from exc
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"a retry schedule needs at least one delay and no negative ones, got {raw!r}")
    return delays


def max_attempts(schedule: Sequence[int]) -> int:
    """The first attempt plus one retry per delay."""
    return len(schedule) + 1


def retry_delay(
    schedule: Sequence[int],
    attempts_made: int,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, after ``attempts_made`` failed ones; None when that
    was the last attempt.

    A ``Retry-After`` the endpoint sent is honoured when it asks for more than the schedule, up to a
    day (an endpoint cannot park a delivery for a week). Jitter only ever lengthens the wait, so the
    schedule is a lower bound.
    """
    if attempts_made < 1:
        return 0.0
    if attempts_made >= max_attempts(schedule):
        return None
    delay = float(schedule[attempts_made - 1])
    delay *= 1 + (rng or random).random() * RETRY_JITTER
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, float(RETRY_AFTER_CAP_SECONDS))
    return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def should_disable(first_failure_epoch: float | None, now_epoch: float) -> bool:
    """An endpoint failing continuously (no success since its first failure) for five days."""
    return first_failure_epoch is not None and now_epoch - first_failure_epoch >= DISABLE_AFTER_SECONDS


# ----------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    url: str
    scheme: str
    host: str  # lower case, IDN as punycode, IPv6 without brackets
    port: int


def parse_url(raw: str, *, allow_http: bool = False) -> WebhookUrl:
    """Check a webhook URL's syntax: https (http only when allowed), a host, no credentials, no
    fragment. Whether its host is a public address is decided when it is resolved."""
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in raw):
        raise InvalidWebhookUrl("the URL contains whitespace or control characters")
    try:
        parts: SplitResult = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"the URL is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        raise InvalidWebhookUrl("the URL must use https")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("credentials in the URL are not allowed; verify the signature instead")
    if parts.fragment:
        raise InvalidWebhookUrl("the URL cannot have a #fragment")
    host = parts.hostname or ""
    if not host:
        raise InvalidWebhookUrl("the URL has no host")
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip_literal(host) else host
    except UnicodeError as exc:
        raise InvalidWebhookUrl(f"the host {host!r} is not a valid name") from exc
    return WebhookUrl(
        url=raw, scheme=scheme, host=host.lower(), port=port or (443 if scheme == "https" else 80)
    )


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- payloads


def payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a delivery's body carries: ``{"type": "event", event_id, event_type, created_at, data}``.

    ``data`` is the resource as the API returns it, recorded when the event happened. Message
    payloads keep their metadata, preview and links; their bodies are left out when together they
    exceed 64 KB (``body_omitted: true``), to be fetched by id.
    """
    data = dict(event.get("data") or {})
    if str(event["event_type"]).startswith("message."):
        data = _without_large_body(data)
    return {
        "type": "event",
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "created_at": event["created_at"],
        "data": data,
    }


def _without_large_body(data: dict[str, Any]) -> dict[str, Any]:
    size = sum(len(str(data[f]).encode()) for f in _BODY_FIELDS if data.get(f) is not None)
    if size <= MAX_INLINE_BODY_BYTES:
        return data
    trimmed = {k: v for k, v in data.items() if k not in _BODY_FIELDS}
    trimmed["body_omitted"] = True
    return trimmed


def encode_payload(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact JSON, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def matches(webhook: Mapping[str, Any], event_type: str, data: Mapping[str, Any]) -> bool:
    """Does a webhook subscribe to this event? By type, and by mailbox when it filters by mailbox.

    The mailbox filter applies to events that belong to a mailbox (``mailbox_id`` or ``inbox_id``
    in the data); organization-wide events (domains, migrations) pass it.
    """
    if event_type not in (webhook.get("event_types") or ()):
        return False
    mailboxes = webhook.get("mailbox_ids") or []
    if not mailboxes:
        return True
    mailbox = data.get("mailbox_id") or data.get("inbox_id")
    return mailbox is None or mailbox in mailboxes


def ceil_seconds(value: float) -> int:
    return max(0, math.ceil(value))
