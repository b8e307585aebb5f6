"""Folders: the six system folders and custom ones.

A folder is identified by a key that never changes: the system folders' fixed keys (``inbox``,
``sent``, ...) or ``f<ulid>`` for a custom folder, given at creation. Messages, indexes and
counters use the key; the path is only a name, so renaming a folder touches one item.
"""

from __future__ import annotations

import re

SYSTEM_FOLDERS: dict[str, str] = {
    "INBOX": "inbox",
    "Sent": "sent",
    "Drafts": "drafts",
    "Trash": "trash",
    "Spam": "spam",
    "Archive": "archive",
}
MAX_PATH_CHARS = 255
MAX_CUSTOM_FOLDERS = 200
_PATH_RE = re.compile(r"^[^\x00-\x1f\x7f]+$")


class InvalidFolder(ValueError):
    pass


def canonical(path: str) -> str:
    """A folder path as stored: system folder names case-insensitively canonical, '/' separated."""
    cleaned = "/".join(part.strip() for part in path.strip().strip("/").split("/"))
    for name in SYSTEM_FOLDERS:
        if cleaned.casefold() == name.casefold():
            return name
    if not cleaned or "//" in cleaned or len(cleaned) > MAX_PATH_CHARS or not _PATH_RE.match(cleaned):
        raise InvalidFolder(
            f"'{path[:80]}' is not a valid folder path (1-{MAX_PATH_CHARS} characters, no controls)"
        )
    return cleaned


SYSTEM_KEYS: dict[str, str] = {key: path for path, key in SYSTEM_FOLDERS.items()}


def system_key(path: str) -> str | None:
    """The fixed key of a system folder path, or None for a custom folder."""
    return SYSTEM_FOLDERS.get(path)


def is_system_key(key: str) -> bool:
    return key in SYSTEM_KEYS


def counter_attributes(key: str) -> tuple[str, str]:
    return f"fc_{key}_total", f"fc_{key}_unread"
