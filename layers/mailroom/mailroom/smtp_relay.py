"""Talking to a customer's SMTP relay (aiosmtplib): resolve, vet, connect, TLS, AUTH, send.

The host is resolved here and the connection made to a vetted address (the SSRF guard of
``domain/ssrf.py``: a relay host is chosen by a tenant), with the host name still used for TLS (SNI
and certificate check), so a second lookup cannot swap in an internal address. Certificates are
always verified (a CA bundle can be added, never verification taken away), and a password is only
sent over TLS. Every step is bounded by the relay's timeout.

Each step's outcome and the server's reply are recorded (``Step``) for ``POST /api/v1/smtp:test``;
a password never appears in them (AUTH replies do not echo it, and errors are built from codes and
server text only). I/O but not AWS, beside ``smtp_probe``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailroom.domain import ssrf

if TYPE_CHECKING:
    from aiosmtplib import SMTP

SECURITIES = ("ssl", "starttls", "none")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    host: str
    port: int
    security: str  # ssl (implicit TLS, usually 465) | starttls (usually 587) | none
    username: str | None
    password: str | None
    timeout: float = 20.0
    allow_private: bool = False
    ca_file: str | None = None
    helo: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    step: str  # resolve, connect, tls, auth, send
    ok: bool
    reply: str | None = None  # the server's reply ("235 2.7.0 Authentication successful")
    detail: str | None = None


class RelayFailed(Exception):
    """A step failed. ``permanent``: the server refused with a 5xx (retrying the same will fail again)."""

    def __init__(self, step: str, detail: str, *, reply: str | None = None, code: int | None = None) -> None:
        super().__init__(detail)
        self.step = step
        self.detail = detail
        self.reply = reply
        self.code = code

    @property
    def permanent(self) -> bool:
        return self.code is not None and 500 <= self.code < 600


@dataclass
class Session:
    steps: list[Step] = field(default_factory=list)

    def ok(self, step: str, reply: str | None = None, detail: str | None = None) -> None:
        self.steps.append(Step(step, True, reply, detail))

    def failed(self, failure: RelayFailed) -> None:
        self.steps.append(Step(failure.step, False, failure.reply, failure.detail))


@dataclass(frozen=True, slots=True)
class Sent:
    reply: str  # the reply to DATA (it usually carries the relay's queue id)
    refused: dict[str, str]  # recipients refused at RCPT time → the reply


def reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:500]


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def _resolve(config: RelayConfig) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM), config.timeout
        )
    except TimeoutError:
        raise RelayFailed(
            "resolve", f"looking up {config.host} took longer than {config.timeout:g}s"
        ) from None
    except (OSError, UnicodeError) as exc:
        raise RelayFailed("resolve", f"could not find {config.host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not config.allow_private:
        for address in addresses:
            reason = ssrf.block_reason(address)
            if reason is not None:
                # A name mixing public and internal addresses is refused outright, not filtered.
                raise RelayFailed(
                    "resolve",
                    f"{config.host} resolves to {address}, which is not a public address ({reason})",
                )
    if not addresses:
        raise RelayFailed("resolve", f"{config.host} has no address")
    return addresses


async def _socket(addresses: list[str], config: RelayConfig) -> socket.socket:
    loop = asyncio.get_running_loop()
    failures = []
    for address in addresses[:3]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, config.port)), config.timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            failures.append(f"{address}: {exc or 'timed out'}")
            continue
        return sock
    raise RelayFailed("connect", f"could not connect to {config.host}:{config.port} ({'; '.join(failures)})")


async def open_session(config: RelayConfig, session: Session) -> SMTP:
    """Connected, TLS as configured, authenticated: each step recorded in ``session``."""
    import aiosmtplib

    addresses = await _resolve(config)
    session.ok("resolve", detail=", ".join(addresses))
    sock = await _socket(addresses, config)
    context = _tls_context(config.ca_file) if config.security != "none" else None
    client = aiosmtplib.SMTP(
        hostname=config.host,
        sock=sock,
        use_tls=config.security == "ssl",
        start_tls=False,
        tls_context=context,
        timeout=config.timeout,
        local_hostname=config.helo,
    )
    try:
        try:
            greeting = await client.connect()
        except ssl.SSLError as exc:
            raise RelayFailed("tls", f"TLS with {config.host} failed: {exc.reason or exc}") from exc
        except aiosmtplib.SMTPException as exc:
            raise RelayFailed("connect", f"{config.host}: {exc}") from exc
        session.ok("connect", reply=reply_text(greeting.code, greeting.message))
        await client.ehlo()
        if config.security == "starttls":
            if not client.supports_extension("starttls"):
                raise RelayFailed("tls", f"{config.host}:{config.port} does not offer STARTTLS")
            try:
                response = await client.starttls(server_hostname=config.host, tls_context=context)
            except ssl.SSLError as exc:
                raise RelayFailed("tls", f"TLS with {config.host} failed: {exc.reason or exc}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                raise RelayFailed(
                    "tls", "STARTTLS refused", reply=reply_text(exc.code, exc.message), code=exc.code
                ) from exc
            session.ok("tls", reply=reply_text(response.code, response.message))
            await client.ehlo()  # RFC 3207: what the server offers (AUTH) is asked again over TLS
        elif config.security == "ssl":
            session.ok("tls", detail="implicit TLS, certificate verified")
        if config.username:
            if config.security == "none":
                raise RelayFailed("auth", "a password is only sent over TLS (security ssl or starttls)")
            # One attempt with the best mechanism offered (aiosmtplib's login() would try each in
            # turn: several failed logins per test can lock an account).
            offered = client.supported_auth_methods
            mechanism = next((m for m in ("plain", "login", "cram-md5") if m in offered), None)
            if mechanism is None:
                raise RelayFailed(
                    "auth", f"{config.host} offers no AUTH mechanism Mailroom speaks ({offered})"
                )
            try:
                authenticate = getattr(client, f"auth_{mechanism.replace('-', '')}")
                response = await authenticate(config.username, config.password or "")
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise RelayFailed(
                    "auth", "authentication failed", reply=reply_text(exc.code, exc.message), code=exc.code
                ) from exc
            except aiosmtplib.SMTPException as exc:
                raise RelayFailed("auth", f"authentication failed: {exc}") from exc
            session.ok("auth", reply=reply_text(response.code, response.message))
    except BaseException:
        client.close()
        raise
    return client


async def send(config: RelayConfig, raw: bytes, *, envelope_from: str, recipients: list[str]) -> Sent:
    """Send ``raw`` as is (byte for byte). RelayFailed if nothing was accepted; otherwise what was
    refused at RCPT time."""
    import aiosmtplib

    session = Session()
    try:
        async with asyncio.timeout(config.timeout * 8):
            client = await open_session(config, session)
            try:
                refused, reply = await client.sendmail(envelope_from, recipients, raw)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                first = exc.recipients[0]
                raise RelayFailed(
                    "send",
                    "every recipient was refused",
                    reply=reply_text(first.code, first.message),
                    code=first.code,
                ) from exc
            except aiosmtplib.SMTPResponseException as exc:
                raise RelayFailed(
                    "send",
                    "the relay refused the message",
                    reply=reply_text(exc.code, exc.message),
                    code=exc.code,
                ) from exc
            except aiosmtplib.SMTPException as exc:
                raise RelayFailed("send", f"sending failed: {exc}") from exc
            finally:
                await _quit(client)
    except TimeoutError:
        raise RelayFailed("send", f"the relay did not finish within {config.timeout * 8:g}s") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise RelayFailed("connect", f"{config.host}: {exc or type(exc).__name__}") from exc
    return Sent(
        reply=reply_text(250, reply),
        refused={address: reply_text(r.code, r.message) for address, r in refused.items()},
    )


async def test(config: RelayConfig, message: tuple[bytes, str, str] | None) -> list[Step]:
    """Every step's outcome; with ``message`` (raw, envelope from, recipient), a real send too."""
    import aiosmtplib

    session = Session()
    try:
        async with asyncio.timeout(config.timeout * 8):
            client = await open_session(config, session)
            try:
                if message is not None:
                    raw, envelope_from, recipient = message
                    try:
                        _refused, reply = await client.sendmail(envelope_from, [recipient], raw)
                    except aiosmtplib.SMTPRecipientsRefused as exc:
                        first = exc.recipients[0]
                        raise RelayFailed(
                            "send",
                            "the recipient was refused",
                            reply=reply_text(first.code, first.message),
                            code=first.code,
                        ) from exc
                    except aiosmtplib.SMTPResponseException as exc:
                        raise RelayFailed(
                            "send",
                            "the test message was refused",
                            reply=reply_text(exc.code, exc.message),
                            code=exc.code,
                        ) from exc
                    session.ok("send", reply=reply_text(250, reply))
            finally:
                await _quit(client)
    except RelayFailed as failure:
        session.failed(failure)
    except TimeoutError:
        session.failed(RelayFailed("connect", f"the relay did not finish within {config.timeout * 8:g}s"))
    except (aiosmtplib.SMTPException, OSError) as exc:
        session.failed(RelayFailed("connect", f"{config.host}: {exc}"))
    return session.steps


async def _quit(client: SMTP) -> None:
    import aiosmtplib

    if not client.is_connected:
        return
    try:
        await asyncio.wait_for(client.quit(), timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
