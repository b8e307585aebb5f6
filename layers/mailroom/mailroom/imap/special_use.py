"""Which source folders are the inbox, sent, drafts, trash, spam and archive folders.

The server says so with SPECIAL-USE attributes (RFC 6154; ``\\Junk`` is spam) where it can. Where
it does not, the folder's name decides, from the names the big providers and clients use. A name
only counts for a use no folder claims by attribute: on a server that marks ``Sent`` as ``\\Sent``,
a plain folder called ``Sent Items`` is someone's own folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

USES: Final = ("inbox", "sent", "drafts", "trash", "spam", "archive")

_ATTRIBUTES: Final = {
    "\\sent": "sent",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "spam",
    "\\spam": "spam",  # Gmail's pre-RFC 6154 XLIST name
    "\\archive": "archive",
}

_NAMES: Final = {
    "sent": ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent Mail Items"),
    "drafts": ("Drafts", "Draft"),
    "trash": ("Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin"),
    "spam": ("Spam", "Junk", "Junk E-mail", "Junk Email", "Junk Mail", "Bulk Mail", "Bulk"),
    "archive": ("Archive", "Archives"),
}
_BY_NAME: Final = {name.casefold(): use for use, names in _NAMES.items() for name in names}
# Gmail puts its system folders under "[Gmail]" ("[Google Mail]" in Germany and the UK).
_GMAIL_PARENTS: Final = ("[gmail]", "[google mail]")


def from_attributes(attributes: Iterable[str]) -> str | None:
    """The use a folder's LIST attributes give it, or None."""
    for attribute in attributes:
        use = _ATTRIBUTES.get(attribute.casefold())
        if use is not None:
            return use
    return None


def from_name(name: str, delimiter: str | None) -> str | None:
    """The use a folder's decoded name suggests, or None.

    Matches the whole name, or the name below a top-level ``INBOX`` (servers whose folders all
    live under INBOX, like Courier's ``INBOX.Sent``) or below Gmail's ``[Gmail]``: ``Work/Sent``
    stays a folder of its own.
    """
    if name.casefold() == "inbox":
        return "inbox"
    candidates = [name]
    if delimiter:
        parent, sep, child = name.partition(delimiter)
        if sep and (parent.casefold() == "inbox" or parent.casefold() in _GMAIL_PARENTS):
            candidates.append(child)
    for candidate in candidates:
        use = _BY_NAME.get(candidate.strip().casefold())
        if use is not None:
            return use
    return None


def assign(folders: Sequence[tuple[str, str | None, frozenset[str]]]) -> list[str | None]:
    """The use of each (name, delimiter, attributes), attributes first and names for what is left."""
    by_attribute = [from_attributes(attributes) for _, _, attributes in folders]
    claimed = {use for use in by_attribute if use is not None}
    uses: list[str | None] = []
    for (name, delimiter, _), attributed in zip(folders, by_attribute, strict=True):
        if name.casefold() == "inbox":
            uses.append("inbox")
        elif attributed is not None:
            uses.append(attributed)
        else:
            guessed = from_name(name, delimiter)
            uses.append(guessed if guessed is not None and guessed not in claimed else None)
    return uses
