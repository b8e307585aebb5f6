"""aioimaplib's client protocol, with the fixes a migration needs.

- Response parsing is a loop, not a recursion per line: upstream recurses once per received line,
  so one network read holding more than about a thousand short lines (a big LIST, a FETCH of
  many small messages) raises RecursionError inside ``data_received`` and kills the connection.
  Lines are found by position instead of by repeatedly copying the rest of the buffer.
- A FETCH response is known to be complete from a running count of parentheses: upstream
  rescans every line since the last ``* n FETCH`` on each new line, which is quadratic in the
  lines of one message's response (and, before the first, of the whole response).
- Only the leading ``* `` of an untagged line is removed: upstream removes every ``* `` in the
  line, so a mailbox called ``"*** Urgent"`` came back as ``"**Urgent"``.
- The end of the connection and any error raised while parsing are kept (``closed``,
  ``failure``), so a caller waiting for a command hears about a dead connection at once instead
  of when its timeout runs out.
- STARTTLS, which aioimaplib does not offer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

import aioimaplib

from mailroom.imap.errors import SourceError

T = TypeVar("T")
_CRLF = b"\r\n"


class ImapProtocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]  # aioimaplib is untyped
    transport: Any  # set by asyncio (connection_made), replaced by starttls

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.closed: asyncio.Future[None] = loop.create_future()
        self.failure: BaseException | None = None

    # -- connection state ---------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def abort(self) -> None:
        """Drops the connection without a goodbye (after a timeout, nothing else is safe)."""
        if self.transport is not None:
            self.transport.abort()
        if not self.closed.done():
            self.closed.set_result(None)

    async def bounded(self, awaitable: Awaitable[T], *, time_limit: float | None, step: str) -> T:
        """The result of ``awaitable`` (one protocol step), or SourceError if it cannot come.

        ``time_limit`` None leaves the bound to the command itself (aioimaplib's per-command timer,
        which restarts whenever data arrives). A timeout, a cancellation or an aioimaplib error
        aborts the connection: the server may still answer the abandoned command, and nothing after it could
        be trusted. Other exceptions of ``awaitable`` (ValueError for an argument aioimaplib
        refuses) pass through.
        """
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        waiting: set[asyncio.Future[Any]] = {task, self.closed}
        try:
            done, _ = await asyncio.wait(waiting, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The command is abandoned half-way, like after a timeout.
            task.cancel()
            self.abort()
            raise
        if task in done:
            try:
                return task.result()
            except aioimaplib.CommandTimeout:
                self.abort()
                raise SourceError("timeout", f"The IMAP server stopped answering during {step}") from None
            except aioimaplib.AioImapException as exc:
                # Not chained, for the reason below.
                self.abort()
                kind = type(exc).__name__
                raise SourceError(
                    "protocol_error", f"The IMAP exchange failed during {step} ({kind})"
                ) from None
        task.cancel()
        if self.closed in done:
            if self.failure is not None:
                # Not chained: aioimaplib's messages can quote the pending command, and LOGIN's
                # holds the password; the kind of failure is enough.
                kind = type(self.failure).__name__
                raise SourceError(
                    "protocol_error", f"The IMAP server's answer during {step} could not be read ({kind})"
                ) from None
            raise SourceError("connection_failed", f"The IMAP server closed the connection during {step}")
        self.abort()
        raise SourceError("timeout", f"The IMAP server did not answer within {time_limit:g} s during {step}")

    # -- STARTTLS -----------------------------------------------------------------------------

    async def starttls(self, context: ssl.SSLContext, server_hostname: str, *, time_limit: float) -> None:
        """Upgrades the connection to TLS (the caller has checked the STARTTLS capability).

        The capabilities are asked for again afterwards: what the server said before TLS may have
        been altered on the way (RFC 3501 section 6.2.1).
        """
        command = aioimaplib.Command("STARTTLS", self.new_tag(), loop=self.loop)
        response = await self.bounded(self.execute(command), time_limit=time_limit, step="STARTTLS")
        if response.result != "OK":
            raise SourceError("tls_failed", "The IMAP server refused to start TLS (STARTTLS)")
        try:
            tls_transport = await asyncio.wait_for(
                self.loop.start_tls(self.transport, self, context, server_hostname=server_hostname),
                time_limit,
            )
        except TimeoutError:
            self.abort()
            raise SourceError(
                "timeout", f"The TLS handshake did not finish within {time_limit:g} s"
            ) from None
        except (ssl.SSLError, ConnectionError) as exc:
            self.abort()
            raise tls_error(server_hostname, exc) from exc
        self.transport = tls_transport
        await self.bounded(self.capability(), time_limit=time_limit, step="CAPABILITY")

    async def uid_fetch(self, uid_set: str, items: str, *, inactivity_limit: float) -> Any:
        """``UID FETCH uid_set items``; fails with CommandTimeout after ``inactivity_limit`` seconds
        without data."""
        command = FetchCommand(
            self.new_tag(), uid_set, items, prefix="UID", loop=self.loop, timeout=inactivity_limit
        )
        return await self.execute(command)

    async def fetch_items(
        self, message_set: str, items: str, *, by_uid: bool, inactivity_limit: float
    ) -> Any:
        """``[UID] FETCH message_set items`` (sequence numbers unless ``by_uid``), bounded like
        ``uid_fetch``."""
        command = FetchCommand(
            self.new_tag(),
            message_set,
            items,
            prefix="UID" if by_uid else "",
            loop=self.loop,
            timeout=inactivity_limit,
        )
        return await self.execute(command)

    # -- parsing ------------------------------------------------------------------------------

    def data_received(self, d: bytes) -> None:
        try:
            super().data_received(d)
        except Exception as exc:
            # Upstream lets parsing errors escape into asyncio, which logs and closes the
            # transport; keep the reason so the waiting command can report it.
            self.failure = exc
            self.abort()

    def _handle_responses(
        self, data: bytes, line_handler: Any, current_cmd: aioimaplib.Command | None = None
    ) -> None:
        position = 0
        length = len(data)
        while True:
            if position >= length:
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and current_cmd.wait_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                view = memoryview(data)[position:]
                rest = current_cmd.append_literal_data(view)
                position += len(view) - len(rest)
                if current_cmd.wait_literal_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
            end = data.find(_CRLF, position)
            if end == -1:
                raise aioimaplib.IncompleteRead(current_cmd, data[position:])
            line = data[position:end]
            position = end + 2
            cmd = line_handler(line, current_cmd)
            begin_literal = aioimaplib.literal_data_re.match(line)
            if begin_literal:
                if cmd is None:
                    cmd = aioimaplib.Command("NIL", "unused")
                cmd.begin_literal_data(int(begin_literal.group("size")))
                current_cmd = cmd
            elif cmd is not None and cmd.wait_data():
                current_cmd = cmd
            else:
                current_cmd = None

    def _untagged_response(self, line: bytes) -> aioimaplib.Command | None:
        if line.startswith(b"* "):
            line = line[2:]
        if self.pending_sync_command is not None:
            self.pending_sync_command.append_to_resp(line)
            command: aioimaplib.Command | None = self.pending_sync_command
            return command
        match = aioimaplib.message_data_re.match(line)
        if match:
            name, text = match.group(1), line
        else:
            name, _, text = line.partition(b" ")
        command = self.pending_async_commands.get(name.decode(errors="replace").upper())
        if command is not None:
            command.append_to_resp(text)
            return command
        # Untagged data nobody asked for (EXISTS while fetching, say) goes to a pending NOOP, as
        # upstream does, or is dropped.
        command = self.pending_async_commands.get("NOOP")
        if command is not None:
            command.append_to_resp(line)
        return command


class FetchCommand(aioimaplib.FetchCommand):  # type: ignore[misc]  # aioimaplib is untyped
    """A FETCH that tracks the open parentheses of the current message's response as lines arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._depth = 0
        super().__init__(*args, **kwargs)

    def append_to_resp(self, line: bytes | bytearray, result: str = "Pending") -> None:
        if isinstance(line, bytes):  # literals come as bytearray and do not count, as upstream
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._depth = 0
            self._depth += line.count(b"(") - line.count(b")")
        super().append_to_resp(line, result)

    def wait_data(self) -> bool:
        return self._depth != 0


def tls_error(host: str, exc: BaseException) -> SourceError:
    """The SourceError for a failed TLS handshake with ``host``, saying why in plain words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        return SourceError("tls_failed", f"The certificate of {host} could not be verified: {reason}")
    return SourceError("tls_failed", f"The TLS handshake with {host} failed: {exc}")
