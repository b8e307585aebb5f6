"""A logged-in session with a source IMAP server: its folders, their UIDs, their messages.

::

    async with await SourceSession.open(account) as session:
        for folder in await session.folders():
            if folder.selectable:
                uidvalidity, exists = await session.select(folder.raw_name)
                async for message in session.fetch(await session.uids()):
                    ...

Every network step is bounded by ``account.timeout_seconds`` and fails with ``SourceError``
(``code`` says which way), never by hanging. A FETCH is bounded by inactivity instead: it fails
when the server sends nothing for that long, so a slow link can still bring in a large chunk.
After a timeout, or any error that leaves the connection in doubt, the session is closed and every
further call raises ``SourceError("connection_failed")``: open a new one.

One session runs one command at a time; it is not meant to be shared between concurrent tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from types import TracebackType
from typing import Any

import aioimaplib

from mailroom.imap import response as parse
from mailroom.imap import special_use, utf7
from mailroom.imap.commands import quote, search_date, uid_set
from mailroom.imap.connection import connect
from mailroom.imap.errors import SourceError, mask_username, scrub
from mailroom.imap.models import FetchedMessage, SourceAccount, SourceFolder
from mailroom.imap.protocol import ImapProtocol
from mailroom.observability import logger

__all__ = [
    "FetchedMessage",
    "SourceAccount",
    "SourceError",
    "SourceFolder",
    "SourceSession",
    "open_session",
]

_FETCH_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_NOT_SELECTABLE = frozenset({"\\noselect", "\\nonexistent"})
_LOGOUT_SECONDS = 5.0


class SourceSession:
    """A logged-in IMAP session; build it with ``SourceSession.open`` (or ``open_session``)."""

    def __init__(self, protocol: ImapProtocol, account: SourceAccount) -> None:
        self._protocol = protocol
        self._account = account
        self._selected: str | None = None

    @classmethod
    async def open(
        cls, account: SourceAccount, *, allow_private: bool = False, ca_file: str | None = None
    ) -> SourceSession:
        """Connects, secures the connection as ``account.security`` says, and logs in.

        ``allow_private`` lets the host be a loopback or private address (the local stack and
        tests; never a deployed stack). ``ca_file`` is a PEM bundle of CAs to trust besides the
        system's. Raises SourceError; ValueError for an unknown ``security``.
        """
        protocol = await connect(account, allow_private=allow_private, ca_file=ca_file)
        session = cls(protocol, account)
        try:
            await session._login()
        except BaseException:
            protocol.abort()
            raise
        return session

    async def __aenter__(self) -> SourceSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def capabilities(self) -> frozenset[str]:
        """What the server says it can do (upper-case), as of the last CAPABILITY."""
        return frozenset(capability.upper() for capability in self._protocol.capabilities)

    @property
    def tls_version(self) -> str | None:
        """The TLS version protecting the connection (``TLSv1.3``), None if it is plaintext."""
        ssl_object = self._protocol.transport.get_extra_info("ssl_object")
        return str(ssl_object.version()) if ssl_object is not None else None

    async def _login(self) -> None:
        protocol, account = self._protocol, self._account
        if protocol.state == aioimaplib.AUTH:
            return  # PREAUTH greeting: the server already knows who we are
        who = mask_username(account.username)
        if "LOGINDISABLED" in self.capabilities:
            raise SourceError(
                "auth_failed",
                f"The IMAP server does not accept a password login for {who} on a connection without "
                "TLS; use security 'ssl' or 'tls'",
            )
        try:
            # aioimaplib sends the username as given: quote it, for names with spaces or quotes.
            result = await self._run(protocol.login(quote(account.username), account.password), "login")
        except ValueError:
            raise SourceError(
                "auth_failed", f"The username or password for {who} contains a line break or NUL"
            ) from None
        if result.result != "OK":
            detail = scrub(_completion_text(result), account.password)
            raise SourceError(
                "auth_failed",
                f"The IMAP server refused the login for {who}" + (f": {detail}" if detail else ""),
            )
        # Servers may announce more once logged in (SPECIAL-USE, LIST-EXTENDED...).
        await self._run(protocol.capability(), "CAPABILITY")

    async def folders(self) -> list[SourceFolder]:
        """Every folder of the account, INBOX first then by name, with message counts.

        One LIST (asking for SPECIAL-USE attributes when the server supports it), then one STATUS
        per selectable folder.
        """
        protocol = self._protocol
        arguments = ['""', '"*"']
        if {"SPECIAL-USE", "LIST-EXTENDED"} <= self.capabilities:
            arguments += ["RETURN", "(SPECIAL-USE)"]
        listed = self._ok(await self._run(protocol.simple_command("LIST", *arguments), "LIST"), "LIST")
        entries = list(
            {entry.raw_name: entry for entry in self._parsed(parse.parse_list, listed, "LIST")}.values()
        )
        names = [_display_name(entry.raw_name) for entry in entries]
        uses = special_use.assign(
            [(name, entry.delimiter, entry.attributes) for name, entry in zip(names, entries, strict=True)]
        )
        folders: list[SourceFolder] = []
        for entry, name, use in zip(entries, names, uses, strict=True):
            selectable = not {attribute.casefold() for attribute in entry.attributes} & _NOT_SELECTABLE
            messages, uidvalidity, size = (
                (await self._status(entry.raw_name, name)) if selectable else (0, None, None)
            )
            folders.append(
                SourceFolder(
                    name=name,
                    raw_name=entry.raw_name,
                    delimiter=entry.delimiter,
                    attributes=entry.attributes,
                    special_use=use,
                    messages=messages,
                    uidvalidity=uidvalidity,
                    selectable=selectable,
                    size=size,
                )
            )
        folders.sort(key=lambda folder: (folder.special_use != "inbox", folder.name.casefold(), folder.name))
        return folders

    async def _status(self, raw_name: str, name: str) -> tuple[int, int | None, int | None]:
        # STATUS=SIZE (RFC 8438): the folder's octets in the same round trip, when offered.
        with_size = "STATUS=SIZE" in self.capabilities
        items = "(MESSAGES UIDVALIDITY SIZE)" if with_size else "(MESSAGES UIDVALIDITY)"
        result = await self._run(self._protocol.simple_command("STATUS", quote(raw_name), items), "STATUS")
        if result.result != "OK":
            # Listed a moment ago but not countable (removed meanwhile, or a server quirk): show it
            # empty rather than fail the whole listing.
            logger().warning("STATUS refused", extra={"folder": name, "response": _completion_text(result)})
            return 0, None, None
        counters = self._parsed(parse.parse_status, result, "STATUS")
        return counters.get("MESSAGES", 0), counters.get("UIDVALIDITY"), counters.get("SIZE")

    async def select(self, raw_name: str) -> tuple[int, int]:
        """Opens a folder read-only (EXAMINE; SELECT if the server rejects that): (uidvalidity, exists).

        ``raw_name`` is ``SourceFolder.raw_name``. uidvalidity is 0 if the server reports none.
        """
        protocol = self._protocol
        name = _display_name(raw_name)
        self._selected = None
        result = await self._run(protocol.simple_command("EXAMINE", quote(raw_name)), f"EXAMINE {name}")
        if result.result == "BAD":
            result = await self._run(protocol.select(quote(raw_name)), f"SELECT {name}")
        if result.result != "OK":
            # A failed SELECT/EXAMINE leaves no folder selected (RFC 3501 section 6.3.1).
            protocol.state = aioimaplib.AUTH
            raise SourceError(
                "protocol_error",
                f"The IMAP server could not open the folder {name}: {_completion_text(result)}",
            )
        # simple_command does not track the state; aioimaplib refuses UID commands outside SELECTED.
        protocol.state = aioimaplib.SELECTED
        self._selected = raw_name
        uidvalidity, exists = parse.parse_select(result.lines)
        return uidvalidity or 0, exists or 0

    async def uids(self, since: date | None = None) -> list[int]:
        """The UIDs of the selected folder's messages, ascending; only those received on or after
        ``since`` (the server's INTERNALDATE, by its own calendar) if given."""
        self._require_selected()
        criteria = ("SINCE", search_date(since)) if since is not None else ("ALL",)
        result = await self._run(self._protocol.search(*criteria, by_uid=True, charset=None), "UID SEARCH")
        self._ok(result, "UID SEARCH")
        return sorted(set(self._parsed(parse.parse_search, result, "UID SEARCH")))

    async def sizes(self, numbers: Sequence[int], *, by_uid: bool = False) -> dict[int, int]:
        """RFC822.SIZE of the selected folder's messages with these sequence numbers (at most the
        folder's EXISTS: a server refuses the FETCH otherwise) or, ``by_uid``, UIDs (one the folder
        lacks is left out), one FETCH: number → octets."""
        self._require_selected()
        if not numbers:
            return {}
        result = await self._run(
            self._protocol.fetch_items(
                uid_set(numbers),
                "(UID RFC822.SIZE)",
                by_uid=by_uid,
                inactivity_limit=self._account.timeout_seconds,
            ),
            f"FETCH RFC822.SIZE of {len(numbers)} messages",
            inactivity_bound=True,
        )
        self._ok(result, "FETCH RFC822.SIZE")
        wanted = set(numbers)
        found = self._parsed(lambda lines: parse.parse_sizes(lines, by_uid=by_uid), result, "FETCH")
        return {number: size for number, size in found.items() if number in wanted}

    async def fetch(self, uids: Sequence[int], *, chunk_size: int = 200) -> AsyncIterator[FetchedMessage]:
        """The messages with these UIDs from the selected folder, ascending, ``chunk_size`` per FETCH.

        Chunks bound the memory one response takes (and what one failure costs). BODY.PEEK leaves
        the \\Seen flag alone. A UID the server returns no message for (expunged meanwhile, or
        unreadable on its side) is not yielded: callers count what they asked for against what
        they got.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._require_selected()
        ordered = sorted(set(uids))
        for start in range(0, len(ordered), chunk_size):
            chunk = ordered[start : start + chunk_size]
            for message in await self._fetch_chunk(chunk):
                yield message

    async def _fetch_chunk(self, chunk: list[int]) -> list[FetchedMessage]:
        protocol = self._protocol
        step = f"UID FETCH of {len(chunk)} messages"
        result = await self._run(
            protocol.uid_fetch(uid_set(chunk), _FETCH_ITEMS, inactivity_limit=self._account.timeout_seconds),
            step,
            inactivity_bound=True,
        )
        if result.result not in ("OK", "NO"):
            raise SourceError(
                "protocol_error", f"The IMAP server rejected the {step}: {_completion_text(result)}"
            )
        if result.result == "NO":
            # Dovecot, for one, answers NO yet returns every message it could read: keep those.
            logger().warning("FETCH partly refused", extra={"response": _completion_text(result)})
        items, problems = parse.parse_fetch(result.lines)
        for problem in problems:
            logger().warning("unreadable FETCH response skipped", extra={"problem": problem})
        wanted = set(chunk)
        messages: dict[int, FetchedMessage] = {}
        for item in items:
            message = parse.fetched_message(item)
            if message is not None and message.uid in wanted:
                messages[message.uid] = message
        return [messages[uid] for uid in sorted(messages)]

    async def close(self) -> None:
        """Logs out and closes the connection; quietly, if the connection is already gone."""
        protocol = self._protocol
        if protocol.closed.done():
            return
        try:
            await protocol.bounded(
                protocol.logout(),
                time_limit=min(self._account.timeout_seconds, _LOGOUT_SECONDS),
                step="LOGOUT",
            )
        except (SourceError, aioimaplib.AioImapException, OSError):
            pass  # the goodbye is a courtesy; the connection is dropped either way
        finally:
            protocol.abort()

    async def _run(self, awaitable: Awaitable[Any], step: str, *, inactivity_bound: bool = False) -> Any:
        """One command, bounded; SourceError if it cannot complete (see ``ImapProtocol.bounded``).

        ``inactivity_bound`` is for commands built with aioimaplib's own timer, which restarts
        whenever data arrives: no overall limit is added.
        """
        protocol = self._protocol
        if protocol.closed.done():
            if hasattr(awaitable, "close"):
                awaitable.close()  # never started: do not leave a coroutine un-awaited
            raise SourceError("connection_failed", "The IMAP connection is closed (after an earlier error)")
        bound = None if inactivity_bound else self._account.timeout_seconds
        return await protocol.bounded(awaitable, time_limit=bound, step=step)

    def _ok(self, result: Any, step: str) -> Any:
        if result.result != "OK":
            raise SourceError("protocol_error", f"The IMAP server refused {step}: {_completion_text(result)}")
        return result

    def _parsed(self, parser: Any, result: Any, step: str) -> Any:
        try:
            return parser(result.lines)
        except parse.ResponseError as exc:
            raise SourceError(
                "protocol_error", f"The IMAP server's answer to {step} could not be read: {exc}"
            ) from exc

    def _require_selected(self) -> None:
        if self._selected is None:
            raise RuntimeError("select() a folder first")


@asynccontextmanager
async def open_session(
    account: SourceAccount, *, allow_private: bool | None = None, ca_file: str | None = None
) -> AsyncIterator[SourceSession]:
    """``SourceSession.open`` with the deployment's settings as defaults, closed on exit.

    ``allow_private`` and ``ca_file`` default to ``MAILROOM_IMAP_ALLOW_PRIVATE`` and
    ``MAILROOM_IMAP_CA_FILE``.
    """
    from mailroom.settings import get_settings

    settings = get_settings()
    session = await SourceSession.open(
        account,
        allow_private=settings.imap_allow_private if allow_private is None else allow_private,
        ca_file=ca_file if ca_file is not None else settings.imap_ca_file,
    )
    try:
        yield session
    finally:
        await session.close()


def _display_name(raw_name: str) -> str:
    if raw_name.casefold() == "inbox":
        return "INBOX"  # case-insensitive by definition (RFC 3501 section 5.1)
    try:
        return utf7.decode(raw_name)
    except ValueError:
        return raw_name  # a server sending UTF-8 or a broken name: show it as it is


def _completion_text(result: Any) -> str:
    """The text of a command's tagged completion line (``[AUTHENTICATIONFAILED] Authentication failed.``)."""
    if not result.lines:
        return ""
    last = result.lines[-1]
    return (
        bytes(last).decode("utf-8", "replace").strip()[:300]
        if isinstance(last, bytes | bytearray)
        else str(last)
    )
