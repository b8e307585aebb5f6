"""Where a domain's mail goes (MX, or the A/AAAA fallback of RFC 5321 section 5.1), asked through
the resolver the domains code uses (``MAILROOM_DNS_RESOLVER``), cached per name with the answer's
TTL.

The cache is what makes bulk verification cheap: 10,000 addresses over 50 domains ask DNS about 50
domains, once each, even when many addresses of one domain are verified at the same moment (the
first lookup of a name is shared by everyone waiting for it). It lives for the process (a warm
Lambda keeps it between invocations), bounded in size.

I/O but not AWS, beside ``dns_lookup``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mailroom.dns_lookup import LOOKUP_TIMEOUT_SECONDS, nameserver
from mailroom.domain.verification import MailHost

MIN_TTL = 30
MAX_TTL = 3600
NEGATIVE_TTL = 300  # NXDOMAIN and "no such record" (RFC 2308 would use the SOA minimum; capped)
ERROR_TTL = 30  # a timeout or SERVFAIL: retried soon, but not by every address of a bulk job
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Answer:
    records: list[Any]
    nxdomain: bool = False
    error: str | None = None
    ttl: int = NEGATIVE_TTL


class MailDns:
    """MX/A/AAAA answers with a per-name TTL cache; ``queries`` counts what was asked of DNS."""

    def __init__(self, server: str | None, *, clock: Any = time.monotonic) -> None:
        self.server = server
        self.queries = 0
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, _Answer]] = OrderedDict()
        self._inflight: dict[tuple[int, str, str], asyncio.Future[_Answer]] = {}
        self._resolver: Any = None

    def _make_resolver(self) -> Any:
        import dns.asyncresolver

        if self.server:
            host, port = nameserver(self.server)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = LOOKUP_TIMEOUT_SECONDS
        resolver.timeout = LOOKUP_TIMEOUT_SECONDS
        resolver.cache = None  # this class caches, with the TTLs it chooses
        return resolver

    async def _ask(self, rtype: str, name: str) -> _Answer:
        import dns.exception
        import dns.resolver

        if self._resolver is None:
            self._resolver = self._make_resolver()
        self.queries += 1
        try:
            answer = await self._resolver.resolve(name, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return _Answer([], nxdomain=True)
        except dns.resolver.NoNameservers:
            return _Answer([], error="no nameserver answered (SERVFAIL or refused)", ttl=ERROR_TTL)
        except dns.exception.Timeout:
            return _Answer([], error=f"timed out after {LOOKUP_TIMEOUT_SECONDS:g}s", ttl=ERROR_TTL)
        except dns.exception.DNSException as exc:
            return _Answer([], error=f"{type(exc).__name__}: {exc}", ttl=ERROR_TTL)
        if answer.rrset is None:
            return _Answer([])
        return _Answer(list(answer.rrset), ttl=max(MIN_TTL, min(MAX_TTL, answer.rrset.ttl)))

    async def answer(self, rtype: str, name: str) -> _Answer:
        """One cached answer; concurrent askers of the same uncached name share one query."""
        key = (rtype, name.lower().rstrip("."))
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        flight = (id(asyncio.get_running_loop()), *key)
        pending = self._inflight.get(flight)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            result = await self._ask(*key)
            self._cache[key] = (self._clock() + result.ttl, result)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a failure nobody else awaited is not "never retrieved"
            raise
        finally:
            del self._inflight[flight]

    async def mail_host(self, ascii_domain: str) -> MailHost:
        mx = await self.answer("MX", ascii_domain)
        if mx.nxdomain:
            return MailHost(exists=False, mx=False, hosts=())
        if mx.error:
            return MailHost(exists=None, mx=None, hosts=None, error=mx.error)
        if mx.records:
            ranked = sorted(mx.records, key=lambda r: (r.preference, r.exchange.to_text()))
            exchanges = [r.exchange.to_text(omit_final_dot=True) for r in ranked]
            if exchanges in ([""], ["."]) or (len(ranked) == 1 and ranked[0].exchange.to_text() == "."):
                return MailHost(exists=True, mx=True, null_mx=True, hosts=())
            return MailHost(exists=True, mx=True, hosts=tuple(dict.fromkeys(e for e in exchanges if e)))
        # No MX: the domain itself is the mail host if it has an address (RFC 5321 section 5.1).
        addresses = await self.addresses(ascii_domain)
        if addresses is None:
            return MailHost(exists=True, mx=False, hosts=None, error="A/AAAA lookup failed")
        return MailHost(exists=True, mx=False, hosts=(ascii_domain,) if addresses else ())

    async def addresses(self, host: str) -> list[str] | None:
        """A then AAAA addresses of a host (None when DNS could not answer)."""
        found: list[str] = []
        failed = False
        for rtype in ("A", "AAAA"):
            answer = await self.answer(rtype, host)
            failed = failed or answer.error is not None
            found.extend(r.to_text() for r in answer.records)
            if found:
                break
        return None if failed and not found else found


_shared: dict[str | None, MailDns] = {}


def shared(server: str | None) -> MailDns:
    """The process-wide cache for this resolver setting (warm invocations reuse its answers)."""
    if server not in _shared:
        _shared[server] = MailDns(server)
    return _shared[server]
