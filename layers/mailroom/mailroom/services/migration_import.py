"""The import_batch step: one batch of one folder's UIDs, fetched in chunks while the previous chunk
is stored (services/migration_chunks.py: a few batched requests per chunk), each chunk's outcomes
checkpointed in the transaction that stores it, the batch counted once at the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from mailroom.domain import migrations as rules
from mailroom.services.migration_chunks import CHUNK, CHUNK_BYTES, ChunkStore
from mailroom.services.migration_context import (
    BatchIncomplete,
    State,
    run_source,
    source_failure,
    source_session,
    still_active,
    target_mailbox,
    unsealed_password,
)
from mailroom.services.migration_messages import Outcome
from mailroom.settings import get_settings
from mailroom.store import migrations as store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op

if TYPE_CHECKING:
    from mailroom.imap.source import FetchedMessage

TIME_SAFETY_MS = 60_000  # a batch stops fetching with this much of its invocation left
SAMPLE_ERRORS = 5


@dataclass(slots=True)
class BatchRun:
    """What one batch has handled: resumed from its checkpoint, settled message by message."""

    processed: list[int]
    tallies: dict[str, int]
    errors: list[str]
    new_imported: list[int] = field(default_factory=list)
    new_skipped: list[int] = field(default_factory=list)
    folder_error: str | None = None
    counted: bool = False  # with the last chunk's transaction

    def settle(self, uid: int, outcome: str, error: str | None = None, *, size: int = 0) -> None:
        """``size``: the message's RFC822.SIZE when it was fetched (tallied as ``bytes``, what the
        deployment's throughput records)."""
        self.processed.append(uid)
        self.tallies[outcome] = self.tallies.get(outcome, 0) + 1
        if size:
            self.tallies["bytes"] = self.tallies.get("bytes", 0) + size
        if outcome == "imported":
            self.new_imported.append(uid)
        elif outcome == "skipped":
            self.new_skipped.append(uid)
        if error and len(self.errors) < SAMPLE_ERRORS:
            self.errors.append(error)


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
    start = store.batch_start(table, state.org_id, state.job_id, state.attempt, seq)
    job = still_active(start.job, state, frozenset({rules.PROCESSING}))
    batch = start.batch
    if batch is None:
        raise RuntimeError(f"batch {seq} of {state.job_id} attempt {state.attempt} is missing")
    if batch.get("status") == "done":
        return {"seq": seq, "counted": False}
    mailbox = target_mailbox(table, job)
    password = unsealed_password(job, start.secret)
    tallies = {k: int(v) for k, v in (batch.get("tallies") or {}).items()}
    run = BatchRun(
        processed=[int(u) for u in batch.get("processed") or []],
        tallies=tallies,
        errors=list(batch.get("errors") or []),
    )
    run_source(_import(table, job, mailbox, batch, password, run, remaining_ms))
    counted = run.counted or store.count_batch(
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
    """Fetch the pending UIDs and store them a chunk at a time (services/migration_chunks.py):
    while one chunk is written, the next is fetched. Each chunk's outcomes are checkpointed in the
    transaction that stores it."""
    from mailroom.imap.source import SourceError

    settings = get_settings()
    done = set(run.processed)
    pending = [int(uid) for uid in batch["uids"] if int(uid) not in done]
    if not pending:
        return
    loop = asyncio.get_running_loop()
    out_of_time = False
    with (
        ThreadPoolExecutor(
            max_workers=settings.migration_store_threads, thread_name_prefix="migration-s3"
        ) as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-chunk") as writer,
    ):
        chunks = ChunkStore(table, job, mailbox, batch, pool)
        storing: asyncio.Future[None] | None = None

        def store_chunk(fetched: list[FetchedMessage], last: bool) -> None:
            sizes = {item.uid: item.size for item in fetched}
            outcomes = chunks.store(
                fetched,
                lambda found, count: _checkpoint_operations(job, batch, run, found, sizes, count=count),
                last=last,
            )
            run.counted = chunks.counted
            for item in fetched:
                outcome = outcomes[item.uid]
                run.settle(item.uid, outcome.kind, outcome.error, size=item.size)
            run.new_imported, run.new_skipped = [], []  # recorded with the chunk

        async def flush(fetched: list[FetchedMessage], *, last: bool = False) -> None:
            nonlocal storing
            if storing is not None:
                await storing
                storing = None
            if fetched:
                storing = loop.run_in_executor(writer, store_chunk, fetched, last)

        try:
            async with source_session(job, password) as session:
                uidvalidity, _exists = await session.select(str(batch["raw_name"]))
                if uidvalidity != int(batch["uidvalidity"]):
                    run.folder_error = (
                        f"The source server renumbered {batch.get('folder_name') or batch['raw_name']} "
                        f"(UIDVALIDITY {batch['uidvalidity']} → {uidvalidity}) after planning; "
                        "retry the migration to import it again."
                    )
                    for uid in pending:
                        run.settle(uid, "failed")
                    _checkpoint(table, job, batch, run)
                    return
                returned: set[int] = set()
                chunk: list[FetchedMessage] = []
                chunk_bytes = 0
                # An async generator: closed at once when we stop early (time, failure).
                fetching = cast(
                    "AsyncGenerator[FetchedMessage, None]",
                    session.fetch(pending, chunk_size=settings.migration_fetch_chunk),
                )
                async with contextlib.aclosing(fetching) as messages:
                    async for fetched in messages:
                        returned.add(fetched.uid)
                        chunk.append(fetched)
                        chunk_bytes += len(fetched.raw)
                        more = len(returned) < len(pending)  # else the batch's last chunk, below
                        if more and (len(chunk) >= CHUNK or chunk_bytes >= CHUNK_BYTES):
                            await flush(chunk)
                            chunk, chunk_bytes = [], 0
                        if remaining_ms() < TIME_SAFETY_MS:
                            out_of_time = True
                            break
                # Every UID came back: the last chunk's transaction counts the batch too.
                await flush(chunk, last=not out_of_time and len(returned) == len(pending))
                await flush([])
                if not out_of_time:
                    missing = [uid for uid in pending if uid not in returned]
                    for uid in missing:
                        run.settle(uid, "failed", f"UID {uid}: no longer on the source server")
                    if missing:
                        _checkpoint(table, job, batch, run)
        except SourceError as exc:
            if storing is not None:
                await storing
            raise source_failure(exc) from None
        finally:
            if storing is not None and not storing.done():
                with contextlib.suppress(Exception):
                    await storing
    if out_of_time:
        raise BatchIncomplete(f"batch {batch['seq']}: {len(run.processed)} of {len(batch['uids'])} done")


def _checkpoint_operations(
    job: Item,
    batch: Item,
    run: BatchRun,
    outcomes: Mapping[int, Outcome],
    sizes: Mapping[int, int],
    *,
    count: bool,
) -> list[Op]:
    """What the batch's checkpoint becomes once ``outcomes`` are settled, as transaction operations
    (``run`` itself is settled only after they are written, as ``BatchRun.settle`` tallies);
    ``count``: they are the batch's last, and it is counted with them (``store.count_batch``)."""
    tallies = dict(run.tallies)
    for uid, outcome in outcomes.items():
        tallies[outcome.kind] = tallies.get(outcome.kind, 0) + 1
        if sizes.get(uid):
            tallies["bytes"] = tallies.get("bytes", 0) + sizes[uid]
    errors = [*run.errors, *(o.error for o in outcomes.values() if o.error)][:SAMPLE_ERRORS]
    return store.checkpoint_operations(
        job["org_id"],
        job["id"],
        batch=batch,
        processed=[*run.processed, *outcomes],
        tallies=tallies,
        errors=errors,
        imported=[*run.new_imported, *(u for u, o in outcomes.items() if o.kind == "imported")],
        skipped=[*run.new_skipped, *(u for u, o in outcomes.items() if o.kind == "skipped")],
        count=count,
    )
