"""The values the IMAP source client takes and gives (re-exported by ``mailroom.imap.source``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SourceAccount:
    """Where and as whom to log in. ``security`` is ``ssl``, ``tls`` (STARTTLS) or ``none``."""

    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)  # kept out of reprs, so out of logs and tracebacks
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class SourceFolder:
    """One mailbox of the source server, as LIST and STATUS describe it.

    ``name`` is the decoded display name (``Entwürfe``); ``raw_name`` is the modified UTF-7 name as
    on the wire (``Entw&APw-rfe``), the one to pass back to ``SourceSession.select``. Hierarchy
    levels in both are separated by ``delimiter``. ``special_use`` is ``inbox``, ``sent``,
    ``drafts``, ``trash``, ``spam`` or ``archive`` for the folders Mailroom has a system folder
    for, else None. ``messages`` and ``uidvalidity`` come from STATUS: 0 and None for folders that
    cannot be selected (or whose STATUS the server refused).
    """

    name: str
    raw_name: str
    delimiter: str | None
    attributes: frozenset[str]
    special_use: str | None
    messages: int
    uidvalidity: int | None
    selectable: bool
    size: int | None = None


@dataclass(frozen=True)
class FetchedMessage:
    """One message as the source server stores it: ``raw`` is BODY[] byte for byte.

    ``flags`` are the IMAP flags as sent (``\\Seen``, ``$Forwarded``...), ``internal_date`` the
    server's received date (timezone-aware; None if the server sent none it could parse), ``size``
    the server's RFC822.SIZE (``len(raw)`` if it sent none).
    """

    uid: int
    raw: bytes = field(repr=False)
    flags: frozenset[str]
    internal_date: datetime | None
    size: int
