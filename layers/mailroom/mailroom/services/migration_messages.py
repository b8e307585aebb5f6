"""What an import knows about one fetched message: its received date, and whether the target
mailbox has it already when the chunk's Message-ID entries cannot say (services/migration_chunks.py:
a target that held mail when the job was planned).

A duplicate is the same message, not merely one with the same Message-ID (domain/duplicates.py).
The lookup is keyed on the Message-ID: one Query of the mailbox's Message-ID index returns the
messages that share it (almost always none or one), each with the content fingerprint stored when
it was imported, compared here. A message stored without a fingerprint (delivered by mail, or
imported before fingerprints) whose Date, From and Subject match has its raw bytes read once to
compute one. Without a Message-ID, a marker keyed on the message's SHA-256 (written by imports
before the Message-ID entries) finds it: one GetItem.

Two copies of one message handled at the same moment by batches running in parallel may both be
imported (the index is eventually consistent); never is a distinct message skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mailroom import clock
from mailroom.domain import duplicates
from mailroom.mail import threading
from mailroom.mail.parse import ParsedMessage
from mailroom.store import mail as mail_store
from mailroom.store import mail_objects
from mailroom.store import migrations as store
from mailroom.store.errors import ObjectMissing
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.imap.source import FetchedMessage


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # imported | skipped | failed
    error: str | None = None


class Importer:
    """One batch's per-message rules (runs on pool threads: boto3 clients are thread-safe)."""

    def __init__(self, table: Table, job: Item, mailbox: Item, batch: Item) -> None:
        self.table, self.job, self.mailbox, self.batch = table, job, mailbox, batch
        self.skip_duplicates = bool(job.get("skip_duplicates", True))
        self.direction = "outbound" if batch.get("target_key") == "sent" else "inbound"

    def received_at(self, fetched: FetchedMessage, date_header: str | None) -> datetime:
        """The source's INTERNALDATE; else the Date header; else when the job was created. Never
        "now": the stored message's id derives from it, and a re-run must derive the same one."""
        if fetched.internal_date is not None:
            return fetched.internal_date
        return clock.parse_iso(date_header or str(self.job["created_at"]))

    def known(self, parsed: ParsedMessage, raw: bytes, source_id: str) -> str | None:
        """``ours`` (this job stored it before), ``other`` (the mailbox has the same message
        otherwise) or None (import it)."""
        org_id, mailbox_id = self.job["org_id"], self.mailbox["id"]
        if parsed.message_id:
            candidates = store.messages_with_message_id(
                self.table, org_id, mailbox_id, threading.message_id_key(parsed.message_id)
            )
            if any(found.get("migration_source") == source_id for found in candidates):
                return "ours"
            fingerprint = duplicates.fingerprint(raw)
            if any(self._same(found, parsed, fingerprint) for found in candidates):
                return "other"
            return None
        marker = store.get_digest_marker(self.table, org_id, mailbox_id, duplicates.digest(raw))
        if marker is None:
            return None
        if marker.get("source_id") == source_id:
            return None  # ours, maybe half-stored: delivering again is idempotent
        still_there = mail_store.get_message(self.table, org_id, mailbox_id, str(marker["message_id"]))
        return "other" if still_there is not None else None

    @staticmethod
    def _same(found: Item, parsed: ParsedMessage, fingerprint: str) -> bool:
        """Whether a stored message with the same Message-ID is this message."""
        if found.get("content_fingerprint"):
            return bool(found["content_fingerprint"] == fingerprint)
        # Stored without a fingerprint. Its parsed Date, From and Subject come from the same parser:
        # if one differs, so do the headers, and no read is needed to tell them apart.
        if (found.get("date"), found.get("from"), found.get("subject")) != (
            parsed.date,
            parsed.from_,
            parsed.subject,
        ) or not found.get("raw_key"):
            return False
        try:
            stored = mail_objects.get_bytes(str(found["raw_key"]))
        except ObjectMissing:
            return False
        return duplicates.fingerprint(stored) == fingerprint
