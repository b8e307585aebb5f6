"""Outbound webhook requests: one POST, 15 seconds at most, no redirects, public addresses only.

The SSRF guard sits where the connection is made: a network backend under httpx resolves the host,
refuses the connection if any resolved address is not public (``mailroom.domain.ssrf``), and
connects to the vetted address itself, so no second lookup can return another one (DNS rebinding).
TLS still verifies the certificate for the URL's host name (httpcore sends it as SNI and checks it),
and the ``Host`` header is the URL's, because httpx only sees the original URL. No proxy from the
environment is used: a proxy would make the connection on our behalf, unguarded.

``MAILROOM_WEBHOOK_ALLOW_PRIVATE=1`` (the local stack; never a deployed one) turns the address check
off and allows http URLs, so webhooks can reach receivers on loopback.
"""

from __future__ import annotations

import asyncio
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from mailroom.domain import ssrf
from mailroom.domain.webhooks import parse_retry_after

TIMEOUT_SECONDS = 15.0
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "Mailroom-Webhooks/1.0"

Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressNotAllowed(httpcore.ConnectError):
    """The host resolves to an address webhooks may not reach (raised before connecting)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to vetted addresses it resolved itself."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolver(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if not self._allow_private:
            for address in addresses:
                reason = ssrf.block_reason(address)
                if reason is not None:
                    # Refuse the host outright rather than skip the bad address: a name mixing public
                    # and internal addresses is an attempt, not an accident.
                    raise AddressNotAllowed(f"{host} resolves to {address}, which is not allowed ({reason})")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over ``GuardedBackend``.

    httpx builds its connection pool in ``__init__`` with the default network backend and has no
    parameter for another; the pool is rebuilt here with the same settings and ours (a unit test
    proves the guard is the one in use).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        verify: Any = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=10
        )
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allow_private=allow_private, resolver=resolver),
        )


def new_client(
    *, allow_private: bool, resolver: Resolver = system_resolver, verify: Any = True
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private, resolver=resolver, verify=verify),
        follow_redirects=False,  # a 3xx is a failure: the endpoint should be updated instead
        trust_env=False,
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        headers={"user-agent": USER_AGENT},
    )


# One client per event loop (a client's connections belong to the loop that opened them), kept
# while the loop lives so warm invocations reuse connections.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(*, allow_private: bool) -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(allow_private)
    if client is None or client.is_closed:
        client = per_loop[allow_private] = new_client(allow_private=allow_private)
    return client


def _describe(exc: BaseException, time_limit: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {time_limit:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None
    duration_ms: int
    error: str | None
    retry_after: float | None
    response_excerpt: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410: the endpoint says it is gone for good (its webhook is disabled)."""
        return self.status_code == 410


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    time_limit: float = TIMEOUT_SECONDS,
) -> PostResult:
    """POST once. Never raises for the endpoint's behaviour: every outcome is a ``PostResult``."""
    started = time.perf_counter()
    status: int | None = None
    retry_after: float | None = None
    excerpt = b""
    error: str | None = None
    try:
        # httpx's timeouts are per phase; this bounds the whole exchange (a trickling endpoint too).
        async with asyncio.timeout(time_limit):
            async with client.stream("POST", url, content=body, headers=dict(headers)) as response:
                status = response.status_code
                if not 200 <= status < 300:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                # Read (a bounded part of) the body: a response read to its end leaves the connection
                # reusable; what a refusing endpoint said is kept for the deliveries listing.
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                        break
    except (TimeoutError, httpx.HTTPError) as exc:
        # Once the status line is in, the endpoint has answered: a body that trickles or breaks off
        # afterwards does not change the outcome.
        if status is None:
            error = _describe(exc, time_limit)
    if status is not None and error is None and not 200 <= status < 300:
        error = f"HTTP {status}"
    refused = status is None or not 200 <= status < 300
    return PostResult(
        status_code=status,
        duration_ms=round((time.perf_counter() - started) * 1000),
        error=error,
        retry_after=retry_after,
        response_excerpt=(excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace") or None)
        if refused
        else None,
    )
