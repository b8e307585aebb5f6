"""DNS set-up: a Route 53 preview reads the domain's names only, so a zone of 5,000 record sets costs
the same Route 53 calls as a zone of 10.

For each size, a hosted zone ``example.com`` is made in moto and filled with TXT record sets whose
names sort before the domain's, after them, and among them (``n.sub.bench.example.com`` lies between
``bench.example.com`` and its ``_dmarc``, ``_domainkey`` and ``bounce`` names in Route 53's order);
the domain ``bench.example.com`` is connected to it and previewed through the Route 53 function's
real handler, as API Gateway invokes it, like any client would (``POST /api/v1/route53/preview``).

Counted: Route 53 API calls made while the function serves the preview (a botocore ``before-call``
hook on the client the function uses), by operation. Timings are printed too (median of repeated
previews), but Route 53 is moto in this process, so the call counts are the measurement; nothing is
asserted.

    python -m bench.dns_setup [--small N] [--large N] [--repeat R]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.listing import BenchError, CallCounter, emulated_aws

ZONE = "example.com"
DOMAIN = f"bench.{ZONE}"
CHANGES_PER_BATCH = 1000  # Route 53's limit on one change batch
_keys = itertools.count()


def filled_zone(record_sets: int) -> str:
    """A new hosted zone holding ``record_sets`` TXT sets around the domain's names; its id."""
    from mailroom.store import aws

    route53 = aws.raw_client("route53")
    zone_id = str(route53.create_hosted_zone(Name=ZONE, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"])
    where = ("a{}." + ZONE, "z{}." + ZONE, "{}.sub." + DOMAIN)  # before, after, among the domain's names
    names = [where[i % 3].format(i) for i in range(record_sets)]
    for start in range(0, len(names), CHANGES_PER_BATCH):
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": "TXT",
                    "TTL": 300,
                    "ResourceRecords": [{"Value": f'"filler {name}"'}],
                },
            }
            for name in names[start : start + CHANGES_PER_BATCH]
        ]
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id.rsplit("/", 1)[-1]


def post(token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from tests.support.lambda_api import call

    response = call(
        "route53", "POST", path, token=token, json_body=body, headers={"Idempotency-Key": f"b-{next(_keys)}"}
    )
    if response.status not in (200, 201):
        raise BenchError(f"POST {path} answered {response.status}: {response.body[:500]!r}")
    data: dict[str, Any] = response.json()["data"]
    return data


def measure(token: str, domain_id: str, zone_id: str, repeat: int) -> tuple[Counter[str], float, int]:
    """Route 53 calls of one preview, its median time in ms, and the records it planned."""
    from mailroom.store import aws

    post(token, "/api/v1/route53/connect", {"domain_id": domain_id, "zone_id": zone_id})
    counter = CallCounter()
    aws.raw_client("route53").meta.events.register("before-call.route53", counter)
    try:
        with counter.window() as calls:
            planned = post(token, "/api/v1/route53/preview", {"domain_id": domain_id})
        counted = Counter(calls)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            post(token, "/api/v1/route53/preview", {"domain_id": domain_id})
            times.append(time.perf_counter() - started)
    finally:
        aws.raw_client("route53").meta.events.unregister("before-call.route53", counter)
    if planned["summary"]["create"] != len(planned["records"]):
        raise BenchError(f"the filler was read as the domain's records: {planned['summary']}")
    return counted, statistics.median(times) * 1000, len(planned["records"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dns_setup", description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    saved = os.environ.get("MAILROOM_ROUTE53_OWN_ACCOUNT")
    os.environ["MAILROOM_ROUTE53_OWN_ACCOUNT"] = "1"  # the stack's own account's zones (moto's)
    try:
        with emulated_aws():
            run(args.small, args.large, args.repeat)
    except BenchError as exc:
        print(f"dns_setup: {exc}", file=sys.stderr)
        return 1
    finally:
        if saved is None:
            os.environ.pop("MAILROOM_ROUTE53_OWN_ACCOUNT", None)
        else:
            os.environ["MAILROOM_ROUTE53_OWN_ACCOUNT"] = saved
    return 0


def run(small: int, large: int, repeat: int) -> None:
    from mailroom.services.organizations import create_organization
    from mailroom.store.table import Table
    from tests.support.mailboxes import add_domain

    org = create_organization(Table(), name="Bench")
    domain = add_domain(org, DOMAIN)
    rows = []
    for size in (small, large):
        started = time.perf_counter()
        zone_id = filled_zone(size)
        seeded = time.perf_counter() - started
        calls, ms, records = measure(org.admin_token, domain["id"], zone_id, repeat)
        rows.append((size, calls, ms, records, seeded))
    print(
        f"dns_setup: a Route 53 preview of {DOMAIN} ({rows[0][3]} records at 4 names) "
        f"in a zone of {small:,} and of {large:,} TXT record sets; Route 53 calls per preview (botocore "
        f"hook), preview time median of {repeat} (moto in-process)"
    )
    (n_small, c_small, ms_small, _, _), (n_large, c_large, ms_large, _, seeded) = rows
    total_small, total_large = sum(c_small.values()), sum(c_large.values())
    columns = [f"{n_small:,} sets", f"{n_large:,} sets", "ratio", "ms small", "ms large", "ratio"]
    print(f"{'':<22}" + "".join(f"{c:>12}" for c in columns))
    cells = [
        str(total_small),
        str(total_large),
        f"{total_large / total_small:.2f}",
        f"{ms_small:.1f}",
        f"{ms_large:.1f}",
        f"{ms_large / ms_small:.2f}",
    ]
    print(f"{'Route 53 calls':<22}" + "".join(f"{c:>12}" for c in cells))
    print(f"  calls, {n_small:,} sets: {dict(sorted(c_small.items()))}")
    print(f"  calls, {n_large:,} sets: {dict(sorted(c_large.items()))} (zone seeded in {seeded:.1f} s)")
    print()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
