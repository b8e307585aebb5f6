"""The steps of the migration state machine (statemachines/migration.asl.json), one function each.

Every step gets the execution's state (``org_id``, ``job_id``, ``attempt``, ``segment``, and once
planned ``cursor``/``windows_run``) and first checks that the job is still active in that attempt:
the steps of a cancelled or retried job do nothing (``JobInactive`` → the machine's ``Stopped``).

* **validate**: pending → validating; logs in to the source (wrong password, unreachable host,
  TLS failure, timeout: the job fails with ``connection_failed`` and a readable message).
* **plan**: validating → planning → processing; lists the folders, chooses them (strategy,
  selection), and per folder its UIDs (since ``import_since``) minus those an earlier attempt
  imported or skipped (counted as such at once); cuts them into batches of at most
  ``MAILROOM_MIGRATION_BATCH_SIZE`` UIDs, written to DynamoDB (never into the state: 256 KB).
* **next_window**: the next ``MAILROOM_MIGRATION_WINDOW_BATCHES`` batch numbers for the Map, and
  what follows it: another window, continue-as-new, or finalize.
* **import_batch**: one batch (see ``import_batch``).
* **continue_as_new**: starts the next execution of this machine at the cursor and hands the job
  over to it (history per execution stays bounded whatever the mailbox's size).
* **finalize**: completed, ``migration.completed``, the sealed password deleted.
* **fail**: failed with the error the Catch recorded, ``migration.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mailroom import clock
from mailroom.domain import migrations as rules
from mailroom.errors import MailroomError
from mailroom.mail import folders as folder_rules
from mailroom.mail import threading
from mailroom.mail.parse import Unparseable, parse
from mailroom.observability import logger, traced
from mailroom.services import migrations as jobs
from mailroom.settings import get_settings
from mailroom.store import kms, mailboxes, workflows
from mailroom.store import mail as mail_store
from mailroom.store import migrations as store
from mailroom.store.errors import ConditionFailed, StoreError
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.imap.source import FetchedMessage, SourceAccount, SourceError, SourceFolder, SourceSession

TIME_SAFETY_MS = 60_000  # a batch stops fetching with this much of its invocation left
MAX_WINDOW_BATCHES = 500  # one window's Map stays far below the history limit on its own
SAMPLE_ERRORS = 5
T = TypeVar("T")


class MigrationFailed(Exception):
    """Ends the job as failed: the failure step reads ``code[/reason]: message`` back."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(rules.error_payload(code, message, reason))


class SourceUnavailable(Exception):
    """A source problem that may pass (timeout, dropped connection): Step Functions retries the
    step with backoff; if it persists the job fails with its message."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(rules.error_payload("connection_failed", jobs.readable(error), error.code))


class JobInactive(Exception):
    """The job was cancelled, retried or deleted: this execution has nothing left to do."""


class BatchIncomplete(Exception):
    """The batch ran short of time; what it did is checkpointed and the next run continues."""


@dataclass(frozen=True, slots=True)
class State:
    org_id: str
    job_id: str
    attempt: int
    segment: int = 0
    cursor: int = 0
    windows_run: int = 0

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> State:
        state = event.get("state") or {}
        return cls(
            org_id=str(state["org_id"]),
            job_id=str(state["job_id"]),
            attempt=int(state["attempt"]),
            segment=int(state.get("segment", 0)),
            cursor=int(state.get("cursor", 0)),
            windows_run=int(state.get("windows_run", 0)),
        )

    def identity(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "segment": self.segment,
        }


def _active(table: Table, state: State, statuses: frozenset[str] = rules.ACTIVE) -> Item:
    job = store.get(table, state.org_id, state.job_id)
    if job is None or int(job.get("attempt", 1)) != state.attempt or job["status"] not in statuses:
        raise JobInactive(f"{state.job_id} attempt {state.attempt} is no longer running")
    return job


def _advance(table: Table, state: State, from_statuses: list[str], **fields: Any) -> Item:
    try:
        return store.advance(
            table,
            state.org_id,
            state.job_id,
            attempt=state.attempt,
            from_statuses=from_statuses,
            fields={**fields, "updated_at": clock.now_iso()},
        )
    except ConditionFailed as exc:
        raise JobInactive(f"{state.job_id} moved on") from exc


def _password(table: Table, job: Item) -> str:
    sealed = store.get_secret(table, job["org_id"], job["id"])
    if sealed is None:
        raise MigrationFailed(
            rules.SECRET_EXPIRED,
            "The stored source password has expired; retry the migration with source_password.",
        )
    return kms.decrypt(sealed, jobs.secret_context(job["org_id"], job["id"])).decode()


def _target_mailbox(table: Table, job: Item) -> Item:
    mailbox = mailboxes.get(table, job["org_id"], job["mailbox_id"])
    if mailbox is None or not mailbox.get("active", True):
        raise MigrationFailed(rules.TARGET_UNAVAILABLE, "The target mailbox was deleted or deactivated.")
    return mailbox


def _account(job: Item, password: str) -> SourceAccount:
    source = jobs.Source(
        provider=str(job["provider"]),
        email=str(job["source_email"]),
        password=password,
        username=job.get("source_username"),
    )
    server = jobs.Server(str(job["source_host"]), int(job["source_port"]), str(job["source_security"]))
    return jobs.source_account(source, server)


@contextlib.asynccontextmanager
async def _session(job: Item, password: str) -> AsyncIterator[SourceSession]:
    """A logged-in source session with the stack's network policy (``MAILROOM_IMAP_*``)."""
    from mailroom.imap.source import SourceSession

    settings = get_settings()
    session = await SourceSession.open(
        _account(job, password), allow_private=settings.imap_allow_private, ca_file=settings.imap_ca_file
    )
    try:
        yield session
    finally:
        await session.close()


def _source_failure(error: SourceError) -> Exception:
    if error.code in ("timeout", "connection_failed"):
        return SourceUnavailable(error)
    return MigrationFailed("connection_failed", jobs.readable(error), error.code)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on this thread's loop; a source problem becomes the step's error: a
    timeout or dropped connection is retried by Step Functions, anything else (wrong password,
    TLS failure, a server that cannot be understood) ends the job with ``connection_failed``."""
    from mailroom.imap.source import SourceError
    from mailroom.loops import run_on_thread_loop

    try:
        return run_on_thread_loop(coro)
    except SourceError as exc:
        raise _source_failure(exc) from None


# ----------------------------------------------------------------------------- validate


def validate(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    job = _active(table, state)
    job = _advance(table, state, [rules.PENDING, rules.VALIDATING], status=rules.VALIDATING)
    _target_mailbox(table, job)
    password = _password(table, job)

    async def login() -> int:
        async with _session(job, password) as session:
            return len(await session.folders())

    folders = _run(login())
    logger().info("migration validated", extra={"migration_id": job["id"], "folders": folders})
    return {"validated": True}


# ----------------------------------------------------------------------------- plan


@dataclass(slots=True)
class PlannedFolder:
    item: Item
    batches: list[list[int]]


def _target(table: Table, mailbox: Item, folder: SourceFolder) -> tuple[str, str, str | None]:
    """(folder key, path, note) in the target mailbox for a source folder: the system folder its
    special use names, else a custom folder with its path (created if missing). A path Mailroom
    cannot take (invalid, or past the custom folder limit) imports into INBOX, with a note."""
    from mailroom.imap import folders as source_folders
    from mailroom.services import messages as folder_service

    system = source_folders.target_folder(folder)
    if system is not None:
        return system, folder_rules.SYSTEM_KEYS[system], None
    try:
        path = folder_rules.canonical(source_folders.target_path(folder))
    except folder_rules.InvalidFolder as exc:
        return "inbox", "INBOX", f"imported into INBOX: {exc}"
    system = folder_rules.system_key(path)
    if system is not None:
        return system, path, None
    org_id, mailbox_id = mailbox["org_id"], mailbox["id"]
    claim = mail_store.folder_by_path(table, org_id, mailbox_id, path)
    if claim is not None:
        return str(claim["key"]), str(claim["path"]), None
    try:
        created = folder_service.create_folder(table, mailbox, path)
        return str(created["key"]), str(created["path"]), None
    except MailroomError as exc:
        claim = mail_store.folder_by_path(table, org_id, mailbox_id, path)
        if claim is not None:  # created concurrently
            return str(claim["key"]), str(claim["path"]), None
        return "inbox", "INBOX", f"imported into INBOX: {exc.message}"


def _folder_key(name: str) -> str:
    return "INBOX" if name.casefold() == "inbox" else name


def _chosen(all_folders: list[SourceFolder], job: Item) -> tuple[list[SourceFolder], list[str]]:
    """The folders to import, and the selected names that cannot be imported (not on the source,
    or not selectable): those are reported on the job, the others imported all the same."""
    from mailroom.imap import folders as source_folders

    selected = job.get("selected_folders") or None
    strategy = str(job.get("folder_strategy") or "all")
    missing: list[str] = []
    if selected is not None:
        importable = {_folder_key(f.name) for f in all_folders if f.selectable}
        wanted = [_folder_key(name) for name in selected]
        missing = [name for name in wanted if name not in importable]
        selected = [name for name in wanted if name in importable]
    return source_folders.select_folders(all_folders, strategy, selected), missing


def plan(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    settings = get_settings()
    table = Table()
    state = State.of(event)
    job = _active(table, state)
    # PROCESSING too: a retried Plan whose first run got as far as its last write (no batch of this
    # execution has run before Plan returns, so planning again is safe).
    job = _advance(table, state, [rules.VALIDATING, rules.PLANNING, rules.PROCESSING], status=rules.PLANNING)
    mailbox = _target_mailbox(table, job)
    password = _password(table, job)
    since = date.fromisoformat(str(job["import_since"])) if job.get("import_since") else None

    async def survey() -> tuple[list[tuple[SourceFolder, int, list[int]]], list[str]]:
        async with _session(job, password) as session:
            chosen, missing = _chosen(await session.folders(), job)
            found = []
            for folder in chosen:
                uidvalidity, exists = await session.select(folder.raw_name)
                uids = await session.uids(since) if exists else []
                found.append((folder, uidvalidity, uids))
            return found, missing

    surveyed, missing = _run(survey())

    planned: list[PlannedFolder] = []
    for seq, (folder, uidvalidity, uids) in enumerate(surveyed):
        imported, skipped = store.done_sets(table, job["org_id"], job["id"], folder.raw_name, uidvalidity)
        todo = [uid for uid in uids if uid not in imported and uid not in skipped]
        key, path, note = _target(table, mailbox, folder)
        cut = rules.batches(todo, settings.migration_batch_size)
        planned.append(
            PlannedFolder(
                item={
                    "name": folder.name,
                    "raw_name": folder.raw_name,
                    "special_use": folder.special_use,
                    "uidvalidity": uidvalidity,
                    "target_key": key,
                    "target_path": path,
                    "expected": len(uids),
                    "imported": sum(1 for uid in uids if uid in imported),
                    "skipped": sum(1 for uid in uids if uid in skipped),
                    "failed": 0,
                    "batches": len(cut),
                    "batches_done": 0,
                    "error": note,
                    "seq": seq,
                },
                batches=cut,
            )
        )
    for name in missing:
        planned.append(
            PlannedFolder(
                item={
                    "name": name,
                    "raw_name": name,
                    "state": "missing",
                    "expected": 0,
                    "imported": 0,
                    "skipped": 0,
                    "failed": 0,
                    "batches": 0,
                    "batches_done": 0,
                    "error": "No folder with this name that can be imported on the source server.",
                    "seq": len(planned),
                },
                batches=[],
            )
        )

    ttl = int(time.time()) + store.WORKING_TTL_SECONDS
    folder_items, batch_items = [], []
    seq = 0
    for planned_folder in planned:
        folder_seq = int(planned_folder.item["seq"])
        folder_items.append(store.folder_item(job["org_id"], job["id"], folder_seq, planned_folder.item))
        for uids in planned_folder.batches:
            batch = {
                "folder_seq": folder_seq,
                "folder_name": planned_folder.item["name"],
                "raw_name": planned_folder.item["raw_name"],
                "uidvalidity": planned_folder.item["uidvalidity"],
                "target_key": planned_folder.item["target_key"],
                "special_use": planned_folder.item.get("special_use"),
                "uids": uids,
            }
            batch_items.append(store.batch_item(job["org_id"], job["id"], state.attempt, seq, batch, ttl=ttl))
            seq += 1
    store.write_plan(table, job["org_id"], job["id"], folder_items=folder_items, batch_items=batch_items)
    _advance(
        table,
        state,
        [rules.PLANNING],
        status=rules.PROCESSING,
        total_messages=sum(int(p.item["expected"]) for p in planned),
        imported_messages=sum(int(p.item["imported"]) for p in planned),
        skipped_duplicates=sum(int(p.item["skipped"]) for p in planned),
        failed_messages=0,
        batches_total=seq,
        batches_done=0,
        folder_count=len(planned),
    )
    logger().info(
        "migration planned", extra={"migration_id": job["id"], "folders": len(planned), "batches": seq}
    )
    return {**state.identity(), "cursor": 0, "windows_run": 0}


# ----------------------------------------------------------------------------- windows


def next_window(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    settings = get_settings()
    table = Table()
    state = State.of(event)
    job = _active(table, state, frozenset({rules.PROCESSING}))
    size = min(settings.migration_window_batches, MAX_WINDOW_BATCHES)
    per_execution = rules.safe_windows(size, settings.migration_windows_per_execution)
    total = int(job.get("batches_total", 0))
    first = state.cursor
    seqs = list(range(first, min(first + size, total)))
    cursor = first + len(seqs)
    windows_run = state.windows_run + 1
    if cursor >= total:
        then = "finalize"
    elif windows_run >= per_execution:
        then = "continue_as_new"
    else:
        then = "next"
    # A long migration must not outlive its sealed password.
    store.keep_secret_until(table, job["org_id"], job["id"], jobs.secret_ttl())
    return {
        **state.identity(),
        "cursor": cursor,
        "windows_run": windows_run,
        "window": {"batches": seqs, "max_concurrency": settings.migration_map_concurrency, "then": then},
    }


def continue_as_new(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Start the next execution at the cursor, then point the job at it (in that order: if the
    start fails this step is retried; if the job moved on meanwhile, the new execution finds it
    inactive and stops)."""
    table = Table()
    state = State.of(event)
    _active(table, state, frozenset({rules.PROCESSING}))
    segment = state.segment + 1
    payload = {
        **state.identity(),
        "segment": segment,
        "cursor": state.cursor,
        "windows_run": 0,
        "resume": True,
    }
    arn = workflows.start(jobs.execution_name(state.job_id, state.attempt, segment), payload)
    current = str(event.get("execution_arn") or "")
    handed_over = store.set_execution(
        table, state.org_id, state.job_id, attempt=state.attempt, arn=arn, previous=current
    )
    logger().info(
        "migration continues as new",
        extra={
            "migration_id": state.job_id,
            "segment": segment,
            "cursor": state.cursor,
            "handed_over": handed_over,
        },
    )
    return {"execution_arn": arn, "handed_over": handed_over}


# ----------------------------------------------------------------------------- finish


def finalize(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    job = _active(table, state, frozenset({rules.PROCESSING}))
    if not jobs.complete(table, job, attempt=state.attempt):
        raise JobInactive(f"{state.job_id} ended meanwhile")
    try:
        store.delete_attempt_work(table, state.org_id, state.job_id)
    except StoreError:
        # Left-overs carry a TTL; the job is complete either way.
        logger().warning("migration working items left for TTL", extra={"migration_id": state.job_id})
    logger().info("migration completed", extra={"migration_id": state.job_id})
    return {"status": rules.COMPLETED}


def fail(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    table = Table()
    state = State.of(event)
    error = (event.get("state") or {}).get("error") or {}
    code, message, reason = rules.parse_error(error.get("Error"), error.get("Cause"))
    job = store.get(table, state.org_id, state.job_id)
    if job is None or int(job.get("attempt", 1)) != state.attempt:
        return {"recorded": False}
    recorded = jobs.fail(table, job, code=code, message=message, attempt=state.attempt, reason=reason)
    logger().info(
        "migration failed", extra={"migration_id": state.job_id, "error_code": code, "recorded": recorded}
    )
    return {"recorded": recorded, "error_code": code}


# ----------------------------------------------------------------------------- import_batch


@dataclass(slots=True)
class BatchRun:
    """What one batch has handled: resumed from its checkpoint, settled message by message."""

    processed: list[int]
    tallies: dict[str, int]
    errors: list[str]
    new_imported: list[int] = field(default_factory=list)
    new_skipped: list[int] = field(default_factory=list)
    folder_error: str | None = None

    def settle(self, uid: int, outcome: str, error: str | None = None) -> None:
        self.processed.append(uid)
        self.tallies[outcome] = self.tallies.get(outcome, 0) + 1
        if outcome == "imported":
            self.new_imported.append(uid)
        elif outcome == "skipped":
            self.new_skipped.append(uid)
        if error and len(self.errors) < SAMPLE_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # imported | skipped | failed
    error: str | None = None


class _Importer:
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
            known = self._known(parsed.message_id, fetched.raw, source_id)
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
            extra={"migration_id": job["id"], "migration_source": source_id},
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
                rules.digest(fetched.raw),
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

    def _known(self, message_id: str | None, raw: bytes, source_id: str) -> str | None:
        """``ours`` (this job stored it before), ``other`` (the mailbox has it otherwise) or None."""
        org_id, mailbox_id = self.job["org_id"], self.mailbox["id"]
        if message_id:
            found = mail_store.find_by_rfc_id(
                self.table, org_id, mailbox_id, threading.message_id_key(message_id)
            )
            if found is None:
                return None
            return "ours" if found.get("migration_source") == source_id else "other"
        marker = store.get_digest_marker(self.table, org_id, mailbox_id, rules.digest(raw))
        if marker is None:
            return None
        if marker.get("source_id") == source_id:
            return None  # ours, maybe half-stored: delivering again is idempotent
        still_there = mail_store.get_message(self.table, org_id, mailbox_id, str(marker["message_id"]))
        return "other" if still_there is not None else None


def import_batch(event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Import one batch: log in, open its folder read-only, check UIDVALIDITY is as planned (else
    the batch's messages fail with a folder error: the server renumbered them), fetch its UIDs in
    chunks (BODY.PEEK[]) while a thread pool stores the messages, then count the batch once.

    A message that cannot be parsed or stored counts as failed with a sample reason; it never
    aborts the batch. Progress is checkpointed on the batch item, so a re-run (Step Functions'
    retry after a timeout or a dropped connection) continues where the last one stopped."""
    table = Table()
    state = State.of(event)
    seq = int(event["seq"])
    job = _active(table, state, frozenset({rules.PROCESSING}))
    batch = store.get_batch(table, state.org_id, state.job_id, state.attempt, seq)
    if batch is None:
        raise RuntimeError(f"batch {seq} of {state.job_id} attempt {state.attempt} is missing")
    if batch.get("status") == "done":
        return {"seq": seq, "counted": False}
    mailbox = _target_mailbox(table, job)
    password = _password(table, job)
    tallies = {k: int(v) for k, v in (batch.get("tallies") or {}).items()}
    run = BatchRun(
        processed=[int(u) for u in batch.get("processed") or []],
        tallies=tallies,
        errors=list(batch.get("errors") or []),
    )
    _run(_import(table, job, mailbox, batch, password, run, remaining_ms))
    counted = store.count_batch(
        table,
        state.org_id,
        state.job_id,
        batch=batch,
        tallies=run.tallies,
        folder_error=run.folder_error,
        sample_error=run.errors[0] if run.errors else None,
    )
    return {"seq": seq, "counted": counted, **run.tallies}


def _checkpoint(table: Table, job: Item, batch: Item, run: BatchRun) -> None:
    store.remember_done(
        table,
        job["org_id"],
        job["id"],
        raw_folder=str(batch["raw_name"]),
        uidvalidity=int(batch["uidvalidity"]),
        imported=run.new_imported,
        skipped=run.new_skipped,
    )
    run.new_imported, run.new_skipped = [], []
    store.checkpoint_batch(table, batch, processed=run.processed, tallies=run.tallies, errors=run.errors)


async def _import(
    table: Table,
    job: Item,
    mailbox: Item,
    batch: Item,
    password: str,
    run: BatchRun,
    remaining_ms: Callable[[], int],
) -> None:
    from mailroom.imap.source import SourceError

    settings = get_settings()
    done = set(run.processed)
    pending = [int(uid) for uid in batch["uids"] if int(uid) not in done]
    if not pending:
        return
    store_one = _Importer(table, job, mailbox, batch)
    loop = asyncio.get_running_loop()
    threads = settings.migration_store_threads
    in_flight: dict[asyncio.Future[Outcome], int] = {}
    settled_since_checkpoint = 0
    out_of_time = False
    failure: BaseException | None = None

    async def settle(wait_for_all: bool) -> None:
        nonlocal settled_since_checkpoint, failure
        if not in_flight:
            return
        finished, _ = await asyncio.wait(
            list(in_flight), return_when=asyncio.ALL_COMPLETED if wait_for_all else asyncio.FIRST_COMPLETED
        )
        for future in finished:
            uid = in_flight.pop(future)
            try:
                outcome = future.result()
            except MigrationFailed as exc:
                failure = failure or exc
                continue
            except StoreError as exc:
                if exc.retryable:
                    # AWS busy or unreachable: not the message's fault. Unsettled, so the retry stores it.
                    failure = failure or exc
                    continue
                logger().exception(
                    "message refused by the store", extra={"migration_id": job["id"], "uid": uid}
                )
                outcome = Outcome(
                    "failed", f"UID {uid}: could not be stored ({exc.code or type(exc).__name__})"
                )
            except Exception as exc:  # a bug with this one message must not stop the others
                logger().exception("message not imported", extra={"migration_id": job["id"], "uid": uid})
                outcome = Outcome("failed", f"UID {uid}: could not be stored ({type(exc).__name__})")
            run.settle(uid, outcome.kind, outcome.error)
            settled_since_checkpoint += 1

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="migration-store") as pool:
        try:
            async with _session(job, password) as session:
                uidvalidity, _exists = await session.select(str(batch["raw_name"]))
                if uidvalidity != int(batch["uidvalidity"]):
                    run.folder_error = (
                        f"The source server renumbered {batch.get('folder_name') or batch['raw_name']} "
                        f"(UIDVALIDITY {batch['uidvalidity']} → {uidvalidity}) after planning; "
                        "retry the migration to import it again."
                    )
                    for uid in pending:
                        run.settle(uid, "failed")
                    return
                returned: set[int] = set()
                # An async generator: closed at once when we stop early (time, failure).
                fetching = cast(
                    "AsyncGenerator[FetchedMessage, None]",
                    session.fetch(pending, chunk_size=settings.migration_fetch_chunk),
                )
                async with contextlib.aclosing(fetching) as messages:
                    async for fetched in messages:
                        returned.add(fetched.uid)
                        in_flight[loop.run_in_executor(pool, store_one, fetched)] = fetched.uid
                        if len(in_flight) >= threads * 2:
                            await settle(wait_for_all=False)
                        if failure is not None:
                            break
                        if settled_since_checkpoint >= settings.migration_fetch_chunk:
                            _checkpoint(table, job, batch, run)
                            settled_since_checkpoint = 0
                        if remaining_ms() < TIME_SAFETY_MS:
                            out_of_time = True
                            break
                await settle(wait_for_all=True)
                if failure is None and not out_of_time:
                    for uid in pending:
                        if uid not in returned:
                            run.settle(uid, "failed", f"UID {uid}: no longer on the source server")
        except SourceError as exc:
            await settle(wait_for_all=True)
            _checkpoint(table, job, batch, run)
            raise _source_failure(exc) from None
        finally:
            if in_flight:
                await settle(wait_for_all=True)
    _checkpoint(table, job, batch, run)
    if failure is not None:
        raise failure
    if out_of_time:
        raise BatchIncomplete(f"batch {batch['seq']}: {len(run.processed)} of {len(batch['uids'])} done")


STEPS: dict[str, Callable[[Mapping[str, Any], Callable[[], int]], dict[str, Any]]] = {
    "validate": traced(validate),
    "plan": traced(plan),
    "next_window": traced(next_window),
    "import_batch": traced(import_batch),
    "continue_as_new": traced(continue_as_new),
    "finalize": traced(finalize),
    "fail": traced(fail),
}
