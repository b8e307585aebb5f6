"""A real SMTP server (aiosmtpd) standing in for a domain's mail host, for the verifier's probe.

It answers RCPT TO the way Postfix does (the 550 reply text is Postfix's for an unknown virtual
mailbox): known mailboxes are accepted, others refused, every address of a catch-all domain is
accepted, a greylisting domain gets a 450. It offers STARTTLS with a certificate from a test CA and
records what each session did, so a test can see that a probe never sent DATA.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.dovecot import _write_pki as write_pki

POSTFIX_UNKNOWN_USER = (
    "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
)
GREYLISTED = (
    "450 4.2.0 <{address}>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/"
)


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TargetPolicy:
    mailboxes: set[str] = field(default_factory=set)
    catch_all_domains: set[str] = field(default_factory=set)
    greylisting_domains: set[str] = field(default_factory=set)
    sessions: list[dict[str, Any]] = field(default_factory=list)


class _Handler:
    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        self.policy.sessions.append(
            {"mail_from": address, "tls": session.ssl is not None, "rcpt": [], "data": False}
        )
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if self.policy.sessions:
            self.policy.sessions[-1]["rcpt"].append(address)
        if address.lower() in self.policy.mailboxes or domain in self.policy.catch_all_domains:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Ok"
        if domain in self.policy.greylisting_domains:
            return GREYLISTED.format(address=address)
        return POSTFIX_UNKNOWN_USER.format(address=address)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.policy.sessions:
            self.policy.sessions[-1]["data"] = True
        return "250 2.0.0 Ok: queued"


@dataclass
class SmtpTarget:
    port: int
    policy: TargetPolicy
    ca_file: Path


@contextmanager
def smtp_target(workdir: Path, policy: TargetPolicy) -> Iterator[SmtpTarget]:
    from aiosmtpd.controller import Controller

    ca_file, cert_file, key_file = write_pki(workdir / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    port = free_tcp_port()
    controller = Controller(
        _Handler(policy),
        hostname="127.0.0.1",
        port=port,
        server_hostname="mx.example.com",
        tls_context=context,
        require_starttls=False,
        enable_SMTPUTF8=True,
    )
    controller.start()
    try:
        yield SmtpTarget(port=port, policy=policy, ca_file=Path(ca_file))
    finally:
        controller.stop()


# --- an SMTP relay: STARTTLS with a test CA, AUTH required ------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes  # the DATA as the relay received it (dot-unstuffed), byte for byte


@dataclass
class RelayServer:
    port: int
    ca_file: Path
    username: str
    password: str
    received: list[Received] = field(default_factory=list)
    refused_domain: str = "refused.example.net"  # recipients there get Postfix's 550


class _RelayHandler:
    def __init__(self, relay: RelayServer) -> None:
        self.relay = relay

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower().endswith("@" + self.relay.refused_domain):
            return POSTFIX_UNKNOWN_USER.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.relay.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as 4Bq2kX1Zz9z9"


@contextmanager
def smtp_relay(workdir: Path, *, username: str, password: str) -> Iterator[RelayServer]:
    """aiosmtpd on 127.0.0.1 (certificate for localhost), STARTTLS offered, AUTH only after TLS and
    required before MAIL (aiosmtpd answers a wrong password ``535 5.7.8 Authentication credentials
    invalid``)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ca_file, cert_file, key_file = write_pki(workdir / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    relay = RelayServer(port=free_tcp_port(), ca_file=Path(ca_file), username=username, password=password)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            username.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    controller = Controller(
        _RelayHandler(relay),
        hostname="127.0.0.1",
        port=relay.port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
        decode_data=False,
    )
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()
