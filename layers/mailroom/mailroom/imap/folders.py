"""Which source folders a migration imports, and where each lands in the Mailroom mailbox.

A special source folder (inbox, sent, drafts, trash, spam, archive) lands in Mailroom's system
folder of the same use, whatever it is called on the source (``[Gmail]/Sent Mail``, ``Sent Items``).
Any other folder becomes a custom folder whose path is its decoded name with the source's hierarchy
delimiter written as ``/``.
"""

from __future__ import annotations

from typing import Final

from mailroom.imap.models import SourceFolder
from mailroom.mail import folders as mail_folders

STRATEGIES: Final = ("all", "standard", "inbox_only")
STANDARD_USES: Final = frozenset({"inbox", "sent", "drafts", "trash", "spam", "archive"})

# IMAP system flags Mailroom keeps, by the name of Mailroom's message flag.
FLAG_MAP: Final[dict[str, str]] = {"\\Seen": "seen", "\\Flagged": "flagged"}


def target_folder(folder: SourceFolder) -> str | None:
    """The Mailroom system folder key (``inbox``, ``sent``...) for a special folder, else None."""
    if folder.special_use in STANDARD_USES and mail_folders.is_system_key(folder.special_use):
        return folder.special_use
    return None


def target_path(folder: SourceFolder) -> str:
    """The custom folder path a non-special source folder becomes (``Work.Projects`` -> ``Work/Projects``).

    A ``/`` inside one level of a source name whose delimiter is something else would read as a
    level of its own in Mailroom, so it becomes ``-``; control characters become spaces. Raises
    ``mailroom.mail.folders.InvalidFolder`` (a ValueError) if no valid path results, e.g. a name
    longer than Mailroom allows.
    """
    delimiter = folder.delimiter
    levels = folder.name.split(delimiter) if delimiter else [folder.name]
    cleaned = [
        "".join(" " if _is_control(char) else char for char in level).replace("/", "-") for level in levels
    ]
    # Empty levels ("a..b", a trailing delimiter) would make "//", which Mailroom refuses.
    path = "/".join(level for level in (part.strip() for part in cleaned) if level)
    return mail_folders.canonical(path or folder.name)


def select_folders(
    folders: list[SourceFolder], strategy: str, selected: list[str] | None
) -> list[SourceFolder]:
    """The folders to import, in the given order.

    ``strategy``: ``all`` (every selectable folder), ``standard`` (the inbox, sent, drafts, trash,
    spam and archive folders) or ``inbox_only``. ``selected`` (decoded names, as test-connection
    shows them; ``INBOX`` in any case) narrows that down further. ValueError names an unknown
    strategy, or a selected name that is not a folder that can be imported.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    candidates = [folder for folder in folders if folder.selectable and _in_strategy(folder, strategy)]
    if selected is None:
        return candidates
    by_name = {_key(folder.name): folder for folder in folders}
    for name in selected:
        folder = by_name.get(_key(name))
        if folder is None:
            raise ValueError(f"'{name}' is not a folder on the source server")
        if not folder.selectable:
            raise ValueError(f"'{name}' cannot be imported: the source server holds no messages in it")
    wanted = {_key(name) for name in selected}
    return [folder for folder in candidates if _key(folder.name) in wanted]


def _in_strategy(folder: SourceFolder, strategy: str) -> bool:
    if strategy == "all":
        return True
    if strategy == "standard":
        return folder.special_use in STANDARD_USES
    return folder.special_use == "inbox"


def _key(name: str) -> str:
    return "INBOX" if name.casefold() == "inbox" else name


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F
