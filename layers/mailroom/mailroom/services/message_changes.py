"""Changing a message: flags, labels, its folder, a spam or ham report.

A change is computed from the message as stored and written in one transaction conditioned on what
it was computed from (``store.mail.change_message``); when another request changed the message
meanwhile, it is read again and the change recomputed, up to ``CHANGE_ATTEMPTS`` times, then 409
``message_busy`` (retryable). A move into a custom folder checks, in the same transaction, that the
folder still exists, so no message lands in a deleted folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from mailroom import clock, errors
from mailroom.errors import Conflict, MailroomError
from mailroom.services.folders import require_folder
from mailroom.services.message_detail import summary_view
from mailroom.store import mail as store
from mailroom.store.errors import Contended, Throttled
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected

MAX_LABELS = store.MAX_LABELS
MAX_LABEL_CHARS = 100
CHANGE_ATTEMPTS = 3

Change = Callable[[Item], dict[str, Any] | None]
"""What to change on a message, computed from the message as currently stored (None: nothing)."""


def busy() -> MailroomError:
    return Conflict(
        "message_busy",
        "The message kept changing while this request tried to change it.",
        hint="Retry the request.",
        retryable=True,
    )


def apply_change(table: Table, message: Item, change: Change) -> Item:
    """Run a change with optimistic concurrency: when the message changed since it was read (the
    transaction's conditions fail), read it again and recompute, a few times."""
    current = message
    for _ in range(CHANGE_ATTEMPTS):
        arguments = change(current)
        if arguments is None:
            return current
        # Every change stamps the message (v0 shows it as updated_at).
        arguments["set_fields"] = {**(arguments.get("set_fields") or {}), "updated_at": clock.now_iso()}
        try:
            return store.change_message(table, current, **arguments)
        except Rejected as rejected:
            if "folder" in rejected.roles:
                raise errors.validation(
                    "The target folder no longer exists", field="folder", code="unknown_folder"
                ) from rejected
        except (Contended, Throttled):
            # Still contended after the table's own retries: read the message again and retry.
            pass
        fresh = store.get_message(table, current["org_id"], current["mailbox_id"], current["id"])
        if fresh is None:
            raise errors.not_found("Message")
        current = fresh
    raise busy()


def clean_labels(labels: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(cleaned) > MAX_LABELS:
        raise errors.validation(
            f"A message has at most {MAX_LABELS} labels", field="labels", code="too_many_labels"
        )
    return cleaned


def set_flags(seen: bool | None, flagged: bool | None, labels: Sequence[str] | None) -> Change:
    cleaned = clean_labels(labels) if labels is not None else None

    def change(message: Item) -> dict[str, Any] | None:
        del message
        return {"seen": seen, "flagged": flagged, "labels": cleaned}

    return change


def edit_labels(*, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Change:
    adding, removing = clean_labels(add), set(clean_labels(remove))

    def change(message: Item) -> dict[str, Any] | None:
        current = list(message.get("labels") or [])
        updated = [label for label in dict.fromkeys([*current, *adding]) if label not in removing]
        if updated == current:
            return None
        return {"labels": clean_labels(updated)}

    return change


def move_to(folder_key: str, *, verdict: str | None = None) -> Change:
    """Move into a folder; with ``verdict``, record the user's spam/ham report on the message."""

    def change(message: Item) -> dict[str, Any] | None:
        arguments: dict[str, Any] = {}
        if message["folder_key"] != folder_key:
            arguments["folder_key"] = folder_key
        if verdict is not None and (message.get("verdicts") or {}).get("user_report") != verdict:
            verdicts = {**(message.get("verdicts") or {}), "user_report": verdict}
            arguments["set_fields"] = {"verdicts": verdicts, "reported_at": clock.now_iso()}
        return arguments or None

    return change


SPAM = move_to("spam", verdict="spam")
HAM = move_to("inbox", verdict="ham")
TO_TRASH = move_to("trash")


# --- the use cases of one message's endpoints (each answers the changed message's summary) -----


def update_message(
    table: Table,
    mailbox: Item,
    message: Item,
    *,
    seen: bool | None,
    flagged: bool | None,
    labels: Sequence[str] | None,
) -> dict[str, Any]:
    """Set the flags and labels given (None leaves one as it is; ``labels`` replaces them all)."""
    changed = apply_change(table, message, set_flags(seen, flagged, labels))
    return summary_view(table, mailbox, changed)


def move_message(table: Table, mailbox: Item, message: Item, folder_ref: str) -> dict[str, Any]:
    """Move to the folder named by path or key (422 ``unknown_folder`` when it does not exist)."""
    folder = require_folder(table, mailbox, folder_ref)
    return summary_view(table, mailbox, apply_change(table, message, move_to(folder.key)))


def report(table: Table, mailbox: Item, message: Item, verdict: Literal["spam", "ham"]) -> dict[str, Any]:
    """The user's spam (to Spam) or ham (to INBOX) report, recorded as ``verdicts.user_report``."""
    change = SPAM if verdict == "spam" else HAM
    return summary_view(table, mailbox, apply_change(table, message, change))
