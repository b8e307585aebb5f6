"""Webhook delivery throughput: one delivery function against a bare httpx client, same run.

The function is the real SQS handler (``mailroom.entry.queues.webhook_delivery``) invoked with
SQS events of 10 records, one batch after another, as one warm Lambda instance would be: it reads
the batch's webhook and deliveries (one BatchGetItem), signs every payload (Standard Webhooks, KMS-
decrypted secret, cached), POSTs them concurrently through the SSRF-guarded transport, and records
each attempt in DynamoDB. The baseline is a bare ``httpx.AsyncClient`` posting the same payloads
with the same headers, 10 at a time, one group after another: the same concurrency, none of the
bookkeeping. Both post to the same receiver, a minimal HTTP server in its own process on loopback;
AWS is moto's server in another process (on AWS, DynamoDB's work is not on the function's CPU).

Rounds alternate baseline and function after an unmeasured warm-up of each; each function round
gets fresh deliveries (a delivered one is not posted again). A round counts only if the receiver
got every POST and, for the function, every delivery is recorded as succeeded. Printed: deliveries
per second (median of the rounds) and the ratio function/baseline (target >= 0.5); the share of the
function's time spent inside AWS calls (moto, the emulator) and the ratio without it; the AWS calls
per delivery attempt by operation.

    python -m bench.webhooks [--deliveries N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
TARGET = 0.5
BATCH = 10
REGION = "us-east-1"
TABLE_NAME = "mailroom-bench-webhooks"


class BenchError(RuntimeError):
    pass


@contextlib.contextmanager
def child(script: str) -> Iterator[int]:
    """A helper process that prints its port and serves until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise BenchError(f"{script} did not start (printed {line!r})")
        yield int(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Fixture:
    table: Any
    webhook: dict[str, Any]
    secret: str
    receiver_url: str
    count_url: str


def environment(moto_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MAILROOM_TABLE_NAME": TABLE_NAME,
        "MAILROOM_KMS_KEY_ID": "alias/mailroom-bench",
        "MAILROOM_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on loopback
        "POWERTOOLS_SERVICE_NAME": "mailroom",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",  # the function logs every attempt, as deployed
    }


def provision(receiver_port: int) -> Fixture:
    """The table (from template.yaml), the KMS key, the webhook queues, an organization, a webhook."""
    from mailroom.services import webhooks as service
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store.table import Table
    from tests.support.aws import create_table_from_template

    get_settings.cache_clear()
    aws.reset_clients()
    create_table_from_template(aws.dynamodb(), TABLE_NAME)
    kms = aws.client("kms")
    key_id = kms.create_key(Description="bench")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/mailroom-bench", TargetKeyId=key_id)
    sqs = aws.client("sqs")
    os.environ["MAILROOM_WEBHOOK_QUEUE_URL"] = sqs.create_queue(QueueName="bench-webhooks")["QueueUrl"]
    os.environ["MAILROOM_WEBHOOK_DLQ_URL"] = sqs.create_queue(QueueName="bench-webhooks-dlq")["QueueUrl"]
    get_settings.cache_clear()
    table = Table()
    org = create_organization(table, name="Bench")
    url = f"http://127.0.0.1:{receiver_port}/hook"
    webhook, secret = service.create_webhook(
        table,
        org.organization["id"],
        service.NewWebhook(url=url, event_types=["message.received"], mailbox_ids=[]),
    )
    return Fixture(table, webhook, secret, url, f"http://127.0.0.1:{receiver_port}/count")


def payload_data(i: int) -> dict[str, Any]:
    """A message.received payload of a realistic size (~1.5 KB)."""
    return {
        "message_id": f"msg_{i:08d}",
        "inbox_id": "mbx_01JB2Z0000000000000000000A",
        "thread_id": f"thr_{i:08d}",
        "from": "Sender <sender@example.org>",
        "to": ["agent@example.com"],
        "subject": f"Order {i} confirmation",
        "preview": "Thanks for your order. " * 8,
        "text": "Thanks for your order. Your items ship tomorrow. " * 20,
        "labels": ["inbox"],
        "links": {"self": f"/api/v1/messages/msg_{i:08d}"},
    }


def prepare_round(fixture: Fixture, n: int) -> tuple[list[dict[str, Any]], list[bytes], list[dict[str, str]]]:
    """Fresh deliveries (written to the table) and their SQS records; the same payloads and signed
    headers for the baseline."""
    from mailroom import clock
    from mailroom.domain import webhooks as rules
    from mailroom.services.webhook_delivery import signing_keys
    from mailroom.services.webhook_fanout import message_for
    from mailroom.store import events
    from mailroom.store import webhook_deliveries as deliveries
    from mailroom.store.table import serialize

    now_iso, now_epoch = clock.now_iso(), int(time.time())
    org_id = fixture.webhook["org_id"]
    keys = signing_keys(fixture.webhook, now_iso=now_iso)
    records, bodies, headers, items = [], [], [], []
    for i in range(n):
        event = events.new_event(org_id, "message.received", payload_data(i))
        delivery = deliveries.new_delivery(
            event, fixture.webhook, trigger="event", now_iso=now_iso, now_epoch=now_epoch
        )
        items.append(delivery)
        body = rules.encode_payload(rules.payload(event)).decode()
        message = message_for(delivery, body, not_before=0)
        records.append(
            {
                "messageId": f"bench-{delivery['id']}",
                "receiptHandle": f"bench-receipt-{i}",
                "body": message.body(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(now_epoch * 1000)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:bench-webhooks",
                "awsRegion": REGION,
            }
        )
        bodies.append(body.encode())
        headers.append(rules.headers(keys, event["event_id"], now_epoch, body.encode()))
    client = fixture.table.client
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(item)}} for item in items[start : start + 25]]
        pending = {fixture.table.name: chunk}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return records, bodies, headers


def received(fixture: Fixture) -> int:
    import httpx

    return int(httpx.get(fixture.count_url).text)


class LambdaContext:
    function_name = "bench-webhook-delivery"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:bench-webhook-delivery"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class AwsCalls:
    """AWS API calls the function makes, by ``service.Operation``, and the wall time spent inside
    them (botocore ``before-call``/``after-call`` on every client of ``store.aws``; one per API call,
    retries excluded). Counted only while ``active``. Calls made concurrently (the attempts' records
    are written from a thread pool) overlap: ``seconds`` is the union of their intervals, the wall
    time during which at least one call was in flight."""

    def __init__(self) -> None:
        import threading

        self.active = False
        self.counts: Counter[str] = Counter()
        self.intervals: list[tuple[float, float]] = []
        self._hooked: set[int] = set()
        self._local = threading.local()
        self._lock = threading.Lock()

    def hook(self) -> None:
        from mailroom.store import aws

        for client in list(aws._clients.values()):
            if id(client) not in self._hooked:
                client.meta.events.register("before-call", self._before)
                client.meta.events.register("after-call", self._after)
                self._hooked.add(id(client))

    def reset(self) -> None:
        self.counts, self.intervals = Counter(), []

    @property
    def seconds(self) -> float:
        busy, reached = 0.0, float("-inf")
        for start, end in sorted(self.intervals):
            if end > reached:
                busy += end - max(start, reached)
                reached = end
        return busy

    def _before(self, event_name: str, **_kwargs: Any) -> None:
        if self.active:
            _before, service, operation = event_name.split(".", 2)
            with self._lock:
                self.counts[f"{service}.{operation}"] += 1
            self._local.started = time.perf_counter()

    def _after(self, **_kwargs: Any) -> None:
        started = getattr(self._local, "started", None)
        if self.active and started is not None:
            self._local.started = None
            with self._lock:
                self.intervals.append((started, time.perf_counter()))


def run_function(
    fixture: Fixture, records: list[dict[str, Any]], calls: AwsCalls | None = None
) -> tuple[float, float]:
    from mailroom.entry.queues import webhook_delivery
    from mailroom.store import webhook_deliveries as deliveries
    from mailroom.store import webhooks

    before = received(fixture)
    if calls is not None:
        calls.hook()
        calls.active = True
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for start in range(0, len(records), BATCH):
            result = webhook_delivery({"Records": records[start : start + BATCH]}, LambdaContext())
            if result.get("batchItemFailures"):
                raise BenchError(f"the function reported failures: {result}")
    finally:
        if calls is not None:
            calls.active = False
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if received(fixture) - before != len(records):
        raise BenchError("the receiver did not get every delivery")
    org_id, webhook_id = fixture.webhook["org_id"], fixture.webhook["id"]
    import json

    wanted = [deliveries.key(org_id, webhook_id, json.loads(r["body"])["delivery_id"]) for r in records]
    states = {item["state"] for item in webhooks.batch_get(fixture.table, wanted).values()}
    if states != {"succeeded"}:
        raise BenchError(f"deliveries not all recorded as succeeded: {states}")
    return elapsed, cpu


def run_baseline(
    fixture: Fixture, bodies: list[bytes], headers: list[dict[str, str]], client: Any
) -> tuple[float, float]:
    from mailroom.loops import run_on_thread_loop

    async def post_all() -> None:
        for start in range(0, len(bodies), BATCH):
            responses = await asyncio.gather(
                *(
                    client.post(fixture.receiver_url, content=body, headers=header)
                    for body, header in zip(
                        bodies[start : start + BATCH], headers[start : start + BATCH], strict=True
                    )
                )
            )
            if any(r.status_code != 204 for r in responses):
                raise BenchError("the receiver refused a baseline POST")

    before = received(fixture)
    started, cpu = time.perf_counter(), time.process_time()
    run_on_thread_loop(post_all())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if received(fixture) - before != len(bodies):
        raise BenchError("the receiver did not get every baseline POST")
    return elapsed, cpu


def measure(n: int, rounds: int) -> int:
    import httpx

    from mailroom.loops import run_on_thread_loop

    with child("_webhook_receiver.py") as receiver_port, child("_moto_process.py") as moto_port:
        os.environ.update(environment(f"http://127.0.0.1:{moto_port}"))
        fixture = provision(receiver_port)
        # The client lives on the loop that runs it (as the function's shared client does).
        client = run_on_thread_loop(_make_client(httpx))
        sink = io.StringIO()
        rates: dict[str, list[float]] = {"baseline": [], "function": []}
        cpu_ms: dict[str, list[float]] = {"baseline": [], "function": []}
        calls = AwsCalls()
        aws_share: list[float] = []
        without_aws: list[float] = []
        with contextlib.redirect_stdout(sink):  # the function's JSON log lines: written, not shown
            for round_number in range(rounds + 1):
                records, bodies, headers = prepare_round(fixture, n)
                base_s, base_cpu = run_baseline(fixture, bodies, headers, client)
                calls.reset()
                func_s, func_cpu = run_function(fixture, records, calls if round_number else None)
                sink.seek(0)
                sink.truncate()
                if round_number == 0:
                    continue  # warm-up: connections, KMS decrypt, imports
                rates["baseline"].append(n / base_s)
                rates["function"].append(n / func_s)
                cpu_ms["baseline"].append(base_cpu * 1000 / n)
                cpu_ms["function"].append(func_cpu * 1000 / n)
                aws_share.append(calls.seconds / func_s)
                without_aws.append(n / max(func_s - calls.seconds, 1e-9))
                per_delivery = calls.counts
        run_on_thread_loop(client.aclose())

    base, func = statistics.median(rates["baseline"]), statistics.median(rates["function"])
    ratio = func / base
    print(f"webhook deliveries to a loopback receiver: {n} per round, {rounds} rounds, batches of {BATCH}")
    print(f"(Python {sys.version.split()[0]}, moto server in its own process, receiver in its own process)")
    print()
    print(f"{'round':<8}{'baseline /s':>14}{'function /s':>14}{'ratio':>8}")
    for i, (b, f) in enumerate(zip(rates["baseline"], rates["function"], strict=True), start=1):
        print(f"{i:<8}{b:>14.0f}{f:>14.0f}{f / b:>8.2f}")
    print(f"{'median':<8}{base:>14.0f}{func:>14.0f}{ratio:>8.2f}")
    print()
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"delivery function / bare httpx = {ratio:.2f} ({verdict} the target of >= {TARGET})")
    share, own = statistics.median(aws_share), statistics.median(without_aws)
    print(
        f"time inside AWS calls (the emulator, over loopback): {share:.0%} of the function's; without it "
        f"{own:.0f} deliveries/s, {own / base:.2f} of the baseline"
    )
    operations = ", ".join(f"{op} {count / n:.2f}" for op, count in sorted(per_delivery.items()))
    print(
        f"AWS calls per delivery attempt (last round, batches of {BATCH}): "
        f"{sum(per_delivery.values()) / n:.2f} ({operations})"
    )
    base_cpu, func_cpu = statistics.median(cpu_ms["baseline"]), statistics.median(cpu_ms["function"])
    print(
        f"CPU of this process per delivery (moto and the receiver excluded): baseline {base_cpu:.2f} ms, "
        f"function {func_cpu:.2f} ms; by CPU the function reaches {base_cpu / func_cpu:.2f} of the baseline"
    )
    return 0


async def _make_client(httpx: Any) -> Any:
    return httpx.AsyncClient(timeout=15.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=500, help="deliveries per round (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    args = parser.parse_args(argv)
    if args.deliveries < BATCH or args.rounds < 1:
        parser.error("--deliveries must be at least 10 and --rounds at least 1")
    sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "layers" / "mailroom")) if p not in sys.path]
    saved = dict(os.environ)
    try:
        return measure(args.deliveries, args.rounds)
    except BenchError as exc:
        print(f"webhooks: {exc}", file=sys.stderr)
        return 1
    finally:
        os.environ.clear()
        os.environ.update(saved)


if __name__ == "__main__":
    sys.exit(main())
