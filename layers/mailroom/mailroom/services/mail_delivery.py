"""Put one message into one mailbox: the single path for inbound mail, sent copies and imports.

Order of work: choose the message id (deterministic when the source has a stable id, so a
redelivered SES event or a retried import stores nothing twice), find the thread, write the bytes
to S3, then one DynamoDB transaction (store.mail.store_message). Over quota, the bytes move to
quarantine instead: nothing is lost and nothing bounces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, ids
from mailroom.mail import threading
from mailroom.mail.parse import ParsedMessage
from mailroom.store import events, mail_objects
from mailroom.store import mail as store
from mailroom.store.errors import ItemTooLarge
from mailroom.store.mail import Stored, ThreadChange
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op

INLINE_BODY_BYTES = 16 * 1024  # text + html + headers up to this stay in the DynamoDB item
MAX_INLINE_HEADERS = 60


@dataclass(slots=True)
class Incoming:
    """What to store, and how."""

    org_id: str
    mailbox: Item
    raw: bytes
    parsed: ParsedMessage
    folder_key: str
    direction: str  # inbound | outbound
    received_at: datetime
    source_id: str | None = None  # stable id of the source (SES message id, UIDVALIDITY:UID, ...)
    raw_source_key: str | None = None  # copy the raw bytes from here instead of uploading them
    raw_source_bucket: str | None = None
    seen: bool = False
    flagged: bool = False
    labels: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. bcc, ses_message_id, delivery
    event_type: str | None = None  # message.received, message.sent, ... (None: no event)
    rfc_message_id: str | None = None  # overrides the parsed Message-ID (SES rewrites ours)
    # The message id to use ("msg_<ulid>"), when the caller needed it before storing (a send tags
    # its SES message with it, so delivery events find the Sent copy).
    message_id: str | None = None
    # False: no subject fallback (a forward sent through the v0 API starts a thread of its own).
    subject_threading: bool = True
    # More operations for the storing transaction (the rules' log entry, a check that the folder a
    # rule files into still exists): written with the message or not at all.
    also: list[Op] = field(default_factory=list)
    # Usage counters this message moves besides its stored bytes (store/usage.py COUNTERS:
    # messages_received, messages_sent, ...), in the same transaction.
    meter: dict[str, int] = field(default_factory=dict)
    # Messages of this mailbox the caller already looked up by RFC Message-ID (hash → item, None:
    # not stored), so finding the thread does not ask again (a reply's parent, read by the send).
    known_by_rfc_id: dict[str, Item | None] = field(default_factory=dict)
    # The thread chosen by the caller (id, current item or None for a new thread): an import batch
    # resolves a whole chunk's threads with a few batched reads instead of queries per message.
    thread: tuple[str, Item | None] | None = None


class MetadataTooLarge(ValueError):
    """The message's metadata does not fit a DynamoDB item (thousands of parts or recipients)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    stored: Stored
    message: Item


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message whose bytes are in S3, ready for its transaction (``commit``, or a collector's)."""

    incoming: Incoming
    message: Item
    change: ThreadChange
    event: Item | None
    quota_bytes: int | None


def _deterministic_ulid(at: datetime, seed: str) -> str:
    randomness = int(hashlib.sha256(seed.encode()).hexdigest()[:20], 16)
    return ids.ulid(int(at.timestamp() * 1000), randomness=randomness)


def source_message_id(received_at: datetime, source_id: str, mailbox_id: str) -> str:
    """The id ``deliver`` gives the copy of source ``source_id`` in ``mailbox_id`` (``msg_<ulid>``),
    for a caller that must name it before storing (the rules' processing log)."""
    return f"msg_{_deterministic_ulid(received_at, f'{source_id}:{mailbox_id}')}"


def _thread_for(table: Table, incoming: Incoming, rfc_message_id: str | None) -> tuple[str, Item | None]:
    """(thread id, current thread item or None) per mail.threading's rules."""
    org_id, mailbox_id, parsed = incoming.org_id, incoming.mailbox["id"], incoming.parsed
    for candidate in threading.parent_candidates(parsed.in_reply_to, parsed.references):
        if candidate == rfc_message_id:
            continue
        hashed = threading.message_id_key(candidate)
        if hashed in incoming.known_by_rfc_id:
            parent = incoming.known_by_rfc_id[hashed]
        else:
            parent = store.find_by_rfc_id(table, org_id, mailbox_id, hashed)
        if parent is not None:
            return parent["thread_id"], store.get_thread(table, org_id, mailbox_id, parent["thread_id"])
    if incoming.subject_threading and threading.is_reply_subject(parsed.subject):
        latest = store.latest_thread_with_subject(
            table, org_id, mailbox_id, threading.subject_key(parsed.subject)
        )
        cutoff = clock.isoformat(incoming.received_at - timedelta(days=threading.SUBJECT_FALLBACK_DAYS))
        if latest is not None and latest.get("last_activity_at", "") >= cutoff:
            return latest["id"], latest
    return f"thr_{ids.ulid(int(incoming.received_at.timestamp() * 1000))}", None


def _body_fields(incoming: Incoming, ulid: str) -> dict[str, Any]:
    parsed = incoming.parsed
    body = {"text": parsed.text, "html": parsed.html, "headers": parsed.headers[: MAX_INLINE_HEADERS * 4]}
    encoded = json.dumps(body, separators=(",", ":"))
    if len(encoded.encode()) <= INLINE_BODY_BYTES:
        return {"body": body}
    key = mail_objects.body_key(incoming.org_id, incoming.mailbox["id"], ulid)
    mail_objects.put_body(key, body)
    return {"body_key": key}


def _write_bytes(incoming: Incoming, ulid: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    org_id, mailbox_id = incoming.org_id, incoming.mailbox["id"]
    raw_key = mail_objects.raw_key(org_id, mailbox_id, ulid)
    if incoming.raw_source_key:
        mail_objects.copy(incoming.raw_source_key, raw_key, source_bucket=incoming.raw_source_bucket)
    else:
        mail_objects.put_bytes(raw_key, incoming.raw, content_type="message/rfc822")
    attachments = []
    for attachment in incoming.parsed.attachments:
        key = mail_objects.attachment_key(org_id, mailbox_id, ulid, attachment.index)
        mail_objects.put_bytes(key, attachment.payload, content_type=attachment.content_type)
        attachments.append(
            {
                "index": attachment.index,
                "attachment_id": f"att_{ulid}{attachment.index:04d}",
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "content_id": attachment.content_id,
                "disposition": attachment.disposition,
                "key": key,
            }
        )
    return raw_key, attachments, _body_fields(incoming, ulid)


def deliver(
    table: Table, incoming: Incoming, *, collect: Callable[[Prepared], None] | None = None
) -> Outcome:
    """Store the message. With ``collect``, everything up to the transaction is done (ids, thread,
    bytes in S3) and the prepared message goes to ``collect`` instead: the caller writes it with
    others (``Stored.DEFERRED``) or hands it back to ``commit``."""
    prepared = prepare(table, incoming)
    if collect is not None:
        collect(prepared)
        return Outcome(stored=Stored.DEFERRED, message=prepared.message)
    return commit(table, prepared)


def prepare(table: Table, incoming: Incoming) -> Prepared:
    parsed, mailbox = incoming.parsed, incoming.mailbox
    org_id, mailbox_id = incoming.org_id, mailbox["id"]
    if incoming.message_id:
        ulid = incoming.message_id.partition("_")[2]
    elif incoming.source_id:
        ulid = _deterministic_ulid(incoming.received_at, f"{incoming.source_id}:{mailbox_id}")
    else:
        ulid = ids.ulid(int(incoming.received_at.timestamp() * 1000))
    rfc_message_id = incoming.rfc_message_id or parsed.message_id
    thread_id, thread = incoming.thread or _thread_for(table, incoming, rfc_message_id)
    received_iso = clock.isoformat(incoming.received_at)
    raw_key, attachments, body = _write_bytes(incoming, ulid)

    message: Item = {
        "id": f"msg_{ulid}",
        "org_id": org_id,
        "mailbox_id": mailbox_id,
        "thread_id": thread_id,
        "folder_key": incoming.folder_key,
        "direction": incoming.direction,
        "from": parsed.from_,
        "from_address": parsed.from_address,
        "to": parsed.to,
        "cc": parsed.cc,
        "reply_to": parsed.reply_to,
        "subject": parsed.subject,
        "date": parsed.date,
        "received_at": received_iso,
        "rfc_message_id": rfc_message_id,
        "rfc_message_id_hash": threading.message_id_key(rfc_message_id) if rfc_message_id else None,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "preview": parsed.preview,
        "size": len(incoming.raw),
        "flags": {"seen": incoming.seen, "flagged": incoming.flagged, "answered": False, "draft": False},
        "labels": list(dict.fromkeys(incoming.labels))[: store.MAX_LABELS],
        "has_attachments": parsed.has_attachments,
        "attachments": attachments,
        "verdicts": incoming.verdicts,
        "raw_key": raw_key,
        "truncated": parsed.truncated,
        "created_at": clock.now_iso(),
        **body,
        **incoming.extra,
    }
    current: Item = thread or {}
    last_activity = max(received_iso, str(current.get("last_activity_at", "")))
    # An imported old message joins its thread without becoming its latest.
    is_latest = last_activity == received_iso
    participants = {a for a in [parsed.from_address] if a}
    recipients = {addr.rpartition("<")[2].rstrip(">").lower() for addr in parsed.to + parsed.cc}
    change = ThreadChange(
        thread_id=thread_id,
        subject=str(current.get("subject") or parsed.subject),
        subject_key=threading.subject_key(parsed.subject),
        last_activity_at=last_activity,
        preview=parsed.preview if is_latest else str(current.get("preview", parsed.preview)),
        last_message_id=message["id"] if is_latest else str(current.get("last_message_id", message["id"])),
        senders=participants,
        recipients=recipients,
        labels=set(message["labels"]),
        received_at=received_iso if incoming.direction == "inbound" and is_latest else None,
        sent_at=received_iso if incoming.direction == "outbound" and is_latest else None,
        created=thread is None,
    )
    event = None
    if incoming.event_type:
        from mailroom.services.mail_views import message_summary

        event = events.new_event(org_id, incoming.event_type, message_summary(message))
    quota_mb = mailbox.get("quota")
    quota_bytes = int(quota_mb) * 1024 * 1024 if quota_mb else None
    return Prepared(incoming=incoming, message=message, change=change, event=event, quota_bytes=quota_bytes)


def commit(table: Table, prepared: Prepared) -> Outcome:
    """The prepared message's transaction (store.mail.store_message); bytes of a refused one go
    (over quota: to quarantine)."""
    incoming, message, change, event = prepared.incoming, prepared.message, prepared.change, prepared.event
    parsed, quota_bytes = incoming.parsed, prepared.quota_bytes
    org_id, mailbox_id = incoming.org_id, incoming.mailbox["id"]
    quota_mb = incoming.mailbox.get("quota")
    try:
        stored = store.store_message(
            table,
            message,
            thread=change,
            quota_bytes=quota_bytes,
            event=event,
            also=incoming.also,
            meter=incoming.meter,
        )
    except ItemTooLarge as exc:
        # Refused for what the message is (metadata over DynamoDB's 400 KB item limit), not for a
        # transient reason: nothing was written, so the bytes go and the caller quarantines it.
        _withdraw(message)
        raise MetadataTooLarge(exc.message) from exc
    if stored in (Stored.OVER_QUOTA, Stored.NO_MAILBOX):
        _withdraw(message)
        if stored is Stored.OVER_QUOTA:
            quarantine_raw(
                table,
                org_id=org_id,
                mailbox_id=mailbox_id,
                raw=incoming.raw,
                reason="over_quota",
                detail=f"mailbox quota of {quota_mb} MB is full",
                received_at=incoming.received_at,
                source_id=incoming.source_id,
                envelope={"subject": parsed.subject, "from": parsed.from_address},
                source_key=incoming.raw_source_key,
                source_bucket=incoming.raw_source_bucket,
            )
    return Outcome(stored=stored, message=message)


def _withdraw(message: Item) -> None:
    """Remove the bytes written for a message the transaction refused."""
    doomed = [message["raw_key"], *(a["key"] for a in message["attachments"])]
    if message.get("body_key"):
        doomed.append(message["body_key"])
    mail_objects.delete(doomed)


def quarantine_raw(
    table: Table,
    *,
    org_id: str,
    mailbox_id: str | None,
    raw: bytes | None,
    reason: str,
    detail: str,
    received_at: datetime,
    source_id: str | None,
    envelope: dict[str, Any],
    source_key: str | None = None,
    source_bucket: str | None = None,
    size: int | None = None,
) -> Item:
    """Keep a message we will not put in any folder (virus, unparseable, over quota), with why.

    With ``source_key`` the bytes are copied server-side from there (``raw`` may then be None, e.g.
    a message too large to read; pass its ``size``)."""
    ulid = (
        _deterministic_ulid(received_at, f"quarantine:{source_id}:{mailbox_id}")
        if source_id
        else ids.ulid(int(received_at.timestamp() * 1000))
    )
    key = mail_objects.quarantine_key(org_id, mailbox_id, ulid)
    if source_key:
        mail_objects.copy(source_key, key, source_bucket=source_bucket)
    elif raw is not None:
        mail_objects.put_bytes(key, raw, content_type="message/rfc822")
    else:
        raise ValueError("quarantine_raw needs the raw bytes or a source_key to copy them from")
    record: Item = {
        "id": f"qtn_{ulid}",
        "org_id": org_id,
        "mailbox_id": mailbox_id,
        "reason": reason,
        "detail": detail[:500],
        "raw_key": key,
        "size": size if size is not None else len(raw or b""),
        "received_at": clock.isoformat(received_at),
        "source_id": source_id,
        **{k: v for k, v in envelope.items() if v is not None},
    }
    store.quarantine(table, record)
    return record
