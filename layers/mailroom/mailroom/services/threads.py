"""A mailbox's threads: listed by latest activity, and one thread with its messages in order.

A thread view carries its first ``THREAD_MESSAGES`` messages, with bodies while they fit
``THREAD_BODY_BUDGET`` (a Lambda response is at most 6 MB); from the first that does not fit on,
messages are summaries with ``body_included: false``. ``links.messages_next`` continues the thread
through the messages listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from mailroom import errors, ids
from mailroom.services.folders import folder_paths_for
from mailroom.services.mail_views import API, message_full, message_summary, thread_view
from mailroom.services.message_detail import body_bytes
from mailroom.store import mail as store
from mailroom.store.table import Item, Page, Table

THREAD_MESSAGES = 50  # messages a thread view includes; the rest through its messages_next link
THREAD_BODY_BUDGET = 2_000_000  # UTF-8 bytes of bodies in one thread view


@dataclass(frozen=True, slots=True)
class ThreadListing:
    page: Page
    views: list[dict[str, Any]]
    total: int


def load_thread(table: Table, mailbox: Item, thread_id: str) -> Item:
    if not ids.is_id(thread_id, "thr"):
        raise errors.not_found("Thread")
    thread = store.get_thread(table, mailbox["org_id"], mailbox["id"], thread_id)
    if thread is None or int(thread.get("message_count", 0)) <= 0:
        raise errors.not_found("Thread")
    return thread


def list_threads(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> ThreadListing:
    """Newest activity first; the total is the mailbox's maintained ``thread_count``."""
    page = store.list_threads(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)
    total = max(0, int(mailbox.get("thread_count", 0)))
    return ThreadListing(page, [thread_view(t) for t in page.items], total)


def thread_detail(table: Table, mailbox: Item, thread: Item) -> dict[str, Any]:
    """The thread and its first THREAD_MESSAGES messages in order, with bodies while they fit
    THREAD_BODY_BUDGET (later ones have ``body_included: false``: GET the message for its bodies).
    ``links.messages_next`` continues the listing when the thread has more."""
    page = store.list_messages(
        table,
        mailbox["org_id"],
        mailbox["id"],
        per_page=THREAD_MESSAGES,
        cursor=None,
        thread_id=thread["id"],
        newest_first=False,
    )
    paths = folder_paths_for(table, mailbox, page.items)
    budget = THREAD_BODY_BUDGET
    messages: list[dict[str, Any]] = []
    for message in page.items:
        path = paths.get(message["folder_key"])
        view: dict[str, Any] | None = None
        if budget > 0:
            view = message_full(message, path)
            size = body_bytes(view)
            if size <= budget:
                budget -= size
                view["body_included"] = True
            else:
                budget = 0  # keep the order readable: no later message gets bodies either
                view = None
        if view is None:
            view = {**message_summary(message, path), "body_included": False}
        messages.append(view)
    next_link = None
    if page.next_cursor:
        query = urlencode(
            {
                "thread": thread["id"],
                "order": "oldest",
                "per_page": THREAD_MESSAGES,
                "cursor": page.next_cursor,
            }
        )
        next_link = f"{API}/messages?{query}"
    return {**thread_view(thread), "messages": messages, "links": {"messages_next": next_link}}
