"""What usage metering costs in AWS requests: per API request and per received message.

AWS is moto in this process. Counted: DynamoDB API calls by operation (a botocore ``before-call``
hook on the functions' client), and for each TransactWriteItems its operations and whether one of
them is the month's usage counter (``USAGE#``).

* **API requests**: ``--requests`` GET /api/v1/domains through the domains function's handler,
  once with ``MAILROOM_USAGE_FLUSH_SECONDS=0`` (a write per request: the exact, naive way) and once
  at the template's 60 s. The ratio is DynamoDB calls per request against the 60 s run, whose only
  usage write is none (or one) for the whole run.
* **A received message**: ``--messages`` messages through the inbound function (SES's receipt
  event): DynamoDB calls per message, and the storing transaction's size with its usage operation.

Nothing is asserted (tests/integration/test_billing.py asserts the same shape).

    python -m bench.usage_metering [--requests N] [--messages M]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.listing import BenchError, CallCounter, emulated_aws

ORG_DOMAIN = "bench.example.com"


class TransactionSizes:
    """TransactWriteItems calls seen while counting: (operations, usage operations) each."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.counting = False

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.counting:
            items = params.get("TransactItems", [])
            usage = sum(1 for op in items if "USAGE#" in str(next(iter(op.values())).get("Key", {})))
            self.sizes.append((len(items), usage))


def api_requests(token: str, requests: int, flush_seconds: str, counter: CallCounter) -> Counter[str]:
    from mailroom.services import request_meter
    from mailroom.settings import get_settings
    from mailroom.store.table import Table
    from tests.support.mailboxes import get, ok

    os.environ["MAILROOM_USAGE_FLUSH_SECONDS"] = flush_seconds
    get_settings.cache_clear()
    ok(get("domains", token, "/api/v1/domains"))  # warm: the token's lookup is cached
    request_meter.flush(Table())
    with counter.window() as calls:
        for _ in range(requests):
            ok(get("domains", token, "/api/v1/domains"))
    return Counter(dict(calls))


def received(messages: int, counter: CallCounter, sizes: TransactionSizes) -> Counter[str]:
    from tests.support.inbound import message, receive

    sizes.counting = True
    with counter.window() as calls:
        for i in range(messages):
            raw = message(f"Bench {i}", to=f"inbox@{ORG_DOMAIN}", message_id=f"<bench-{i}@example.net>")
            receive(os.environ["MAILROOM_MAIL_BUCKET"], raw, [f"inbox@{ORG_DOMAIN}"])
    sizes.counting = False
    return Counter(dict(calls))


def run(requests: int, messages: int) -> None:
    from mailroom.services.organizations import create_organization
    from mailroom.store import aws
    from mailroom.store.table import Table
    from tests.support.mailboxes import add_domain, new_mailbox

    org = create_organization(Table(), name="Bench")
    add_domain(org, ORG_DOMAIN)
    new_mailbox(org, "inbox", ORG_DOMAIN)
    counter, sizes = CallCounter(), TransactionSizes()
    events = aws.dynamodb().meta.events
    events.register("before-call.dynamodb", counter)
    events.register("before-parameter-build.dynamodb.TransactWriteItems", sizes)

    naive = api_requests(org.admin_token, requests, "0", counter)
    batched = api_requests(org.admin_token, requests, "60", counter)
    base = sum(batched.values()) / requests
    print(f"API requests: {requests} GET /api/v1/domains, DynamoDB calls per request")
    print(f"{'usage flush':<22} {'calls/request':>14} {'UpdateItem/request':>19} {'ratio':>6}")
    for label, calls in (("every request (0 s)", naive), ("every 60 s", batched)):
        per = sum(calls.values()) / requests
        print(f"{label:<22} {per:>14.2f} {calls['UpdateItem'] / requests:>19.2f} {per / base:>6.2f}")

    inbound = received(messages, counter, sizes)
    storing = [size for size in sizes.sizes if size[1]]
    print(f"\nReceived messages: {messages} through the inbound function, DynamoDB calls per message")
    print(", ".join(f"{op} {n / messages:.2f}" for op, n in sorted(inbound.items())))
    if not storing:
        raise BenchError("no storing transaction carried a usage operation")
    operations = sum(s[0] for s in storing) / len(storing)
    print(
        f"storing transactions: {len(storing)}, {operations:.1f} operations each, 1 of them the usage "
        f"counter: +0 requests, +{1 / (operations - 1):.0%} transactional write units"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.usage_metering", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        with emulated_aws():
            run(args.requests, args.messages)
    except BenchError as exc:
        print(f"usage_metering: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
