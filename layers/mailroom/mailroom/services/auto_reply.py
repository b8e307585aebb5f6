"""A mailbox's auto-reply (vacation): its settings, and the reply itself (docs/rules.md).

The reply goes out through the normal send path (``services.sending.send``: the mailbox must be
allowed to send, the suppression list holds, SES sends it, a Sent copy and a ``message.sent`` event
are stored), as a reply to the received message (``In-Reply-To``, ``References``) carrying
``Auto-Submitted: auto-replied`` (RFC 3834) so other robots do not answer it. At most one reply per
sender per interval: an expiring marker written conditionally before sending (store.rules.
claim_reply), so a retried inbound event or two messages arriving together never send two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailroom import clock, errors
from mailroom.domain import auto_reply as rules
from mailroom.domain.auto_reply import AutoReply
from mailroom.errors import MailroomError
from mailroom.mail.parse import ParsedMessage
from mailroom.observability import logger
from mailroom.store import rules as store
from mailroom.store.table import Item, Table


def view(item: Item | None) -> dict[str, Any]:
    settings = rules.from_item(item)
    return {**settings.as_dict(), "updated_at": (item or {}).get("updated_at")}


def load(table: Table, mailbox: Item) -> Item | None:
    return store.get_auto_reply(table, mailbox["org_id"], mailbox["id"])


def _moment(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return clock.isoformat(clock.parse_iso(value))
    except ValueError as exc:
        raise errors.validation(f"{field} is not an ISO 8601 timestamp", field=field) from exc


def settings_of(
    *,
    enabled: bool,
    subject: str | None,
    text: str | None,
    html: str | None,
    start: str | None,
    end: str | None,
    interval_days: int,
) -> AutoReply:
    """The settings as the API gives them, checked and normalized (timestamps in Mailroom's shape)."""
    if subject is not None and any(ord(c) < 32 or c == "\x7f" for c in subject):
        raise errors.validation(
            "the subject cannot contain control characters or line breaks", field="subject"
        )
    return validated(
        AutoReply(
            enabled=enabled,
            subject=subject or None,
            text=text or None,
            html=html or None,
            start=_moment(start, "start"),
            end=_moment(end, "end"),
            interval_days=interval_days,
        )
    )


def validated(settings: AutoReply) -> AutoReply:
    settings = settings.canonical()
    if settings.enabled and not (settings.text or settings.html):
        raise errors.validation(
            "an enabled auto-reply needs text or html", field="text", code="auto_reply_empty"
        )
    if settings.start and settings.end and settings.end <= settings.start:
        raise errors.validation("end must be after start", field="end")
    if not 1 <= settings.interval_days <= rules.MAX_INTERVAL_DAYS:
        raise errors.validation(f"interval_days is 1 to {rules.MAX_INTERVAL_DAYS}", field="interval_days")
    return settings


def set_auto_reply(table: Table, mailbox: Item, settings: AutoReply) -> Item:
    """Replace the auto-reply (under the version read: 409 concurrent_update otherwise)."""
    validated(settings)
    current = load(table, mailbox)
    fields = {**settings.as_dict(), "updated_at": clock.now_iso()}
    try:
        store.save(
            table,
            mailbox["org_id"],
            mailbox["id"],
            auto_reply=(fields, int((current or {}).get("version", 0))),
        )
    except store.MailboxGone as gone:
        raise errors.not_found("Mailbox") from gone
    except store.VersionChanged as changed:
        raise errors.concurrent_update() from changed
    return fields


def _references(message: ParsedMessage) -> list[str]:
    chain = [*message.references, *([message.message_id] if message.message_id else [])]
    return list(dict.fromkeys(chain))[-20:]


def reply(
    table: Table,
    mailbox: Item,
    settings: AutoReply,
    message: ParsedMessage,
    *,
    recipient: str,
    now: datetime,
) -> str:
    """Answer ``message`` (already found to qualify) unless ``recipient`` was answered within the
    interval. Returns the outcome for the processing log: ``sent``, ``already_replied`` or
    ``not_sent:<code>`` (a send refusal is logged, never raised: the message is stored already)."""
    from mailroom.services.sending import SendRequest, send

    if not store.claim_reply(
        table, mailbox["org_id"], mailbox["id"], recipient, interval_days=settings.interval_days, now=now
    ):
        return "already_replied"
    request = SendRequest(
        to=[recipient],
        subject=settings.reply_subject(message.subject),
        text=settings.text,
        html=settings.html,
        headers={"Auto-Submitted": "auto-replied"},
        labels=[rules.REPLY_LABEL],
        in_reply_to=message.message_id,
        references=_references(message),
    )
    try:
        send(table, mailbox, request, now=now)
    except MailroomError as refused:
        logger().warning(
            "auto-reply not sent",
            extra={"mailbox_id": mailbox["id"], "code": refused.code, "detail": refused.message[:300]},
        )
        return f"not_sent:{refused.code}"
    return "sent"
