"""A chunk of an import batch (up to ``CHUNK`` fetched messages) stored with a handful of requests.

Per chunk: BatchGetItems (100 keys each) for the Message-ID entries of its messages and of their
parents (store/mail_batch.py), then for the messages those entries name (a duplicate is confirmed
against the message itself: entries outlive deleted messages) and the threads they belong to, the
bytes to S3 (one PUT per message, more for attachments; ``migration_store_threads`` at once,
through services/mail_delivery.py's single store path), then one transaction per group of
messages that fits TransactWriteItems (100 operations, under 4 MB): the messages, their threads,
the counters, the usage meter, their Message-ID entries, and, with the chunk's last group, the
batch's checkpoint and the folder's imported sets, and when nothing of the batch comes after the
chunk, the batch's counts (``store.count_batch``'s work: one transaction less per batch). Groups
are packed full from the chunk's end, keeping room for the checkpoint in the last one.

Why transactions and not BatchWriteItem for the message items: a transaction carries 100 writes, a
BatchWriteItem 25, and every message costs at least two writes that must be in a transaction
anyway (its Message-ID entry is an update; its thread's counts must move with it): the message
item in a BatchWriteItem would add a request per 25 messages and remove none. (It would halve
their write units: a transactional write costs two.)

Idempotent: message ids derive from the source, each message is written conditional on not
existing, and a group rejected only for messages that exist (a re-run after a crash or a Step
Functions retry) is written again without them: they were counted with the transaction that
stored them. A group rejected for anything else (the quota, a thread created or dropped meanwhile,
a metadata item too large) is written message by message through ``mail_delivery.commit``, whose
outcomes (quarantine over quota, ...) are those of a message delivered alone.

Lookups: the entries answer duplicates and parents for every message imported by this path. A
mailbox that held messages when the job was planned (``target_indexed`` false) may hold messages
without entries (delivered by mail, sent, imported before): there, what the entries do not answer
is asked as before, one GSI1 Query per message (services/migration_messages.py). Mail delivered
to an empty target during its migration has no entries either: a copy of it in the source is
imported (never is a distinct message skipped), as two copies handled at once always could be.
"""

from __future__ import annotations

import threading as pythreading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from mailroom import clock, ids
from mailroom.domain import duplicates
from mailroom.domain import migrations as rules
from mailroom.mail import threading
from mailroom.mail.parse import ParsedMessage, Unparseable, parse
from mailroom.observability import logger
from mailroom.services import mail_delivery
from mailroom.services.migration_context import MigrationFailed
from mailroom.services.migration_messages import Importer, Outcome
from mailroom.store import keys, mail_batch
from mailroom.store import mail as mail_store
from mailroom.store.errors import ItemTooLarge, StoreError
from mailroom.store.mail import Stored
from mailroom.store.mail_batch import Entry, Group, Pending
from mailroom.store.retry import retried
from mailroom.store.table import Item, Table
from mailroom.store.txn import MAX_OPERATIONS, Op, Rejected

if TYPE_CHECKING:
    from mailroom.imap.source import FetchedMessage

# Messages per chunk: a batch's 250 UIDs (the template's default) are one chunk, so its messages
# fill whole transactions (chunks of 100 left a short transaction at each chunk's end, and paid
# for their lookups three times); the bytes bound keeps a chunk of large messages in memory.
CHUNK = 250
CHUNK_BYTES = 48 * 1024 * 1024  # of fetched messages (the worker has 1,769 MB; two chunks are held)
GROUP_BYTES = 3 * 1024 * 1024  # of message items per transaction (TransactWriteItems: 4 MB in all)
METER = {"messages_imported": 1}

# (outcomes, count the batch too) → the caller's operations recording them.
Checkpoint = Callable[[dict[int, Outcome], bool], list[Op]]


@dataclass(slots=True)
class _Message:
    uid: int
    fetched: FetchedMessage
    parsed: ParsedMessage
    source_id: str
    fingerprint: str
    entry_key: str
    message_id: str  # msg_<ulid>, as deliver derives it
    outcome: Outcome | None = None
    thread: tuple[str, Item | None] | None = None
    prepared: mail_delivery.Prepared | None = None


@dataclass(slots=True)
class _Lookups:
    entries: dict[str, list[Entry]] = field(default_factory=dict)  # entry key → stored entries
    existing: set[str] = field(default_factory=set)  # message ids confirmed stored
    threads: dict[str, Item] = field(default_factory=dict)
    subjects: dict[str, tuple[str, str]] = field(default_factory=dict)  # subject key → latest thread


def entry_key(parsed: ParsedMessage, raw: bytes) -> str:
    """The entry key of a message: its Message-ID's hash, else the digest of its bytes."""
    if parsed.message_id:
        return keys.message_id_entries_sk(threading.message_id_key(parsed.message_id))
    return keys.message_id_entries_sk(f"digest-{duplicates.digest(raw)}")


class ChunkStore:
    """Stores chunks of one batch (one per call, in order)."""

    def __init__(self, table: Table, job: Item, mailbox: Item, batch: Item, pool: ThreadPoolExecutor) -> None:
        self.table, self.job, self.mailbox, self.batch, self.pool = table, job, mailbox, batch, pool
        self.org_id, self.mailbox_id = str(job["org_id"]), str(mailbox["id"])
        self.importer = Importer(table, job, mailbox, batch)
        self.skip_duplicates = self.importer.skip_duplicates
        # Every message of the target has entries (it was empty when planned): no GSI1 Query.
        self.indexed = bool(job.get("target_indexed", False))
        self._lock = pythreading.Lock()
        self._checkpoint: Checkpoint = lambda _outcomes, _count: []
        self._counting = False
        self.counted = False  # the batch was counted with its last chunk

    def store(
        self, fetched: Sequence[FetchedMessage], checkpoint: Checkpoint, *, last: bool = False
    ) -> dict[int, Outcome]:
        """Store the chunk; UID → outcome. ``checkpoint(outcomes, count)``: the caller's operations
        that record them, written with the chunk's last group (or alone, after a fallback).
        ``last``: nothing of the batch comes after this chunk: its checkpoint also counts the batch
        (``count`` true; ``counted`` tells whether it did: not when the attempt is over)."""
        self._checkpoint, self._counting = checkpoint, last
        messages, outcomes = self._parse(fetched)
        lookups = self._lookup(messages)
        stored_threads = self._recognise_stored(messages, lookups)
        self._deduplicate(messages, lookups)
        to_store = [m for m in messages if m.outcome is None]
        self._assign_threads(to_store, lookups, stored_threads)
        self._prepare(to_store)
        for message in messages:
            if message.outcome is not None:
                outcomes[message.uid] = message.outcome
        ready = [m for m in to_store if m.prepared is not None]
        for message in ready:
            outcomes[message.uid] = Outcome("imported")
        self._write(ready, outcomes)
        return outcomes

    # ------------------------------------------------------------------ reading

    def _parse(self, fetched: Sequence[FetchedMessage]) -> tuple[list[_Message], dict[int, Outcome]]:
        batch, job = self.batch, self.job
        messages: list[_Message] = []
        outcomes: dict[int, Outcome] = {}
        for item in fetched:
            try:
                parsed = parse(item.raw)
            except Unparseable as problem:
                outcomes[item.uid] = Outcome(
                    "failed", f"UID {item.uid}: {problem.reason} ({problem.detail[:120]})"
                )
                continue
            source_id = rules.source_id(
                job["id"], str(batch["raw_name"]), int(batch["uidvalidity"]), item.uid
            )
            received_at = self.importer.received_at(item, parsed.date)
            messages.append(
                _Message(
                    uid=item.uid,
                    fetched=item,
                    parsed=parsed,
                    source_id=source_id,
                    fingerprint=duplicates.fingerprint(item.raw),
                    entry_key=entry_key(parsed, item.raw),
                    message_id=mail_delivery.source_message_id(received_at, source_id, self.mailbox_id),
                )
            )
        return messages, outcomes

    def _lookup(self, messages: Sequence[_Message]) -> _Lookups:
        """Two BatchGetItems (per 100 keys): the entries of the chunk's messages and parents, then
        the messages and threads the entries name."""
        wanted = [m.entry_key for m in messages]
        for message in messages:
            wanted += [self._parent_key(c) for c in self._parents(message)]
            if self.indexed and threading.is_reply_subject(message.parsed.subject):
                wanted.append(keys.subject_entries_sk(threading.subject_key(message.parsed.subject)))
        found = mail_batch.get_many(self.table, self.org_id, self.mailbox_id, wanted)
        lookups = _Lookups({sk: mail_batch.entries_of(item) for sk, item in found.items()})
        second: list[str] = []
        for sk, item in found.items():
            latest = mail_batch.latest_thread(item) if sk.startswith("SUBJECT#") else None
            if latest is not None:
                lookups.subjects[sk] = latest
                second.append(keys.thread_sk(mail_store.ulid_of(latest[0])))
        for message in messages:
            for entry in lookups.entries.get(message.entry_key, []):
                # Its own entry (a re-run): the message and its thread. Others: duplicate candidates.
                if entry.source == message.source_id:
                    second += [
                        keys.message_sk(mail_store.ulid_of(entry.message_id)),
                        keys.thread_sk(mail_store.ulid_of(entry.thread_id)),
                    ]
                elif self.skip_duplicates:
                    second.append(keys.message_sk(mail_store.ulid_of(entry.message_id)))
        for message in messages:
            for candidate in self._parents(message):
                second += [
                    keys.thread_sk(mail_store.ulid_of(e.thread_id))
                    for e in lookups.entries.get(self._parent_key(candidate), [])[:1]
                ]
        if second:
            for sk, item in mail_batch.get_many(self.table, self.org_id, self.mailbox_id, second).items():
                if sk.startswith("MSG#"):
                    lookups.existing.add(str(item["id"]))
                else:
                    lookups.threads[str(item["id"])] = item
        return lookups

    @staticmethod
    def _parents(message: _Message) -> list[str]:
        own = message.parsed.message_id
        candidates = threading.parent_candidates(message.parsed.in_reply_to, message.parsed.references)
        return [c for c in candidates if c != own]

    @staticmethod
    def _parent_key(candidate: str) -> str:
        return keys.message_id_entries_sk(threading.message_id_key(candidate))

    # ------------------------------------------------------------------ deciding

    def _recognise_stored(self, messages: Sequence[_Message], lookups: _Lookups) -> dict[str, str]:
        """Messages a previous run of this batch stored (their entries are written with them):
        imported, not written again. Returns their Message-ID hashes → thread ids, so that replies
        stored now join the threads they are in."""
        threads: dict[str, str] = {}
        for message in messages:
            for entry in lookups.entries.get(message.entry_key, []):
                if entry.source == message.source_id and entry.message_id in lookups.existing:
                    message.outcome = Outcome("imported")
                    if message.parsed.message_id:
                        threads[threading.message_id_key(message.parsed.message_id)] = entry.thread_id
        return threads

    def _deduplicate(self, messages: Sequence[_Message], lookups: _Lookups) -> None:
        """``ours`` (stored by this job before: imported), ``other`` (the mailbox has the same
        message: skipped), or to be stored; an earlier message of the chunk counts as stored."""
        if not self.skip_duplicates:
            return
        in_chunk: dict[str, set[str]] = {}  # entry key → fingerprints of the chunk's stored messages
        for message in messages:
            if message.outcome is not None:
                continue
            stored = [
                e for e in lookups.entries.get(message.entry_key, []) if e.message_id in lookups.existing
            ]
            if any(e.source == message.source_id for e in stored):
                message.outcome = Outcome("imported")
                continue
            if any(
                e.fingerprint == message.fingerprint for e in stored
            ) or message.fingerprint in in_chunk.get(message.entry_key, set()):
                message.outcome = Outcome("skipped")
                continue
            if not self.indexed:
                known = self.importer.known(message.parsed, message.fetched.raw, message.source_id)
                if known == "ours":
                    message.outcome = Outcome("imported")
                    continue
                if known == "other":
                    message.outcome = Outcome("skipped")
                    continue
            in_chunk.setdefault(message.entry_key, set()).add(message.fingerprint)

    def _assign_threads(
        self, messages: Sequence[_Message], lookups: _Lookups, stored: dict[str, str]
    ) -> None:
        """Each message's thread, as mail_delivery would find it, from the chunk itself, the
        entries, and (where those cannot answer) the GSI1 Queries it would make."""
        by_message_id = dict(stored)  # Message-ID hash → thread id, for the chunk's messages
        by_subject: dict[str, str] = {}  # subject key → thread id, for the chunk's threads
        current: dict[str, Item] = {}  # thread id → the thread as the chunk leaves it
        for message in messages:
            thread_id, thread = self._find_thread(message, lookups, by_message_id, by_subject, current)
            message.thread = (thread_id, thread)
            current[thread_id] = self._after(thread_id, thread, message)
            by_subject[threading.subject_key(message.parsed.subject)] = thread_id
            if message.parsed.message_id:
                by_message_id[threading.message_id_key(message.parsed.message_id)] = thread_id

    def _find_thread(
        self,
        message: _Message,
        lookups: _Lookups,
        by_message_id: dict[str, str],
        by_subject: dict[str, str],
        current: dict[str, Item],
    ) -> tuple[str, Item | None]:
        parsed = message.parsed
        for candidate in self._parents(message):
            hashed = threading.message_id_key(candidate)
            if hashed in by_message_id:
                thread_id = by_message_id[hashed]
                return thread_id, current.get(thread_id) or lookups.threads.get(thread_id)
            entries = lookups.entries.get(self._parent_key(candidate), [])
            if entries:
                thread_id = entries[0].thread_id
                return thread_id, current.get(thread_id) or lookups.threads.get(thread_id)
            if not self.indexed:
                parent = mail_store.find_by_rfc_id(self.table, self.org_id, self.mailbox_id, hashed)
                if parent is not None:
                    thread_id = str(parent["thread_id"])
                    known = current.get(thread_id)
                    return thread_id, known or mail_store.get_thread(
                        self.table, self.org_id, self.mailbox_id, thread_id
                    )
        received_at = self.importer.received_at(message.fetched, parsed.date)
        if threading.is_reply_subject(parsed.subject):
            cutoff = clock.isoformat(received_at - timedelta(days=threading.SUBJECT_FALLBACK_DAYS))
            subject_key = threading.subject_key(parsed.subject)
            latest: Item | None = None
            if subject_key in by_subject:
                latest = current.get(by_subject[subject_key])
            elif self.indexed:
                found = lookups.subjects.get(keys.subject_entries_sk(subject_key))
                latest = lookups.threads.get(found[0]) if found else None
            else:
                latest = mail_store.latest_thread_with_subject(
                    self.table, self.org_id, self.mailbox_id, subject_key
                )
            if latest is not None and str(latest.get("last_activity_at", "")) >= cutoff:
                return str(latest["id"]), current.get(str(latest["id"])) or latest
        return f"thr_{ids.ulid(int(received_at.timestamp() * 1000))}", None

    def _after(self, thread_id: str, thread: Item | None, message: _Message) -> Item:
        """The thread once the message is in it (what deliver's ThreadChange makes of it)."""
        parsed = message.parsed
        received = clock.isoformat(self.importer.received_at(message.fetched, parsed.date))
        before = thread or {}
        last = max(received, str(before.get("last_activity_at", "")))
        is_latest = last == received
        return {
            **before,
            "id": thread_id,
            "subject": before.get("subject") or parsed.subject,
            "last_activity_at": last,
            "preview": parsed.preview if is_latest else before.get("preview", parsed.preview),
            "last_message_id": message.message_id
            if is_latest
            else before.get("last_message_id", message.message_id),
        }

    # ------------------------------------------------------------------ writing

    def _prepare(self, messages: Sequence[_Message]) -> None:
        """Bytes to S3 through mail_delivery (ids, message record, thread change), on the pool."""

        def one(message: _Message) -> None:
            def collect(prepared: mail_delivery.Prepared) -> None:
                message.prepared = prepared

            try:
                retried(lambda: mail_delivery.deliver(self.table, self._incoming(message), collect=collect))
            except StoreError as exc:
                if exc.retryable:
                    raise  # AWS busy or unreachable: not the message's fault; the batch stops
                logger().exception("message refused by the store", extra={"migration_id": self.job["id"]})
                message.outcome = Outcome(
                    "failed", f"UID {message.uid}: could not be stored ({exc.code or type(exc).__name__})"
                )

        for future in [self.pool.submit(one, m) for m in messages]:
            future.result()

    def _incoming(self, message: _Message) -> mail_delivery.Incoming:
        job, batch, fetched = self.job, self.batch, message.fetched
        flags = {flag.casefold() for flag in fetched.flags}
        return mail_delivery.Incoming(
            org_id=self.org_id,
            mailbox=self.mailbox,
            raw=fetched.raw,
            parsed=message.parsed,
            folder_key=str(batch["target_key"]),
            direction=self.importer.direction,
            received_at=self.importer.received_at(fetched, message.parsed.date),
            source_id=message.source_id,
            seen="\\seen" in flags,
            flagged="\\flagged" in flags,
            extra={
                "migration_id": job["id"],
                "migration_source": message.source_id,
                "content_fingerprint": message.fingerprint,
            },
            meter=dict(METER),
            thread=message.thread,
        )

    def _pending(self, message: _Message) -> Pending:
        assert message.prepared is not None
        record = message.prepared.message
        entry = Entry(record["id"], record["thread_id"], message.fingerprint, message.source_id)
        return Pending(record, message.prepared.change, message.entry_key, entry)

    def _groups(self, messages: Sequence[_Message], *, reserve: int) -> list[list[_Message]]:
        """The messages in as few transactions as fit, in order, the last one keeping ``reserve``
        operations free for the checkpoint (packed from the end: only the first group is short).
        Without that room the checkpoint was a transaction of its own in most chunks."""
        groups: list[list[_Message]] = []
        group, current, weight, room = Group(), list[_Message](), 0, reserve
        for message in reversed(messages):
            pending = self._pending(message)
            size = mail_batch.item_bytes(pending.message)
            if current and (not group.fits(pending, reserve=room) or weight + size > GROUP_BYTES):
                groups.append(current[::-1])
                group, current, weight, room = Group(), [], 0, 0
            group.messages.append(pending)
            current.append(message)
            weight += size
        if current:
            groups.append(current[::-1])
        return groups[::-1]

    def _also(self, outcomes: dict[int, Outcome]) -> list[Op]:
        return self._checkpoint(outcomes, self._counting)

    def _write(self, messages: Sequence[_Message], outcomes: dict[int, Outcome]) -> None:
        groups = self._groups(messages, reserve=len(self._also(outcomes)))
        recorded = False
        for index, members in enumerate(groups):
            also: list[Op] = []
            if index == len(groups) - 1:
                # Outcomes may have changed (a group written message by message): read them again.
                also = self._also(outcomes)
                group = Group([self._pending(m) for m in members], also)
                if group.operations_with() > MAX_OPERATIONS:
                    also = []
            recorded = self._write_group(list(members), outcomes, also) or recorded
        if not recorded:
            self._record(outcomes)

    def _write_group(self, members: list[_Message], outcomes: dict[int, Outcome], also: list[Op]) -> bool:
        """Write one group; True when ``also`` (or what replaced it) was written with it."""
        while True:
            group = Group([self._pending(m) for m in members], list(also))
            if not group.messages:
                if also:
                    self._record(outcomes)
                return bool(also)
            try:
                retried(
                    lambda: mail_batch.store_group(
                        self.table,
                        group,  # noqa: B023 - called at once
                        quota_bytes=self._quota(),
                        meter=METER,
                        org_id=self.org_id,
                        mailbox_id=self.mailbox_id,
                    )
                )
                self.counted = self.counted or (bool(also) and self._counting)
                return bool(also)
            except Rejected as rejected:
                if rejected.by("count:") and self._counting:
                    # The attempt is over (or the folder gone): recorded, not counted (as count_batch).
                    self._counting = False
                    also = self._also(outcomes)
                    continue
                stored_before = {r.partition(":")[2] for r in rejected.by("message:")}
                others = [r for r in rejected.roles if not r.startswith("message:") and r != "checkpoint"]
                if "checkpoint" in rejected.roles:
                    also = []  # counted meanwhile (a concurrent run): nothing more to record
                if others or not (stored_before or "checkpoint" in rejected.roles):
                    logger().warning(
                        "import group refused: written message by message",
                        extra={"migration_id": self.job["id"], "roles": rejected.roles[:10]},
                    )
                    self._one_by_one(members, outcomes)
                    return False
                # Stored by an earlier run (and counted with them): imported, not written again.
                members = [m for m in members if m.message_id not in stored_before]
            except ItemTooLarge:
                logger().warning(
                    "import group too large: written message by message",
                    extra={"migration_id": self.job["id"]},
                )
                self._one_by_one(members, outcomes)
                return False

    def _one_by_one(self, members: Sequence[_Message], outcomes: dict[int, Outcome]) -> None:
        """The group as messages delivered alone (mail_delivery.commit), then their entries."""
        written: list[Pending] = []
        for message in members:
            assert message.prepared is not None
            prepared = message.prepared
            try:
                result = retried(lambda: mail_delivery.commit(self.table, prepared))  # noqa: B023 - called at once
            except mail_delivery.MetadataTooLarge as exc:
                outcomes[message.uid] = Outcome(
                    "failed", f"UID {message.uid}: too large to store ({str(exc)[:120]})"
                )
                continue
            if result.stored is Stored.NO_MAILBOX:
                raise MigrationFailed(
                    rules.TARGET_UNAVAILABLE, "The target mailbox was deleted during the migration."
                )
            if result.stored is Stored.OVER_QUOTA:
                outcomes[message.uid] = Outcome(
                    "failed", f"UID {message.uid}: the mailbox's quota is full (message quarantined)"
                )
                continue
            written.append(self._pending(message))
        for ops in mail_batch.entry_operations(self.org_id, self.mailbox_id, written):
            retried(lambda: mail_batch.run_operations(self.table, ops))  # noqa: B023 - called at once

    def _record(self, outcomes: dict[int, Outcome]) -> None:
        """The checkpoint written alone (nothing of the chunk to store, or stored one by one)."""
        while True:
            ops = self._also(outcomes)
            try:
                retried(lambda: mail_batch.run_operations(self.table, ops))  # noqa: B023 - called at once
                self.counted = self.counted or self._counting
                return
            except Rejected as rejected:
                if rejected.by("count:") and self._counting:
                    self._counting = False  # the attempt is over: recorded, not counted
                    continue
                if "checkpoint" not in rejected.roles:
                    raise
                return  # counted meanwhile: nothing to record

    def _quota(self) -> int | None:
        quota_mb = self.mailbox.get("quota")
        return int(quota_mb) * 1024 * 1024 if quota_mb else None
