"""Bulk verification rate: the bulk worker's verification against ``email-validator`` in a loop.

The list: ``--addresses`` distinct addresses over ``--domains`` domains (each with an MX record),
served by a real authoritative DNS server (nsd) on loopback. The bulk side is what the worker runs
on a job's chunks (``services.verify_bulk.verify_chunk``: the addresses grouped into chunks of 500
by domain, each chunk verified with the worker's concurrency through one DNS cache), starting each
round with an empty cache, so the cache has to pay within the run. The baseline is
``email_validator.validate_email(address, check_deliverability=True)`` called in a plain loop over
the same list, with a dnspython resolver pointed at the same server (the library's default: no
cache). Neither side probes SMTP.

Rounds alternate baseline and bulk after an unmeasured warm-up of each. A round counts only if
every address came out deliverable (bulk) or passed (baseline). Printed: addresses per second (the
median of the rounds), DNS queries per address on each side, and the ratio bulk/baseline (target
>= 2).

    python -m bench.verify_bulk [--addresses N] [--domains D] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TARGET = 2.0
ZONE = "example.com"


class BenchError(RuntimeError):
    pass


def addresses(count: int, domains: int) -> list[str]:
    return [f"user{n}@d{n % domains:03d}.{ZONE}" for n in range(count)]


def bulk_round(server: str, emails: list[str]) -> tuple[float, int]:
    """(seconds, DNS queries) for the worker's path over every chunk, with a cold DNS cache."""
    from mailroom.domain import verify_bulk as rules
    from mailroom.mail_dns import MailDns
    from mailroom.services.verification import Verifier
    from mailroom.services.verify_bulk import verify_chunk
    from mailroom.settings import get_settings

    dns = MailDns(server)
    checker = Verifier(dns, None, lambda _domain: False)
    concurrency = get_settings().verify_bulk_concurrency

    async def everything() -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for chunk in rules.chunks(rules.unique(emails)):
            results.update(await verify_chunk(checker, chunk, smtp=False, concurrency=concurrency))
        return results

    started = time.perf_counter()
    results = asyncio.run(everything())
    elapsed = time.perf_counter() - started
    bad = [k for k, r in results.items() if r["status"] != "deliverable"]
    if len(results) != len(emails) or bad:
        raise BenchError(f"bulk: {len(results)} results, not deliverable: {bad[:3]}")
    return elapsed, dns.queries


def baseline_round(server: str, emails: list[str]) -> tuple[float, int]:
    """(seconds, DNS queries) for email-validator with deliverability checks, one after another."""
    import dns.resolver
    import email_validator

    host, _, port = server.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = resolver.timeout = 5.0
    asked = 0
    resolve = resolver.resolve

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        asked += 1
        return resolve(*args, **kwargs)

    resolver.resolve = counted  # type: ignore[method-assign]
    started = time.perf_counter()
    for email in emails:
        try:
            email_validator.validate_email(email, check_deliverability=True, dns_resolver=resolver)
        except email_validator.EmailNotValidError as exc:
            raise BenchError(f"baseline: {email}: {exc}") from exc
    return time.perf_counter() - started, asked


def run(count: int, domains: int, rounds: int) -> None:
    from tests.support.dns_server import ZoneRecord, authoritative_dns

    emails = addresses(count, domains)
    zone = [ZoneRecord(f"mx.{ZONE}", "A", "127.0.0.1")]
    zone += [ZoneRecord(f"d{n:03d}.{ZONE}", "MX", f"mx.{ZONE}", 10) for n in range(domains)]
    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as workdir,
        authoritative_dns(Path(workdir), ZONE) as server,
    ):
        server.serve(zone)
        baseline_round(server.address, emails[: min(200, count)])  # warm-up, not measured
        bulk_round(server.address, emails[: min(200, count)])
        base_rates, bulk_rates = [], []
        base_queries = bulk_queries = 0
        for _ in range(rounds):
            seconds, base_queries = baseline_round(server.address, emails)
            base_rates.append(count / seconds)
            seconds, bulk_queries = bulk_round(server.address, emails)
            bulk_rates.append(count / seconds)
    base, bulk = statistics.median(base_rates), statistics.median(bulk_rates)
    ratio = bulk / base
    print(f"verify_bulk: {count} addresses over {domains} domains, DNS on loopback (nsd), {rounds} rounds")
    print(f"{'':<36}{'addr/s':>10}{'DNS q/addr':>12}")
    print(f"{'email-validator loop (baseline)':<36}{base:>10.0f}{base_queries / count:>12.3f}")
    print(f"{'bulk worker (chunks, DNS cache)':<36}{bulk:>10.0f}{bulk_queries / count:>12.3f}")
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"ratio bulk/baseline: {ratio:.2f} (target >= {TARGET:g}) {verdict}")
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_bulk", description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=3_000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.addresses < 1 or not 1 <= args.domains <= 999 or args.rounds < 1:
        print("verify_bulk: --addresses >= 1, --domains 1..999, --rounds >= 1", file=sys.stderr)
        return 2
    try:
        run(args.addresses, args.domains, args.rounds)
    except (BenchError, RuntimeError) as exc:
        print(f"verify_bulk: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
