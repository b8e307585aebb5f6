"""One action on up to ``MAX_BULK`` messages (``POST /api/v1/messages:bulk``).

The messages are read with one BatchGetItem; each change is its own transaction, as a single-message
change would be (removals from Trash share transactions). Duplicate ids count once. The outcome has
one row per id, in request order, so a partial failure says exactly which messages it concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mailroom import errors, ids
from mailroom.errors import MailroomError
from mailroom.services.folders import require_folder
from mailroom.services.message_changes import (
    HAM,
    SPAM,
    TO_TRASH,
    Change,
    apply_change,
    busy,
    edit_labels,
    move_to,
    set_flags,
)
from mailroom.services.message_removal import purge
from mailroom.store import mail as store
from mailroom.store.table import Item, Table

MAX_BULK = 100

Action = Literal[
    "seen", "unseen", "flag", "unflag", "move", "delete", "spam", "ham", "add_labels", "remove_labels"
]


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    rows: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row["status"] != "ok")

    @property
    def succeeded(self) -> int:
        return len(self.rows) - self.failed


def change_for(
    table: Table, mailbox: Item, action: Action, *, folder: str | None, labels: Sequence[str] | None
) -> Change:
    """The change an action makes to each message (``delete`` outside Trash: to Trash; in Trash it
    removes for good instead). 422 when the action's argument is missing or names an unknown folder."""
    if action in ("seen", "unseen"):
        return set_flags(action == "seen", None, None)
    if action in ("flag", "unflag"):
        return set_flags(None, action == "flag", None)
    if action == "move":
        if not folder:
            raise errors.validation("move needs folder", field="folder")
        return move_to(require_folder(table, mailbox, folder).key)
    if action == "spam":
        return SPAM
    if action == "ham":
        return HAM
    if action in ("add_labels", "remove_labels"):
        if not labels:
            raise errors.validation(f"{action} needs labels", field="labels")
        return edit_labels(add=labels) if action == "add_labels" else edit_labels(remove=labels)
    return TO_TRASH


def _failed(message_id: str, error: MailroomError) -> dict[str, Any]:
    return {
        "id": message_id,
        "status": "error",
        "result": None,
        "folder_key": None,
        "error": {"code": error.code, "message": error.message},
    }


def _ok(message_id: str, result: str, folder_key: str | None) -> dict[str, Any]:
    return {"id": message_id, "status": "ok", "result": result, "folder_key": folder_key, "error": None}


def bulk(
    table: Table,
    mailbox: Item,
    message_ids: Sequence[str],
    action: Action,
    *,
    folder: str | None = None,
    labels: Sequence[str] | None = None,
) -> BulkOutcome:
    """Apply ``action`` to each message; a message that cannot take it gets an error row."""
    change = change_for(table, mailbox, action, folder=folder, labels=labels)
    order = list(dict.fromkeys(message_ids))
    found = store.get_messages(
        table, mailbox["org_id"], mailbox["id"], [m for m in order if ids.is_id(m, "msg")]
    )
    results: dict[str, dict[str, Any]] = {}
    to_purge: list[Item] = []
    for message_id in order:
        message = found.get(message_id)
        if message is None:
            results[message_id] = _failed(message_id, errors.not_found("Message"))
            continue
        if action == "delete" and message["folder_key"] == "trash":
            to_purge.append(message)
            continue
        try:
            changed = apply_change(table, message, change)
        except MailroomError as error:
            results[message_id] = _failed(message_id, error)
            continue
        results[message_id] = _ok(
            message_id, "moved_to_trash" if action == "delete" else "updated", changed["folder_key"]
        )
    if to_purge:
        removed = {m["id"] for m in purge(table, to_purge)}
        for message in to_purge:
            if message["id"] in removed:
                results[message["id"]] = _ok(message["id"], "deleted", None)
            else:
                results[message["id"]] = _failed(message["id"], busy())
    return BulkOutcome([results[m] for m in order])
