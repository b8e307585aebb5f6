"""The import_batch step: one batch of one folder's UIDs, fetched in chunks while a thread pool stores
the messages (services/migration_messages.py), checkpointed as it goes, counted once at the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from mailroom.domain import migrations as rules
from mailroom.observability import logger
from mailroom.services.migration_context import (
    BatchIncomplete,
    MigrationFailed,
    State,
    active_job,
    run_source,
    source_failure,
    source_password,
    source_session,
    target_mailbox,
)
from mailroom.services.migration_messages import Importer, Outcome
from mailroom.settings import get_settings
from mailroom.store import migrations as store
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table

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

    def settle(self, uid: int, outcome: str, error: str | None = None) -> None:
        self.processed.append(uid)
        self.tallies[outcome] = self.tallies.get(outcome, 0) + 1
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
    job = active_job(table, state, frozenset({rules.PROCESSING}))
    batch = store.get_batch(table, state.org_id, state.job_id, state.attempt, seq)
    if batch is None:
        raise RuntimeError(f"batch {seq} of {state.job_id} attempt {state.attempt} is missing")
    if batch.get("status") == "done":
        return {"seq": seq, "counted": False}
    mailbox = target_mailbox(table, job)
    password = source_password(table, job)
    tallies = {k: int(v) for k, v in (batch.get("tallies") or {}).items()}
    run = BatchRun(
        processed=[int(u) for u in batch.get("processed") or []],
        tallies=tallies,
        errors=list(batch.get("errors") or []),
    )
    run_source(_import(table, job, mailbox, batch, password, run, remaining_ms))
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
    store_one = Importer(table, job, mailbox, batch)
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
            raise source_failure(exc) from None
        finally:
            if in_flight:
                await settle(wait_for_all=True)
    _checkpoint(table, job, batch, run)
    if failure is not None:
        raise failure
    if out_of_time:
        raise BatchIncomplete(f"batch {batch['seq']}: {len(run.processed)} of {len(batch['uids'])} done")
