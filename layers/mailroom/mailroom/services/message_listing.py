"""Listing a mailbox's messages: the folder or thread picks the index, dates bound its sort key,
every other filter applies to what the Query reads (docs/messages.md, "Listing and filters").

``meta.total`` comes from maintained counters, never from counting: the mailbox's message count, a
folder's total, a thread's count, each optionally narrowed by ``unread``. It is None when any other
filter applies (or ``thread`` and ``folder`` together).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailroom import errors, ids
from mailroom.services.folders import Folder, folder_paths_for, require_folder
from mailroom.services.mail_views import message_summary
from mailroom.store import mail as store
from mailroom.store.table import Item, Page, Table, values


@dataclass(frozen=True, slots=True)
class MessageFilters:
    folder: str | None = None  # a path or a key, as the client named it
    thread_id: str | None = None
    unread: bool | None = None
    flagged: bool | None = None
    label: str | None = None
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    oldest_first: bool = False

    @property
    def searches(self) -> bool:
        """Filters no counter answers: with them, totals are unknown (null)."""
        return any(
            v is not None
            for v in (
                self.flagged,
                self.label,
                self.sender,
                self.recipient,
                self.subject,
                self.since,
                self.before,
            )
        )


@dataclass(frozen=True, slots=True)
class Listing:
    page: Page
    views: list[dict[str, Any]]
    total: int | None


def _filter_expression(
    filters: MessageFilters, folder: Folder | None, *, folder_as_filter: bool
) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    # Placeholders are prefixed (#f_, :f_) so they never collide with the key condition's.
    clauses: list[str] = []
    names: dict[str, str] = {}
    raw: dict[str, Any] = {}
    if filters.unread is not None or filters.flagged is not None:
        raw["f_true"] = True
        names["#f_flags"] = "flags"
    if filters.unread is not None:
        names["#f_seen"] = "seen"
        # NOT (... = true) also matches a message without the flag.
        clauses.append("NOT (#f_flags.#f_seen = :f_true)" if filters.unread else "#f_flags.#f_seen = :f_true")
    if filters.flagged is not None:
        names["#f_flagged"] = "flagged"
        clauses.append(
            "#f_flags.#f_flagged = :f_true" if filters.flagged else "NOT (#f_flags.#f_flagged = :f_true)"
        )
    if filters.label is not None:
        names["#f_labels"], raw["f_label"] = "labels", filters.label
        clauses.append("contains(#f_labels, :f_label)")
    for attribute, text in (
        ("from_search", filters.sender),
        ("to_search", filters.recipient),
        ("subject_search", filters.subject),
    ):
        if text is not None:
            names[f"#f_{attribute}"], raw[f"f_{attribute}"] = attribute, store.search_text(text)
            clauses.append(f"contains(#f_{attribute}, :f_{attribute})")
    if folder_as_filter and folder is not None:
        names["#f_folder"], raw["f_folder"] = "folder_key", folder.key
        clauses.append("#f_folder = :f_folder")
    if not clauses:
        return None
    return " AND ".join(clauses), names, values(**raw)


def _between(filters: MessageFilters) -> tuple[str, str] | None:
    if filters.since is None and filters.before is None:
        return None
    low = ids.ulid_bound(int(filters.since.timestamp() * 1000), upper=False) if filters.since else "0" * 26
    # ``before`` is exclusive: the last millisecond before it.
    high = (
        ids.ulid_bound(int(filters.before.timestamp() * 1000) - 1, upper=True) if filters.before else "Z" * 26
    )
    return low, high


def _counted_total(table: Table, mailbox: Item, filters: MessageFilters, folder: Folder | None) -> int | None:
    """The listing's total from maintained counters, or None where only reading could tell."""
    if filters.searches or (filters.thread_id and folder):
        return None
    if filters.thread_id:
        thread = store.get_thread(table, mailbox["org_id"], mailbox["id"], filters.thread_id) or {}
        total, unread = int(thread.get("message_count", 0)), int(thread.get("unread_count", 0))
    elif folder:
        counts = store.folder_counts(mailbox, folder.key)
        total, unread = counts["total"], counts["unread"]
    else:
        total = int(mailbox.get("message_count", 0))
        unread = sum(int(v) for k, v in mailbox.items() if k.startswith("fc_") and k.endswith("_unread"))
    if filters.unread is None:
        return max(0, total)
    return max(0, unread if filters.unread else total - unread)


def list_messages(
    table: Table, mailbox: Item, filters: MessageFilters, *, per_page: int, cursor: str | None
) -> Listing:
    """One page (newest first unless ``oldest_first``), its summaries, and the total when a counter
    knows it. 422 ``unknown_folder`` for a folder the mailbox does not have."""
    if filters.since is not None and filters.before is not None and filters.since >= filters.before:
        raise errors.validation("since must be earlier than before", field="since")
    folder = require_folder(table, mailbox, filters.folder) if filters.folder is not None else None
    if filters.thread_id is not None and not ids.is_id(filters.thread_id, "thr"):
        raise errors.validation("thread must be a thread id (thr_...)", field="thread")
    page = store.list_messages(
        table,
        mailbox["org_id"],
        mailbox["id"],
        per_page=per_page,
        cursor=cursor,
        folder_key=None if filters.thread_id or folder is None else folder.key,
        thread_id=filters.thread_id,
        between=_between(filters),
        newest_first=not filters.oldest_first,
        filter_expression=_filter_expression(filters, folder, folder_as_filter=filters.thread_id is not None),
    )
    paths = folder_paths_for(table, mailbox, page.items)
    views = [message_summary(m, paths.get(m["folder_key"])) for m in page.items]
    return Listing(page, views, _counted_total(table, mailbox, filters, folder))
