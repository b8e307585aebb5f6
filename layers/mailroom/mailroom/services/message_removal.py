"""Removing mail: deleting a message (to Trash, or for good from Trash) and emptying Trash or Spam.

Removal for good goes DynamoDB first (one transaction per ``store.mail.REMOVE_BATCH`` messages,
with every counter), then the S3 objects. In that order, a failure can leave unreferenced bytes
under the mailbox's prefix (removed with the mailbox) but never a message whose bytes are gone.
Emptying removes at most ``EMPTY_BATCH`` messages per request and says whether more remain: a
Lambda invocation never does unbounded work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailroom import errors
from mailroom.services.folders import Folder
from mailroom.services.message_changes import CHANGE_ATTEMPTS, TO_TRASH, apply_change, busy
from mailroom.services.message_detail import summary_view
from mailroom.store import mail as store
from mailroom.store import mail_objects
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table

EMPTY_BATCH = 100  # messages removed per folders:empty request
EMPTYABLE = frozenset({"trash", "spam"})


def _object_keys(message: Item) -> list[str]:
    keys = [message["raw_key"]] if message.get("raw_key") else []
    if message.get("body_key"):
        keys.append(message["body_key"])
    keys += [a["key"] for a in message.get("attachments") or [] if a.get("key")]
    return keys


def purge(table: Table, messages: Sequence[Item]) -> list[Item]:
    """Remove messages for good (see the module docstring for the order); returns those removed."""
    removed = store.remove_messages(table, messages)
    doomed = [key for message in removed for key in _object_keys(message)]
    if doomed:
        try:
            mail_objects.delete(doomed)
        except StoreError:
            from mailroom.observability import logger, metrics

            # The messages are gone; their bytes stay under the mailbox prefix until the mailbox is.
            logger().exception("mail objects of removed messages not deleted", extra={"keys": doomed[:50]})
            metrics().add_metric(name="MailObjectsOrphaned", unit="Count", value=len(doomed))
    return removed


def delete_message(table: Table, message: Item) -> Item | None:
    """Outside Trash: move to Trash (returns the moved message). In Trash: remove for good (None)."""
    current = message
    for _ in range(CHANGE_ATTEMPTS):
        if current["folder_key"] != "trash":
            return apply_change(table, current, TO_TRASH)
        if purge(table, [current]):
            return None
        fresh = store.get_message(table, current["org_id"], current["mailbox_id"], current["id"])
        if fresh is None:
            return None  # removed by someone else meanwhile: the outcome asked for
        current = fresh
    raise busy()


@dataclass(frozen=True, slots=True)
class Deleted:
    """What DELETE did: ``moved`` is the message's summary in Trash, or None when removed for good."""

    moved: dict[str, Any] | None


def remove_message(table: Table, mailbox: Item, message: Item) -> Deleted:
    moved = delete_message(table, message)
    return Deleted(None if moved is None else summary_view(table, mailbox, moved))


def empty_folder(table: Table, mailbox: Item, folder: Folder) -> dict[str, Any]:
    """Remove up to EMPTY_BATCH messages of Trash or Spam for good, oldest first."""
    if folder.key not in EMPTYABLE:
        raise errors.validation(
            "Only Trash and Spam can be emptied", field="folder", code="folder_not_emptiable"
        )
    page = store.list_messages(
        table,
        mailbox["org_id"],
        mailbox["id"],
        per_page=EMPTY_BATCH,
        cursor=None,
        folder_key=folder.key,
        newest_first=False,
    )
    removed = purge(table, page.items)
    before = store.folder_counts(mailbox, folder.key)["total"]
    remaining = max(0, before - len(removed))
    if page.next_cursor is None and len(removed) == len(page.items):
        remaining = 0  # the folder's index is exhausted: nothing is left whatever the counter said
    return {
        "folder": folder.path,
        "folder_key": folder.key,
        "removed": len(removed),
        "remaining": remaining,
        "more": remaining > 0,
    }
