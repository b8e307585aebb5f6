"""One message of a mailbox: finding it, and its views (a summary, or every body within a budget).

A view stays under ``MESSAGE_BODY_BUDGET`` bytes of bodies (a Lambda response is at most 6 MB):
``html`` is left out first, then ``text``, then ``html_sanitized``, and ``omitted`` names what was
left out. The raw message always has everything.
"""

from __future__ import annotations

from typing import Any

from mailroom import errors, ids
from mailroom.services.folders import folder_paths_for
from mailroom.services.mail_views import message_full, message_summary
from mailroom.store import mail as store
from mailroom.store.table import Item, Table

MESSAGE_BODY_BUDGET = 4_000_000  # UTF-8 bytes of text + html + html_sanitized in one message view
_BODY_FIELDS = ("text", "html", "html_sanitized")


def load_message(table: Table, mailbox: Item, message_id: str) -> Item:
    """The mailbox's message, or 404 (also for ids of other mailboxes: the key includes the mailbox)."""
    if not ids.is_id(message_id, "msg"):
        raise errors.not_found("Message")
    message = store.get_message(table, mailbox["org_id"], mailbox["id"], message_id)
    if message is None:
        raise errors.not_found("Message")
    return message


def body_bytes(view: dict[str, Any]) -> int:
    """The UTF-8 size of a view's bodies: what its budget counts."""
    return sum(len((view.get(f) or "").encode()) for f in _BODY_FIELDS)


def full_view(
    table: Table, mailbox: Item, message: Item, *, budget: int = MESSAGE_BODY_BUDGET
) -> dict[str, Any]:
    """The message with bodies; fields that would push the response past ``budget`` are left out
    and named in ``omitted``."""
    path = folder_paths_for(table, mailbox, [message]).get(message["folder_key"])
    view = message_full(message, path)
    omitted: list[str] = []
    for body_field in ("html", "text", "html_sanitized"):
        if body_bytes(view) <= budget:
            break
        if view.get(body_field) is not None:
            view[body_field] = None
            omitted.append(body_field)
    view["omitted"] = omitted
    return view


def summary_view(table: Table, mailbox: Item, message: Item) -> dict[str, Any]:
    return message_summary(message, folder_paths_for(table, mailbox, [message]).get(message["folder_key"]))
