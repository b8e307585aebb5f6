"""The plan step: list the source's folders, choose them (strategy, selection), and per folder its
UIDs (since ``import_since``) minus those an earlier attempt imported or skipped (counted as such at
once); cut them into batches of at most ``MAILROOM_MIGRATION_BATCH_SIZE`` UIDs, written to DynamoDB
(never into the execution's state: 256 KB). The target folders are resolved here."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from mailroom import clock
from mailroom.domain import migrations as rules
from mailroom.domain.migration_estimates import SourceSize
from mailroom.errors import MailroomError
from mailroom.mail import folders as folder_rules
from mailroom.observability import logger
from mailroom.services import migration_probe as probe
from mailroom.services.migration_context import (
    State,
    active_job,
    advance,
    run_source,
    source_password,
    source_session,
    target_mailbox,
)
from mailroom.settings import get_settings
from mailroom.store import mail as mail_store
from mailroom.store import migrations as store
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.imap.source import SourceFolder


@dataclass(slots=True)
class PlannedFolder:
    item: Item
    batches: list[list[int]]


def _target(table: Table, mailbox: Item, folder: SourceFolder) -> tuple[str, str, str | None]:
    """(folder key, path, note) in the target mailbox for a source folder: the system folder its
    special use names, else a custom folder with its path (created if missing). A path Mailroom
    cannot take (invalid, or past the custom folder limit) imports into INBOX, with a note."""
    from mailroom.imap import folders as source_folders
    from mailroom.services import folders as folder_service

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
    job = active_job(table, state)
    # PROCESSING too: a retried Plan whose first run got as far as its last write (no batch of this
    # execution has run before Plan returns, so planning again is safe).
    job = advance(table, state, [rules.VALIDATING, rules.PLANNING, rules.PROCESSING], status=rules.PLANNING)
    mailbox = target_mailbox(table, job)
    password = source_password(table, job)
    since = date.fromisoformat(str(job["import_since"])) if job.get("import_since") else None

    async def survey() -> tuple[list[tuple[SourceFolder, int, list[int]]], list[str], SourceSize]:
        async with source_session(job, password) as session:
            chosen, missing = _chosen(await session.folders(), job)
            found = []
            for folder in chosen:
                uidvalidity, exists = await session.select(folder.raw_name)
                uids = await session.uids(since) if exists else []
                found.append((folder, uidvalidity, uids))
            # What the job will move, for its estimate (bounded; services/migration_probe.py).
            size = await probe.measure(session, [probe.Target(f, uids) for f, _, uids in found])
            return found, missing, size

    surveyed, missing, size = run_source(survey())

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
    advance(
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
        transferred_messages=0,
        transferred_bytes=0,
        source_bytes=size.bytes,
        size_basis=size.basis,
        processing_at=clock.now_iso(),  # the end of its overhead, the start of its transfer
        # An empty target holds only what imports write from now on, with their Message-ID
        # entries: its batches answer duplicates and threads from those alone (migration_chunks.py).
        target_indexed=int(mailbox.get("message_count", 0)) == 0,
    )
    logger().info(
        "migration planned", extra={"migration_id": job["id"], "folders": len(planned), "batches": seq}
    )
    return {**state.identity(), "cursor": 0, "windows_run": 0}
