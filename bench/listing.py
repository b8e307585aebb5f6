"""Message listing: page 1 and page 50 of a 10,000-message mailbox cost the same DynamoDB calls.

One mailbox is seeded with ``--messages`` messages (default 10,000) straight into the table with
BatchWriteItem, each item built by ``store.mail.message_item`` (the key builder delivery uses), and
the mailbox's counters set to match; no S3 is involved (listing never reads it). The listing is
then requested through the messages function's real handler with a real message token, as API
Gateway invokes it: page 1, then ``links.next`` followed to page 50.

Counted: DynamoDB API calls made while the function serves one request (a botocore ``before-call``
hook on the client the function uses), by operation. The function's token cache is on, as deployed:
the token is looked up once, outside the count. Timings are printed too (median of repeated requests
of the same page), but AWS is moto in this process, whose Query cost grows with the partition, so
the call counts are the measurement; nothing is asserted.

    python -m bench.listing [--messages N] [--per-page P] [--page K] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
TABLE_NAME = "mailroom-bench-listing"
BUCKET = "mailroom-bench-listing-mail"
THREAD_SIZE = 5  # messages per thread in the seed
START = datetime(2026, 1, 1, tzinfo=UTC)


class BenchError(RuntimeError):
    pass


@contextmanager
def emulated_aws() -> Iterator[None]:
    """moto in this process, with the template's table (the same key schema as deployed)."""
    overrides = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MAILROOM_TABLE_NAME": TABLE_NAME,
        "MAILROOM_MAIL_BUCKET": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "MAILROOM_RATE_LIMIT_PER_MINUTE": "100000",
        "MAILROOM_AUTH_CACHE_TTL": "3600",  # as deployed: a warm function reuses the token's lookup
    }
    saved = {k: os.environ.get(k) for k in [*overrides, "AWS_ENDPOINT_URL"]}
    os.environ.update(overrides)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    for path in (str(ROOT), str(ROOT / "layers" / "mailroom")):
        if path not in sys.path:
            sys.path.insert(0, path)
    from moto import mock_aws

    from local.moto_patches import install
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from tests.support.aws import create_table_from_template

    get_settings.cache_clear()
    aws.reset_clients()
    install()
    try:
        with mock_aws():
            create_table_from_template(aws.dynamodb(), TABLE_NAME)
            aws.client("s3").create_bucket(Bucket=BUCKET)
            yield
    finally:
        aws.reset_clients()
        get_settings.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mailbox_with_token() -> tuple[str, dict[str, Any], str]:
    """(org id, mailbox item, message token), made through the API like any client would."""
    from mailroom.services.organizations import create_organization
    from mailroom.store import mailboxes
    from mailroom.store.table import Table
    from tests.support.mailboxes import add_domain, new_mailbox, ok, post

    org = create_organization(Table(), name="Bench")
    add_domain(org, "bench.example.com")
    created = new_mailbox(org, "inbox", "bench.example.com")
    token = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{created['id']}/message-tokens",
            {"name": "bench", "scopes": ["messages:read"]},
        ),
        201,
    )["token"]
    org_id = org.organization["id"]
    item = mailboxes.get(Table(), org_id, created["id"])
    if item is None:
        raise BenchError("the mailbox was not created")
    return org_id, item, token


def seed(org_id: str, mailbox: dict[str, Any], count: int) -> float:
    """``count`` INBOX messages (every third one read) and their threads; returns seconds taken."""
    from mailroom import clock, ids
    from mailroom.store import keys
    from mailroom.store import mail as store
    from mailroom.store.table import Table, serialize
    from mailroom.store.txn import Update

    table = Table()
    started = time.perf_counter()
    items: list[dict[str, Any]] = []
    size, unread = 2_000, 0
    thread_id = ""
    for i in range(count):
        at = START + timedelta(seconds=i)
        ulid = ids.ulid(int(at.timestamp() * 1000))
        if i % THREAD_SIZE == 0:
            thread_id = f"thr_{ulid}"
            items.append(
                {
                    "PK": keys.mailbox_pk(org_id, mailbox["id"]),
                    "SK": keys.thread_sk(ulid),
                    "GSI2PK": keys.threads_index_pk(org_id, mailbox["id"]),
                    "GSI2SK": f"{clock.isoformat(at)}#{ulid}",
                    "id": thread_id,
                    "org_id": org_id,
                    "mailbox_id": mailbox["id"],
                    "type": "thread",
                    "subject": f"Topic {i}",
                    "message_count": THREAD_SIZE,
                    "last_activity_at": clock.isoformat(at),
                }
            )
        seen = i % 3 == 0
        unread += 0 if seen else 1
        message = {
            "id": f"msg_{ulid}",
            "org_id": org_id,
            "mailbox_id": mailbox["id"],
            "thread_id": thread_id,
            "folder_key": "inbox",
            "direction": "inbound",
            "from": f"Sender {i % 97} <sender{i % 97}@example.net>",
            "from_address": f"sender{i % 97}@example.net",
            "to": [mailbox["address"]],
            "cc": [],
            "reply_to": [],
            "subject": f"Topic {i - i % THREAD_SIZE}" + (" (reply)" if i % THREAD_SIZE else ""),
            "date": clock.isoformat(at),
            "received_at": clock.isoformat(at),
            "rfc_message_id": f"<{i}@example.net>",
            "in_reply_to": None,
            "references": [],
            "preview": f"Message number {i} of the benchmark mailbox.",
            "size": size,
            "flags": {"seen": seen, "flagged": False, "answered": False, "draft": False},
            "labels": [],
            "has_attachments": False,
            "attachments": [],
            "verdicts": {},
            "raw_key": f"{keys.mailbox_s3_prefix(org_id, mailbox['id'])}messages/{ulid}/raw.eml",
            "truncated": [],
            "created_at": clock.isoformat(at),
            "body": {"text": f"Message number {i}.", "html": None, "headers": []},
        }
        items.append(store.message_item(message))
    client = table.client
    for start in range(0, len(items), 25):
        requests = {table.name: [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]}
        while requests:
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
    counters = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox["id"]))
    counters.add(message_count=count, used_bytes=count * size, fc_inbox_total=count, fc_inbox_unread=unread)
    counters.apply(table)
    return time.perf_counter() - started


class CallCounter:
    """DynamoDB API calls, by operation, while ``counting``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.counting = False

    def __call__(self, model: Any, **_: Any) -> None:
        if self.counting:
            self.calls[model.name] += 1

    @contextmanager
    def window(self) -> Iterator[Counter[str]]:
        self.calls = Counter()
        self.counting = True
        try:
            yield self.calls
        finally:
            self.counting = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.messages < args.per_page * args.page:
        print(
            f"listing: {args.messages} messages have no page {args.page} of {args.per_page}", file=sys.stderr
        )
        return 2
    try:
        with emulated_aws():
            run(args.messages, args.per_page, args.page, args.repeat)
    except BenchError as exc:
        print(f"listing: {exc}", file=sys.stderr)
        return 1
    return 0


def run(messages: int, per_page: int, page_number: int, repeat: int) -> None:
    from mailroom.auth import authenticate
    from mailroom.store import aws
    from mailroom.store.table import Table
    from tests.support.lambda_api import LambdaContext, function_module, http_event

    org_id, mailbox, token = mailbox_with_token()
    seconds = seed(org_id, mailbox, messages)
    counter = CallCounter()
    aws.dynamodb().meta.events.register("before-call.dynamodb", counter)
    handler = function_module("messages").handler
    authenticate(f"Bearer {token}", Table())  # the lookup a warm function made earlier

    def request(query: dict[str, str]) -> tuple[dict[str, Any], Counter[str], float]:
        event = http_event("GET", "/api/v1/messages", token=token, query=query)
        with counter.window() as calls:
            started = time.perf_counter()
            response = handler(event, LambdaContext(function_name="messages"))
            elapsed = time.perf_counter() - started
        if response["statusCode"] != 200:
            raise BenchError(
                f"GET /api/v1/messages?{query} answered {response['statusCode']}: {response.get('body')}"
            )
        return json.loads(response["body"]), Counter(calls), elapsed

    listings = {
        "all messages (table)": {},
        "INBOX (folder index)": {"folder": "INBOX"},
        "INBOX unread (filtered)": {"folder": "INBOX", "unread": "true"},
    }
    print(
        f"listing: {messages:,} messages in one mailbox, per_page={per_page}, seeded in {seconds:.1f} s; "
        "DynamoDB calls per request (botocore hook), request time median of "
        f"{repeat} (moto in-process)"
    )
    columns = ["page 1", f"page {page_number}", "ratio", "ms p1", f"ms p{page_number}", "ratio"]
    print(f"{'listing':<26}" + "".join(f"{c:>9}" for c in columns) + "   calls")
    for label, base in listings.items():
        query = {**base, "per_page": str(per_page)}
        first, first_calls, _ = request(query)
        page, calls, cursor_query = first, first_calls, query
        for _ in range(page_number - 1):
            link = page["links"]["next"]
            if not link:
                raise BenchError(f"{label}: no page after {page['meta']['current_page']}")
            cursor_query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
            page, calls, _ = request(cursor_query)
        if page["meta"]["current_page"] != page_number or len(page["data"]) != per_page:
            raise BenchError(
                f"{label}: page {page_number} is {page['meta']['current_page']} with {len(page['data'])}"
            )
        times_first = [request(query)[2] for _ in range(repeat)]
        times_last = [request(cursor_query)[2] for _ in range(repeat)]
        n1, n50 = sum(first_calls.values()), sum(calls.values())
        ms1, ms50 = statistics.median(times_first) * 1000, statistics.median(times_last) * 1000
        detail = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
        same = "" if first_calls == calls else f"  (page 1: {dict(first_calls)})"
        cells = [str(n1), str(n50), f"{n50 / n1:.2f}", f"{ms1:.1f}", f"{ms50:.1f}", f"{ms50 / ms1:.2f}"]
        print(f"{label:<26}" + "".join(f"{c:>9}" for c in cells) + f"   {detail}{same}")
    print()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
