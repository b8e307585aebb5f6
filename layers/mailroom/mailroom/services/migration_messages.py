"""One fetched message into the target mailbox: parse it, skip it if the mailbox has it already
(``skip_duplicates``), else deliver it through services/mail_delivery.py, the mail flow's single
store path, with the source's flags and received date. Runs on a pool thread of the batch.

A duplicate is the same message, not merely one with the same Message-ID (domain/duplicates.py).
The lookup is keyed on the Message-ID: one Query of the mailbox's Message-ID index returns the
messages that share it (almost always none or one), each with the content fingerprint stored when
it was imported, compared here; it is the one read per message the check always cost. A message
stored without a fingerprint (delivered by mail, or imported before fingerprints) whose Date, From
and Subject match has its raw bytes read once to compute one. Without a Message-ID, a marker keyed
on the message's SHA-256 (written for every message imported without one) finds it: one GetItem.

Two copies of one message handled at the same moment by batches running in parallel may both be
imported (the index is eventually consistent); never is a distinct message skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mailroom import clock
from mailroom.domain import duplicates
from mailroom.domain import migrations as rules
from mailroom.mail import threading
from mailroom.mail.parse import ParsedMessage, Unparseable, parse
from mailroom.services.migration_context import MigrationFailed
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
    """Stores one fetched message (runs on a pool thread: boto3 clients are thread-safe)."""

    def __init__(self, table: Table, job: Item, mailbox: Item, batch: Item) -> None:
        self.table, self.job, self.mailbox, self.batch = table, job, mailbox, batch
        self.skip_duplicates = bool(job.get("skip_duplicates", True))
        self.direction = "outbound" if batch.get("target_key") == "sent" else "inbound"

    def __call__(self, fetched: FetchedMessage) -> Outcome:
        """Store it; a transient AWS error is tried again here before it stops the batch (storing
        is idempotent: the message's ids derive from its source)."""
        from mailroom.store.retry import retried

        return retried(lambda: self._store(fetched))

    def _store(self, fetched: FetchedMessage) -> Outcome:
        from mailroom.services.mail_delivery import Incoming, MetadataTooLarge, deliver
        from mailroom.store.mail import Stored

        batch, job, mailbox = self.batch, self.job, self.mailbox
        source_id = rules.source_id(job["id"], str(batch["raw_name"]), int(batch["uidvalidity"]), fetched.uid)
        try:
            parsed = parse(fetched.raw)
        except Unparseable as problem:
            return Outcome("failed", f"UID {fetched.uid}: {problem.reason} ({problem.detail[:120]})")
        if self.skip_duplicates:
            known = self._known(parsed, fetched.raw, source_id)
            if known == "ours":
                return Outcome("imported")
            if known == "other":
                return Outcome("skipped")
        flags = {flag.casefold() for flag in fetched.flags}
        incoming = Incoming(
            org_id=job["org_id"],
            mailbox=mailbox,
            raw=fetched.raw,
            parsed=parsed,
            folder_key=str(batch["target_key"]),
            direction=self.direction,
            received_at=self._received_at(fetched, parsed.date),
            source_id=source_id,
            seen="\\seen" in flags,
            flagged="\\flagged" in flags,
            extra={
                "migration_id": job["id"],
                "migration_source": source_id,
                # What a later import compares to tell this message from others with its Message-ID.
                "content_fingerprint": duplicates.fingerprint(fetched.raw),
            },
            meter={"messages_imported": 1},
        )
        try:
            outcome = deliver(self.table, incoming)
        except MetadataTooLarge as exc:
            return Outcome("failed", f"UID {fetched.uid}: too large to store ({str(exc)[:120]})")
        if outcome.stored is Stored.NO_MAILBOX:
            raise MigrationFailed(
                rules.TARGET_UNAVAILABLE, "The target mailbox was deleted during the migration."
            )
        if outcome.stored is Stored.OVER_QUOTA:
            return Outcome("failed", f"UID {fetched.uid}: the mailbox's quota is full (message quarantined)")
        if not parsed.message_id:
            # Without a Message-ID, its bytes are what a later run with skip_duplicates recognises.
            store.put_digest_marker(
                self.table,
                job["org_id"],
                mailbox["id"],
                duplicates.digest(fetched.raw),
                message_id=str(outcome.message["id"]),
                source_id=source_id,
            )
        return Outcome("imported")

    def _received_at(self, fetched: FetchedMessage, date_header: str | None) -> datetime:
        """The source's INTERNALDATE; else the Date header; else when the job was created. Never
        "now": the stored message's id derives from it, and a re-run must derive the same one."""
        if fetched.internal_date is not None:
            return fetched.internal_date
        return clock.parse_iso(date_header or str(self.job["created_at"]))

    def _known(self, parsed: ParsedMessage, raw: bytes, source_id: str) -> str | None:
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
