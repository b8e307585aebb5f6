"""The SMTP probe: ask a domain's best mail host whether it would accept a recipient, without
sending anything.

Connect to port 25 of the best MX (the next one if it cannot be reached), EHLO, STARTTLS where
offered (opportunistic, as MTAs do: MX certificates rarely name the MX), MAIL FROM the configured
probe sender, RCPT TO the address, RCPT TO a random address of the same domain (accepted too → a
catch-all domain), QUIT without DATA. Every step has a time limit and so does the whole probe.

Where outbound port 25 is blocked (AWS Lambda and EC2 by default), connecting fails: the probe
answers ``unknown`` with that reason rather than guessing. Mail hosts are resolved here and each
address is checked by the SSRF guard before connecting (a tenant can publish an MX pointing at
169.254.169.254), unless the deployment allows private addresses (local stack, tests).

I/O but not AWS, beside ``mail_dns``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailroom.domain import ssrf
from mailroom.domain.verification import Probe, Smtp
from mailroom.mail_dns import MailDns

if TYPE_CHECKING:
    from aiosmtplib import SMTP

MAX_HOSTS = 2  # MX hosts tried in preference order before answering unknown


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    port: int
    mail_from: str
    helo: str
    timeout: float  # per step (connect, each command)
    allow_private: bool = False

    @property
    def total_timeout(self) -> float:
        return self.timeout * 6  # connect, EHLO, STARTTLS + EHLO, MAIL, RCPT x2 (QUIT is not awaited long)


class _Unreachable(Exception):
    pass


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:300]


async def _connect(dns: MailDns, hosts: tuple[str, ...], settings: ProbeSettings) -> tuple[SMTP, str]:
    import aiosmtplib

    failures: list[str] = []
    for host in hosts[:MAX_HOSTS]:
        addresses = await dns.addresses(host)
        if not addresses:
            failures.append(f"{host}: no address")
            continue
        for address in addresses[:2]:
            blocked = None if settings.allow_private else ssrf.block_reason(address)
            if blocked:
                failures.append(f"{host} ({address}): not a public address ({blocked})")
                continue
            client = aiosmtplib.SMTP(
                hostname=address,
                port=settings.port,
                local_hostname=settings.helo,
                timeout=settings.timeout,
                start_tls=False,
                validate_certs=False,
            )
            try:
                await client.connect()
            except (aiosmtplib.SMTPException, OSError) as exc:
                failures.append(f"{host} ({address}): {exc or type(exc).__name__}")
                continue
            return client, host
    raise _Unreachable("; ".join(failures) or "no mail host")


async def probe(
    dns: MailDns, address: str, domain: str, hosts: tuple[str, ...], settings: ProbeSettings
) -> Probe:
    """What the domain's mail host says about ``address`` (ASCII domain, hosts best first)."""
    try:
        async with asyncio.timeout(settings.total_timeout):
            return await _probe(dns, address, domain, hosts, settings)
    except TimeoutError:
        return Probe(
            Smtp.UNKNOWN,
            reason="smtp_timeout",
            detail=f"the mail server did not finish answering within {settings.total_timeout:g}s",
        )


async def _probe(
    dns: MailDns, address: str, domain: str, hosts: tuple[str, ...], settings: ProbeSettings
) -> Probe:
    import aiosmtplib

    try:
        client, host = await _connect(dns, hosts, settings)
    except _Unreachable as exc:
        return Probe(
            Smtp.UNKNOWN,
            reason="smtp_unreachable",
            detail=f"could not connect to port {settings.port} of the mail host (outbound port 25 may be "
            f"blocked where this runs): {exc}"[:500],
        )
    try:
        await client.ehlo()
        if client.supports_extension("starttls"):
            await client.starttls(server_hostname=host, validate_certs=False)
            await client.ehlo()
        options = ["SMTPUTF8"] if not address.isascii() and client.supports_extension("smtputf8") else []
        if not address.isascii() and not options:
            return Probe(
                Smtp.UNKNOWN,
                reason="smtputf8_unsupported",
                detail=f"{host} does not accept internationalized addresses (no SMTPUTF8)",
            )
        await client.mail(settings.mail_from, options=options, encoding="utf-8")
        first = await _rcpt(client, address)
        if first[0] >= 500:
            return Probe(Smtp.REJECTED, catch_all=None, reply=_reply(*first))
        if first[0] >= 400:
            return Probe(
                Smtp.UNKNOWN,
                reply=_reply(*first),
                reason="smtp_temporary_failure",
                detail=f"{host} answered with a temporary failure (greylisting?): {_reply(*first)}",
            )
        decoy = await _rcpt(client, f"{secrets.token_hex(12)}@{domain}")
        return Probe(Smtp.ACCEPTED, catch_all=decoy[0] < 300, reply=_reply(*first))
    except aiosmtplib.SMTPSenderRefused as exc:
        return Probe(
            Smtp.UNKNOWN,
            reason="smtp_sender_refused",
            detail=f"{host} refused the probe sender: {_reply(exc.code, exc.message)}",
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Probe(Smtp.UNKNOWN, reason="smtp_error", detail=f"{host}: {exc or type(exc).__name__}"[:500])
    finally:
        await _quit(client)


async def _rcpt(client: SMTP, recipient: str) -> tuple[int, str]:
    import aiosmtplib

    try:
        response = await client.rcpt(recipient, encoding="utf-8")
    except aiosmtplib.SMTPRecipientRefused as refused:
        return refused.code, refused.message
    return response.code, response.message


async def _quit(client: SMTP) -> None:
    import aiosmtplib

    if not client.is_connected:
        return
    try:
        await asyncio.wait_for(client.quit(), timeout=2)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
