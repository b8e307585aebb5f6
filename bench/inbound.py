"""Inbound mail throughput and AWS calls per message, against a baseline measured in the same run.

The corpus is CPython's own email test messages plus the generated ones of
``tests/support/mail_corpus.py`` that are real messages (broken encodings, 50 parts, 20 levels of
nesting...). The three built to break limits (101 levels, 10^5 parts, a 1 MB header) are left out:
Mailroom refuses them before parsing, while the baseline would spend seconds parsing them, which
would flatter the ratio.

* **Handler**: each message stored at ``inbound/<id>`` with the headers SES prepends, then the
  inbound function's ``handler`` invoked with its SES receipt event, one message after the other,
  into one mailbox. AWS is moto, in this process (``mock_aws``), so a call costs CPU here instead
  of a network round trip; the time spent inside AWS calls is measured too (botocore
  ``before-call``/``after-call`` hooks) and Mailroom's own time is printed without it.
* **Baseline**: ``email.message_from_bytes`` over the same bytes, nothing else.

Rounds alternate baseline and handler; each round runs in a fresh moto account (moto copies its
whole table on every transaction, so a growing table would slow later rounds down). Printed: the
medians of messages per second, their ratio, and the AWS API calls per message by service and
operation (counted with a botocore ``before-call`` hook on Mailroom's own clients), for messages
without attachments (target: at most 3 DynamoDB writes and 3 S3 requests), with attachments, and
for a redelivered event; then all DynamoDB requests (reads and writes) per stored message (target:
at most 4 on average), the round's first message shown apart: the first this process delivers to
the address, with no route hint yet (each round has clients of its own; see
services/inbound_routing.py). Nothing is asserted about timing.

    python -m bench.inbound [--rounds N]
"""

from __future__ import annotations

import argparse
import email
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "mailroom"
TABLE_NAME = "mailroom-bench-inbound"
BUCKET = "mailroom-bench-inbound-mail"
REGION = "us-east-1"
DEFAULT_ROUNDS = 3
BASELINE_PASSES = 20
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
TARGET_DYNAMODB_WRITES = 3
TARGET_S3_REQUESTS = 3
TARGET_DYNAMODB_REQUESTS = 4  # reads and writes, per stored message (issue 23)


@dataclass
class CallMeter:
    """Counts Mailroom's AWS calls by (service, operation) and the time spent inside them."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0
    started: float = 0.0

    def before(self, event_name: str, **kwargs: Any) -> None:
        _hook, service, operation = event_name.split(".", 2)
        self.counts[(service, operation)] += 1
        self.started = time.perf_counter()

    def after(self, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self.started

    def take(self) -> Counter[tuple[str, str]]:
        taken, self.counts = self.counts, Counter()
        return taken


@dataclass
class Round:
    baseline_s: float
    handler_s: float
    aws_s: float
    per_message: list[tuple[str, Counter[tuple[str, str]]]]  # (class, calls)
    redelivered: Counter[tuple[str, str]]


def corpus() -> list[tuple[str, bytes]]:
    from tests.support.mail_corpus import hostile_messages, stdlib_messages

    return stdlib_messages() + [(name, raw) for name, raw, reason in hostile_messages() if reason is None]


@contextmanager
def environment() -> Iterator[None]:
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MAILROOM_TABLE_NAME": TABLE_NAME,
        "MAILROOM_MAIL_BUCKET": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # one INFO line per message would be measured too
    }
    saved = {name: os.environ.get(name) for name in [*values, "AWS_ENDPOINT_URL"]}
    os.environ.update(values)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def one_round(messages: list[tuple[str, bytes]]) -> Round:
    from moto import mock_aws

    from local.moto_patches import install as install_moto_fixes
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store.table import Table
    from tests.support import inbound as sim
    from tests.support.aws import create_table_from_template
    from tests.support.lambda_api import LambdaContext, function_module
    from tests.support.mailboxes import add_domain, new_mailbox

    get_settings.cache_clear()
    aws.reset_clients()
    install_moto_fixes()
    with mock_aws():
        create_table_from_template(aws.dynamodb(), TABLE_NAME)
        aws.client("s3").create_bucket(Bucket=BUCKET)
        org = create_organization(Table(), name="Bench Co")
        add_domain(org, "example.com")
        new_mailbox(org, "inbox")
        stored = []
        for _name, raw in messages:
            ses_id, _ = sim.store_inbound(BUCKET, raw, recipients=["inbox@example.com"])
            stored.append((raw, sim.ses_event(ses_id, ["inbox@example.com"])))
        handler = function_module("inbound").handler
        context = LambdaContext(function_name="inbound")

        meter = CallMeter()
        for service in ("dynamodb", "s3", "sesv2"):
            client = aws.client(service)
            client.meta.events.register("before-call.*.*", meter.before)
            client.meta.events.register("after-call.*.*", meter.after)

        # The baseline is fast: several passes over the corpus, so one pass is not lost in noise.
        started = time.perf_counter()
        for _pass in range(BASELINE_PASSES):
            for raw, _event in stored:
                email.message_from_bytes(raw)
        baseline_s = (time.perf_counter() - started) / BASELINE_PASSES

        per_message = []
        meter.take()
        meter.seconds = 0.0
        started = time.perf_counter()
        for _raw, event in stored:
            (report,) = handler(event, context)["messages"]
            kind = "quarantined" if report["quarantined"] else "stored"
            per_message.append((kind, meter.take()))
        handler_s = time.perf_counter() - started
        aws_s = meter.seconds

        # Which stored ones have attachments: read after the clock stopped.
        from mailroom.store import mail as mail_store

        org_id = org.organization["id"]
        mailbox_id = new_mailbox_id(org_id)
        with_attachments = {
            m["ses_message_id"]
            for m in mail_store.list_messages(Table(), org_id, mailbox_id, per_page=100, cursor=None).items
            if m.get("attachments")
        }
        classified = []
        for (outcome, calls), (_raw, event) in zip(per_message, stored, strict=True):
            ses_id = event["Records"][0]["ses"]["mail"]["messageId"]
            kind = outcome
            if outcome == "stored":
                kind = "stored, attachments" if ses_id in with_attachments else "stored, no attachments"
            classified.append((kind, calls))
        meter.take()  # the reads above are the bench's, not the handler's
        handler(stored[0][1], context)  # the same event again
        redelivered = meter.take()
    aws.reset_clients()
    get_settings.cache_clear()
    return Round(baseline_s, handler_s, aws_s, classified, redelivered)


def new_mailbox_id(org_id: str) -> str:
    from mailroom.store import mailboxes
    from mailroom.store.table import Table

    page = mailboxes.list_page(Table(), org_id, per_page=10, cursor=None)
    return str(page.items[0]["id"])


def _fmt_calls(calls: Counter[tuple[str, str]], n: int) -> str:
    return ", ".join(f"{service}:{op} {count / n:.2f}" for (service, op), count in sorted(calls.items()))


def report(rounds: list[Round], n: int) -> None:
    median = statistics.median
    handler = median(n / r.handler_s for r in rounds)
    own = median(n / (r.handler_s - r.aws_s) for r in rounds)
    baseline = median(n / r.baseline_s for r in rounds)
    print(f"corpus: {n} messages, {len(rounds)} rounds (medians); moto in-process for AWS")
    print(f"baseline  email.message_from_bytes        {baseline:10.1f} msg/s")
    print(
        f"handler   inbound function, AWS emulated   {handler:10.1f} msg/s   ratio {handler / baseline:.4f}"
    )
    print(f"handler   without time inside AWS calls    {own:10.1f} msg/s  ratio {own / baseline:.4f}")
    aws_share = median(r.aws_s / r.handler_s for r in rounds)
    print(f"share of the handler's time inside (emulated) AWS calls: {100 * aws_share:.0f}%")
    print()
    print(
        "AWS API calls per message (first round; mean, and max per message of DynamoDB writes / S3 requests):"
    )
    by_class: dict[str, list[Counter[tuple[str, str]]]] = {}
    for kind, calls in rounds[0].per_message:
        by_class.setdefault(kind, []).append(calls)
    for kind in sorted(by_class):
        samples = by_class[kind]
        total: Counter[tuple[str, str]] = Counter()
        for calls in samples:
            total.update(calls)
        writes = [
            sum(c for (s, op), c in calls.items() if s == "dynamodb" and op in WRITES) for calls in samples
        ]
        s3 = [sum(c for (s, _), c in calls.items() if s == "s3") for calls in samples]
        print(f"  {kind} ({len(samples)}): DynamoDB writes max {max(writes)}, S3 requests max {max(s3)}")
        print(f"    {_fmt_calls(total, len(samples))}")
        if kind == "stored, no attachments":
            met = max(writes) <= TARGET_DYNAMODB_WRITES and max(s3) <= TARGET_S3_REQUESTS
            target = f"<= {TARGET_DYNAMODB_WRITES} DynamoDB writes, <= {TARGET_S3_REQUESTS} S3 requests"
            print(f"    target ({target}): {'met' if met else 'NOT met'}")
    print(f"  redelivered event (1): {_fmt_calls(rounds[0].redelivered, 1)}")
    # All DynamoDB requests, reads included; the first message of a round is the first this process
    # delivers to the address (no route hint yet), so it is shown on its own.
    stored = [
        (index, sum(c for (s, _), c in calls.items() if s == "dynamodb"))
        for index, (kind, calls) in enumerate(rounds[0].per_message)
        if kind.startswith("stored")
    ]
    warm = [count for index, count in stored if index > 0]
    if warm:
        mean = sum(warm) / len(warm)
        verdict = "met" if mean <= TARGET_DYNAMODB_REQUESTS else "NOT met"
        print(
            f"DynamoDB requests per stored message: mean {mean:.2f}, max {max(warm)} "
            f"(target: mean <= {TARGET_DYNAMODB_REQUESTS}: {verdict}); "
            f"first message to the address {stored[0][1] if stored[0][0] == 0 else 'n/a'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"default {DEFAULT_ROUNDS}")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    messages = corpus()
    rounds = []
    with environment():
        for _ in range(args.rounds):
            rounds.append(one_round(messages))
            sys.stderr.write(".")
            sys.stderr.flush()
    sys.stderr.write("\n")
    report(rounds, len(messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
