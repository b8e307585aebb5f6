"""A mailbox's folders: naming one, listing them with their counts, and custom folders' lifecycle.

Choices, documented in docs/messages.md:

* A folder is named by its path (system names case-insensitively) or by its key (``inbox``,
  ``f01J...``); a custom path is found through its path claim, one GetItem.
* Uniqueness of a path and the custom-folder limit are conditions of the creating (or renaming)
  transaction in ``store.mail``; a custom folder is deleted only when its maintained total is 0,
  a condition of the deleting transaction (409 ``folder_not_empty``).
* System folders cannot be renamed or deleted (409 ``system_folder_protected``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.errors import MailroomError, NotFound
from mailroom.mail import folders as folder_rules
from mailroom.store import mail as store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected

_CUSTOM_KEY_RE = re.compile(r"^f[0-9A-HJKMNP-TV-Z]{26}$")


@dataclass(frozen=True, slots=True)
class Folder:
    key: str
    path: str
    system: bool
    created_at: str | None = None


def resolve_folder(table: Table, mailbox: Item, ref: str) -> Folder | None:
    """The folder named by ``ref`` — a path (system names in any case) or a folder key — or None.
    422 ``invalid_folder`` when ``ref`` cannot be a folder path at all."""
    try:
        path = folder_rules.canonical(ref)
    except folder_rules.InvalidFolder as exc:
        raise errors.validation(str(exc), field="folder", code="invalid_folder") from exc
    system = folder_rules.system_key(path)
    if system is not None:
        return Folder(system, path, True)
    if _CUSTOM_KEY_RE.match(ref.strip()):
        item = store.get_folder(table, mailbox["org_id"], mailbox["id"], ref.strip())
        if item is not None:
            return Folder(item["key"], item["path"], False, item.get("created_at"))
    claim = store.folder_by_path(table, mailbox["org_id"], mailbox["id"], path)
    if claim is None:
        return None
    return Folder(claim["key"], claim["path"], False, claim.get("created_at"))


def require_folder(table: Table, mailbox: Item, ref: str, *, field: str = "folder") -> Folder:
    """A folder named in a query or a body: unknown is 422 ``unknown_folder``."""
    folder = resolve_folder(table, mailbox, ref)
    if folder is None:
        raise errors.validation(f"No folder '{ref[:80]}' in this mailbox", field=field, code="unknown_folder")
    return folder


def folder_in_path(table: Table, mailbox: Item, ref: str) -> Folder:
    """A folder named in the URL: unknown is 404."""
    folder = resolve_folder(table, mailbox, ref)
    if folder is None:
        raise NotFound(
            "not_found", "Folder not found", hint="List folders with GET /api/v1/messages/folders."
        )
    return folder


def folder_view(folder: Folder, mailbox: Item) -> dict[str, Any]:
    counts = store.folder_counts(mailbox, folder.key)
    return {
        "key": folder.key,
        "path": folder.path,
        "name": folder.path.rsplit("/", 1)[-1],
        "system": folder.system,
        "total": max(0, counts["total"]),
        "unread": max(0, counts["unread"]),
        "created_at": folder.created_at,
    }


def list_folders(table: Table, mailbox: Item) -> list[dict[str, Any]]:
    """System folders in their fixed order, then custom ones by path (one Query: at most
    MAX_CUSTOM_FOLDERS exist). Counts are the maintained counters on the mailbox item."""
    system = [Folder(key, path, True) for key, path in folder_rules.SYSTEM_KEYS.items()]
    custom = sorted(
        (
            Folder(f["key"], f["path"], False, f.get("created_at"))
            for f in store.custom_folders(table, mailbox["org_id"], mailbox["id"])
        ),
        key=lambda f: f.path,
    )
    return [folder_view(f, mailbox) for f in [*system, *custom]]


def folder_paths_for(table: Table, mailbox: Item, messages: Sequence[Item]) -> dict[str, str]:
    """Folder key → path for these messages; custom folders are read only when one is needed."""
    if all(folder_rules.is_system_key(m["folder_key"]) for m in messages):
        return dict(folder_rules.SYSTEM_KEYS)
    return store.folder_paths(table, mailbox["org_id"], mailbox["id"])


def _custom_path(raw: str) -> str:
    try:
        path = folder_rules.canonical(raw)
    except folder_rules.InvalidFolder as exc:
        raise errors.validation(str(exc), field="path", code="invalid_folder") from exc
    if folder_rules.system_key(path) is not None:
        raise errors.conflict(f"'{path}' is a system folder", code="folder_exists")
    if _CUSTOM_KEY_RE.match(path):
        # Such a path would read as a folder key in URLs and filters.
        raise errors.validation(
            "A folder path cannot look like a folder key", field="path", code="invalid_folder"
        )
    return path


def create_folder(table: Table, mailbox: Item, raw_path: str) -> dict[str, Any]:
    path = _custom_path(raw_path)
    key = f"f{ids.ulid()}"
    try:
        item = store.create_folder(
            table, mailbox["org_id"], mailbox["id"], key=key, path=path, created_at=clock.now_iso()
        )
    except Rejected as rejected:
        if "path" in rejected.roles:
            raise errors.conflict(f"A folder '{path}' already exists", code="folder_exists") from rejected
        if "mailbox" in rejected.roles:
            raise errors.validation(
                f"A mailbox has at most {folder_rules.MAX_CUSTOM_FOLDERS} custom folders",
                field="path",
                code="folder_limit_reached",
            ) from rejected
        raise
    return folder_view(Folder(key, path, False, item["created_at"]), mailbox)


def _system_folder_protected(folder: Folder, what: str) -> MailroomError:
    return errors.conflict(
        f"{folder.path} is a system folder and cannot be {what}",
        code="system_folder_protected",
        hint="Only custom folders can be renamed or deleted.",
    )


def rename_folder(table: Table, mailbox: Item, folder: Folder, raw_path: str) -> dict[str, Any]:
    if folder.system:
        raise _system_folder_protected(folder, "renamed")
    path = _custom_path(raw_path)
    if path != folder.path:
        try:
            store.rename_folder(
                table, mailbox["org_id"], mailbox["id"], folder.key, path, old_path=folder.path
            )
        except Rejected as rejected:
            if "path" in rejected.roles:
                raise errors.conflict(f"A folder '{path}' already exists", code="folder_exists") from rejected
            raise errors.conflict(
                "The folder changed meanwhile; read it again", code="folder_changed"
            ) from rejected
    return folder_view(Folder(folder.key, path, False, folder.created_at), mailbox)


def delete_folder(table: Table, mailbox: Item, folder: Folder) -> None:
    if folder.system:
        raise _system_folder_protected(folder, "deleted")
    try:
        store.delete_folder(table, mailbox["org_id"], mailbox["id"], folder.key, require_empty=True)
    except Rejected as rejected:
        if "mailbox" in rejected.roles:
            raise errors.conflict(
                f"Folder '{folder.path}' still holds messages",
                code="folder_not_empty",
                hint="Move or delete its messages first (POST /api/v1/messages:bulk), then delete it.",
            ) from rejected
        raise errors.not_found("Folder") from rejected
