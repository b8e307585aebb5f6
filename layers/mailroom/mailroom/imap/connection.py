"""Reaching a source IMAP server: DNS, the SSRF check, TCP, TLS or STARTTLS, and the greeting.

The host is resolved here and the connection made to a vetted address, with the host name still
used for TLS (SNI and certificate check), so a second lookup cannot swap in an internal address
(DNS rebinding). Certificates are always verified; a CA bundle can be added, never verification
taken away.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aioimaplib

from mailroom.domain import ssrf
from mailroom.imap.errors import SourceError
from mailroom.imap.models import SourceAccount
from mailroom.imap.presets import SECURITY
from mailroom.imap.protocol import ImapProtocol, tls_error


async def connect(account: SourceAccount, *, allow_private: bool, ca_file: str | None) -> ImapProtocol:
    """A connection that has received the server's greeting (and, for ``tls``, completed STARTTLS).

    Every step is bounded by ``account.timeout_seconds``. Raises SourceError.
    """
    if account.security not in SECURITY:
        raise ValueError(f"security must be one of {', '.join(SECURITY)}, got {account.security!r}")
    timeout = account.timeout_seconds
    addresses = await resolve(account.host, account.port, time_limit=timeout)
    if not allow_private:
        for address in addresses:
            reason = ssrf.block_reason(address)
            if reason is not None:
                # A name that mixes public and internal addresses is refused outright, not filtered.
                raise SourceError(
                    "connection_failed",
                    f"{account.host} resolves to {address}, which is not a public address ({reason})",
                )
    context = tls_context(ca_file) if account.security in ("ssl", "tls") else None
    protocol = await _open(account, addresses, context if account.security == "ssl" else None)
    try:
        await protocol.bounded(protocol.wait("AUTH|NONAUTH"), time_limit=timeout, step="the greeting")
        if account.security == "tls":
            assert context is not None
            if protocol.state != aioimaplib.NONAUTH:
                # PREAUTH: logged in before any TLS, and STARTTLS is no longer allowed.
                raise SourceError(
                    "tls_failed",
                    f"{account.host}:{account.port} logged the connection in before TLS (PREAUTH)",
                )
            if "STARTTLS" not in {capability.upper() for capability in protocol.capabilities}:
                raise SourceError(
                    "tls_failed",
                    f"{account.host}:{account.port} does not offer STARTTLS, so the login was not sent; "
                    "use security 'ssl' (usually port 993) instead",
                )
            await protocol.starttls(context, account.host, time_limit=timeout)
    except BaseException:
        protocol.abort()
        raise
    return protocol


async def resolve(host: str, port: int, *, time_limit: float) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself), in resolver order."""
    if not host:
        raise SourceError("connection_failed", "No IMAP server host was given")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), time_limit)
    except TimeoutError:
        raise SourceError("timeout", f"Looking up {host} took longer than {time_limit:g} s") from None
    except (OSError, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError("connection_failed", f"Could not find the IMAP server {host}: {detail}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise SourceError("connection_failed", f"{host} has no address")
    return addresses


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trusted CAs (plus ``ca_file``'s), with hostname checking: never anything less."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RuntimeError(f"the IMAP CA bundle {ca_file} cannot be loaded: {exc}") from exc
    return context


async def _open(account: SourceAccount, addresses: list[str], context: ssl.SSLContext | None) -> ImapProtocol:
    """A connection to the first address that takes one (TLS from the start if ``context``)."""
    timeout = account.timeout_seconds
    where = f"{account.host}:{account.port}"
    failure = SourceError("connection_failed", f"Could not connect to {where}")
    for address in addresses:
        try:
            protocol = await asyncio.wait_for(_connect_to(address, account, context), timeout)
        except TimeoutError:
            failure = SourceError("timeout", f"{where} did not accept a connection within {timeout:g} s")
        except ssl.SSLError as exc:
            # Every address serves the same certificate: no point trying the next.
            raise tls_error(account.host, exc) from exc
        except OSError as exc:
            failure = SourceError("connection_failed", f"Could not connect to {where}: {exc.strerror or exc}")
        else:
            return protocol
    raise failure


async def _connect_to(address: str, account: SourceAccount, context: ssl.SSLContext | None) -> ImapProtocol:
    loop = asyncio.get_running_loop()
    protocol = ImapProtocol(loop)
    await loop.create_connection(
        lambda: protocol,
        address,
        account.port,
        ssl=context,
        server_hostname=account.host if context is not None else None,
    )
    return protocol
