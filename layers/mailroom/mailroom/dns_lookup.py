"""DNS lookups for domain verification (dnspython), through ``MAILROOM_DNS_RESOLVER`` when set.

This is I/O but not AWS, so it lives beside ``store`` rather than in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

LOOKUP_TIMEOUT_SECONDS = 3.0


@dataclass
class LookupResult:
    answers: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # "TYPE name" → what went wrong (timeouts, SERVFAIL)


def nameserver(server: str) -> tuple[str, int]:
    """``MAILROOM_DNS_RESOLVER``'s ``host[:port]`` (an IPv6 address without a port) as (host, port)."""
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
    return host or server, int(port) if port else 53


def _resolver(server: str | None) -> object:
    import dns.resolver

    if not server:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver(server)[0]]
        resolver.port = nameserver(server)[1]
    resolver.lifetime = LOOKUP_TIMEOUT_SECONDS
    resolver.timeout = LOOKUP_TIMEOUT_SECONDS
    # Verification must see the authoritative truth now, not a cached answer from before the fix.
    resolver.cache = None
    return resolver


def lookup(queries: Iterable[tuple[str, str]], *, server: str | None) -> LookupResult:
    """Answers for each (type, name): MX as ``"<pref> <host>"``, TXT as the joined strings."""
    import dns.exception
    import dns.resolver

    resolver = _resolver(server)
    result = LookupResult()
    for rtype, name in dict.fromkeys(queries):
        try:
            answer = resolver.resolve(name, rtype, raise_on_no_answer=False)  # type: ignore[attr-defined]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as exc:
            if isinstance(exc, dns.resolver.NoNameservers):
                result.errors[f"{rtype} {name}"] = "no nameserver answered (SERVFAIL or refused)"
            result.answers[(rtype, name)] = []
            continue
        except dns.exception.Timeout:
            result.errors[f"{rtype} {name}"] = f"timed out after {LOOKUP_TIMEOUT_SECONDS:g}s"
            result.answers[(rtype, name)] = []
            continue
        values: list[str] = []
        for rdata in answer.rrset or []:
            if rtype == "MX":
                values.append(f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}")
            else:
                values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
        result.answers[(rtype, name)] = values
    return result
