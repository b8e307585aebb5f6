"""What Mailroom costs in AWS per unit of work: measured AWS requests times us-east-1 list prices.

Each unit of work runs through the same fixtures and real handlers as its own bench, with every
AWS call metered (``bench/_aws_meter.py``: calls, DynamoDB request units from item sizes, S3
request tiers and bytes, SES recipients) and the handler's duration timed:

* **inbound message**: ``bench.inbound``'s corpus through the inbound function with its SES
  receipt events, plus what SES itself does per message (the receipt, its 256 KB chunks, the
  receipt rule's S3Action PUT of the raw message, one Lambda invocation);
* **send**: ``bench.send``'s plain send through the send function (one API Gateway request, one
  invocation), then the SES Delivery event applied by the delivery-events function;
* **webhook delivery**: ``bench.webhooks``' deliveries through the SQS-triggered delivery function
  in batches of 10 (AWS calls counted on this side of moto's server), plus what Lambda's SQS poller
  does per batch (one ReceiveMessage, one DeleteMessageBatch);
* **migrated message**: ``bench.migration``'s corpus in a real Dovecot (plain IMAP on loopback),
  imported by the migration workflow's tasks through the worker function's handler in this process
  (tests.support.migrations' driver, batches one after the other); Step Functions transitions are
  counted as the task states entered (a floor: the machine's Choice and Map states add some), the
  Lambda duration is each task's wall time with moto in process (an upper bound).
* **mailbox-month at rest**: a mailbox holding ``--mailbox-messages`` messages of bench.migration's
  corpus's mean size, stored as the inbound run stored them (S3 bytes per byte received, DynamoDB
  bytes per message, both measured).

Lambda GB-seconds are the configured memory (template.yaml) times the duration per invocation.
For inbound and send, AWS is moto in this process, whose time per call says nothing about AWS's: the
duration is the handler's own measured time (without the time inside AWS calls) plus
``--aws-call-ms`` per AWS call (an assumed round trip, 10 ms by default; both parts are printed).
For webhooks, moto is its own process and the calls are loopback HTTP round trips: the measured
wall time is used as it is. Prices are ``mailroom.domain.billing.PRICES['us-east-1']``
(docs/billing.md), the table the billing estimate uses. Free tiers are ignored.

    python -m bench.cost [--messages N] [--sends N] [--deliveries N] [--migrated N] [--mailbox-messages N]
                         [--aws-call-ms MS]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._aws_meter import Meter, Tally
from bench._cost_model import (
    UNPRICED,
    UnitWork,
    cost_per_thousand,
    gb_seconds,
    ses_chunks,
    storage_month,
    usd,
)

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
DYNAMODB_ITEM_OVERHEAD = 100  # bytes DynamoDB adds to each item's stored size


@dataclass
class Measured:
    name: str
    units: int
    work: UnitWork
    tally: Tally
    seconds: float  # handler wall time per unit, AWS emulation included
    aws_seconds: float  # of which inside (emulated) AWS calls
    billed_seconds: float  # the Lambda duration priced, per unit
    memory_mb: int


def memory_mb(function_folder: str) -> int:
    """The function's configured memory: its own MemorySize, else the template's Globals."""
    from tests.support.aws import template

    doc = template()
    default = int(doc["Globals"]["Function"]["MemorySize"])
    for resource in doc["Resources"].values():
        props = resource.get("Properties") or {}
        if (
            resource.get("Type") == "AWS::Serverless::Function"
            and str(props.get("CodeUri", "")).rstrip("/") == f"functions/{function_folder}"
        ):
            return int(props.get("MemorySize", default))
    raise LookupError(f"no function with CodeUri functions/{function_folder}/ in template.yaml")


def _from_tally(tally: Tally, units: int) -> UnitWork:
    """The metered requests of ``units`` units of work, per unit."""
    return UnitWork(
        dynamodb_read_units=tally.dynamodb_read_units,
        dynamodb_write_units=tally.dynamodb_write_units,
        s3_put_tier=tally.s3_put_tier,
        s3_get_tier=tally.s3_get_tier,
        ses_messages=tally.ses_recipients,
        sqs_requests=tally.requests("sqs"),
        kms_requests=tally.requests("kms"),
    ).scaled(1 / units)


# ----------------------------------------------------------------------------- inbound


def billed(tally: Tally, started_calls: int, started_aws: float, wall: float, call_ms: float) -> float:
    """The Lambda duration of one invocation measured against in-process moto: its own time plus
    an assumed round trip per AWS call it made."""
    calls = sum(tally.calls.values()) - started_calls
    own = wall - (tally.seconds_in_aws - started_aws)
    return max(0.0, own) + calls * call_ms / 1000


def measure_inbound(meter: Meter, limit: int, call_ms: float) -> tuple[Measured, dict[str, float]]:
    """Inbound messages, and what one stored message leaves at rest (bytes in S3 per received
    byte, bytes in DynamoDB per message)."""
    from moto import mock_aws

    from bench import inbound
    from local.moto_patches import install as install_moto_fixes
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store.table import Table
    from tests.support import inbound as sim
    from tests.support.aws import create_table_from_template
    from tests.support.lambda_api import LambdaContext, function_module
    from tests.support.mailboxes import add_domain, new_mailbox

    messages = [raw for _name, raw in inbound.corpus()][:limit]
    memory = memory_mb("inbound")
    tally = Tally()
    walls: list[float] = []
    durations: list[float] = []
    chunks = 0
    with inbound.environment():
        get_settings.cache_clear()
        aws.reset_clients()
        install_moto_fixes()
        with mock_aws():
            create_table_from_template(aws.dynamodb(), inbound.TABLE_NAME)
            s3 = aws.client("s3")
            s3.create_bucket(Bucket=inbound.BUCKET)
            org = create_organization(Table(), name="Cost Co")
            add_domain(org, "example.com")
            new_mailbox(org, "inbox")
            events = []
            for raw in messages:
                ses_id, _ = sim.store_inbound(inbound.BUCKET, raw, recipients=["inbox@example.com"])
                events.append(sim.ses_event(ses_id, ["inbox@example.com"]))
                chunks += ses_chunks(len(raw))
            handler = function_module("inbound").handler
            context = LambdaContext(function_name="inbound")
            handler(events[0], context)  # warm: imports and clients outside the measure
            stored_before = _bucket_bytes(s3, inbound.BUCKET)
            for event in events[1:]:
                calls, in_aws = sum(tally.calls.values()), tally.seconds_in_aws
                with meter.measuring(tally):
                    started = time.perf_counter()
                    handler(event, context)
                    walls.append(time.perf_counter() - started)
                durations.append(billed(tally, calls, in_aws, walls[-1], call_ms))
            stored = _bucket_bytes(s3, inbound.BUCKET) - stored_before
        aws.reset_clients()
        get_settings.cache_clear()
    n = len(events) - 1
    received_bytes = sum(len(raw) for raw in messages[1:])
    work = _from_tally(tally, n) + UnitWork(
        lambda_invocations=1,
        lambda_gb_seconds=statistics.mean(gb_seconds(memory, d) for d in durations),
        ses_messages=1,
        ses_inbound_chunks=chunks / len(messages),
        s3_put_tier=1,  # the receipt rule's S3Action writes the raw message before the function runs
    )
    at_rest = {
        # the raw messages SES wrote are in the bucket before the clock: added here
        "s3_bytes_per_received_byte": (received_bytes + stored) / received_bytes,
        "dynamodb_bytes_per_message": (
            tally.dynamodb_bytes_put + DYNAMODB_ITEM_OVERHEAD * tally.dynamodb_items_put
        )
        / n,
    }
    measured = Measured(
        "inbound message",
        n,
        work,
        tally,
        statistics.mean(walls),
        tally.seconds_in_aws / n,
        statistics.mean(durations),
        memory,
    )
    return measured, at_rest


def _bucket_bytes(s3: Any, bucket: str) -> int:
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        total += sum(int(obj["Size"]) for obj in page.get("Contents", []))
    return total


# ----------------------------------------------------------------------------- send


def measure_send(meter: Meter, sends: int, call_ms: float) -> Measured:
    from bench import send as send_bench
    from tests.support.lambda_api import LambdaContext, function_module

    memory, events_memory = memory_mb("send"), memory_mb("delivery_events")
    tally = Tally()
    durations: list[float] = []
    event_durations: list[float] = []
    with send_bench.emulated_aws():
        world = send_bench.World(send_bench.Calls())
        warm = world.send({"to": "bob@example.net", "text": "warm-up"})
        world.ses_event("delivery", warm, "bob@example.net", "warm-up")
        delivery_handler = function_module("delivery_events").handler
        walls: list[float] = []
        for i in range(sends):
            calls, in_aws = sum(tally.calls.values()), tally.seconds_in_aws
            with meter.measuring(tally):
                started = time.perf_counter()
                sent = world.send({"to": "bob@example.net", "subject": f"Hi {i}", "text": "hi"})
                walls.append(time.perf_counter() - started)
            durations.append(billed(tally, calls, in_aws, walls[-1], call_ms))
            event = _delivery_event(world, sent)
            calls, in_aws = sum(tally.calls.values()), tally.seconds_in_aws
            with meter.measuring(tally):
                started = time.perf_counter()
                delivery_handler(event, LambdaContext(function_name="delivery-events"))
                walls[-1] += time.perf_counter() - started
            event_durations.append(billed(tally, calls, in_aws, time.perf_counter() - started, call_ms))
    work = _from_tally(tally, sends) + UnitWork(
        apigateway_requests=1,
        lambda_invocations=2,  # the send function, then the delivery-events function
        lambda_gb_seconds=statistics.mean(gb_seconds(memory, d) for d in durations)
        + statistics.mean(gb_seconds(events_memory, d) for d in event_durations),
    )
    return Measured(
        "send (plain, 1 recipient)",
        sends,
        work,
        tally,
        statistics.mean(walls),
        tally.seconds_in_aws / sends,
        statistics.mean(durations) + statistics.mean(event_durations),
        memory,
    )


def _delivery_event(world: Any, sent: dict[str, Any]) -> dict[str, Any]:
    """The SES Delivery event for ``sent`` (bench.send's fixture, built without running it)."""
    import copy

    from tests.support.lambda_api import load_event

    event: dict[str, Any] = copy.deepcopy(load_event("ses_delivery_delivered.json"))
    mail = event["detail"]["mail"]
    mail["messageId"] = sent["ses_message_id"]
    mail["tags"].update(
        {
            "org_id": [world.org.organization["id"]],
            "mailbox_id": [world.mailbox["id"]],
            "message_id": [sent["message_id"]],
        }
    )
    event["detail"]["delivery"]["recipients"] = ["bob@example.net"]
    return event


# ----------------------------------------------------------------------------- webhooks


def measure_webhooks(meter: Meter, deliveries: int) -> Measured:
    from bench import webhooks

    memory = memory_mb("webhook_delivery")
    tally = Tally()
    saved = dict(os.environ)
    try:
        with (
            webhooks.child("_webhook_receiver.py") as receiver_port,
            webhooks.child("_moto_process.py") as moto_port,
        ):
            os.environ.update(webhooks.environment(f"http://127.0.0.1:{moto_port}"))
            fixture = webhooks.provision(receiver_port)
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink):  # the function's JSON log lines
                records, _bodies, _headers = webhooks.prepare_round(fixture, webhooks.BATCH)
                webhooks.run_function(fixture, records)  # warm: connections, KMS decrypt, imports
                records, _bodies, _headers = webhooks.prepare_round(fixture, deliveries)
                with meter.measuring(tally):
                    elapsed, _cpu = webhooks.run_function(fixture, records)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    batches = -(-deliveries // webhooks.BATCH)
    per_batch = elapsed / batches
    work = _from_tally(tally, deliveries) + UnitWork(
        lambda_invocations=batches / deliveries,
        lambda_gb_seconds=gb_seconds(memory, per_batch) * batches / deliveries,
        sqs_requests=2 * batches / deliveries,  # Lambda's poller: ReceiveMessage, DeleteMessageBatch
    )
    # run_function's time includes the receiver check of each batch; the AWS share is moto's server.
    per_delivery = elapsed / deliveries
    return Measured(
        "webhook delivery",
        deliveries,
        work,
        tally,
        per_delivery,
        tally.seconds_in_aws / deliveries,
        per_delivery,
        memory,
    )


# ----------------------------------------------------------------------------- migration


def measure_migration(meter: Meter, messages: int) -> Measured:
    """``bench.migration``'s corpus, seeded into a real Dovecot, imported by the migration workflow's
    steps (tests.support.migrations' driver: the state machine's tasks, one after the other) through
    the worker function's handler, in this process so every AWS call is metered. The job is started
    through the API before the meter runs."""
    import pytest
    from moto import mock_aws

    from bench import migration as migration_bench
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store import migrations as store
    from mailroom.store.table import Table
    from tests.support.aws import create_table_from_template
    from tests.support.dovecot import DovecotServer
    from tests.support.lambda_api import call
    from tests.support.mailboxes import PASSWORD, add_domain, key, new_mailbox
    from tests.support.migrations import WorkflowDriver, provision_migration_aws, start_body

    memory = memory_mb("migration_worker")
    tally = Tally()
    walls: list[float] = []

    class MeteredDriver(WorkflowDriver):
        def invoke(self, state_name: str, event: dict[str, Any]) -> Any:
            started = time.perf_counter()
            try:
                with meter.measuring(tally):
                    return super().invoke(state_name, event)
            finally:
                walls.append(time.perf_counter() - started)

    with DovecotServer() as server:
        account = migration_bench.seed(server, messages)
        environment = migration_bench._environment(0, server, "plain")
        environment.pop("AWS_ENDPOINT_URL")
        patch = pytest.MonkeyPatch()
        try:
            for name, value in environment.items():
                patch.setenv(name, value)
            patch.delenv("AWS_ENDPOINT_URL", raising=False)
            get_settings.cache_clear()
            aws.reset_clients()
            with mock_aws():
                create_table_from_template(aws.dynamodb(), migration_bench.TABLE_NAME)
                provision_migration_aws(patch)
                org = create_organization(Table(), name="Cost Co")
                add_domain(org, "example.com")
                mailbox = new_mailbox(org, "owner")
                body = start_body(
                    mailbox["id"],
                    PASSWORD,
                    source_host=migration_bench.HOST,
                    source_port=migration_bench._port(server, "plain"),
                    source_security="none",
                    source_email=account.user,
                    source_password=account.password,
                )
                started = call(
                    "migrations",
                    "POST",
                    "/api/v1/migrations",
                    token=org.admin_token,
                    json_body=body,
                    headers=key(),
                )
                if started.status != 201:
                    raise RuntimeError(f"starting the migration: {started.status} {started.body[:300]!r}")
                job = store.get(Table(), str(org.organization["id"]), started.json()["data"]["id"])
                assert job is not None
                driver = MeteredDriver()
                runs = driver.run_job(job)
                if runs[-1].end != "completed":
                    raise RuntimeError(f"the migration ended {runs[-1].end}: {runs[-1].error}")
        finally:
            patch.undo()
            get_settings.cache_clear()
            aws.reset_clients()
    invocations = len(driver.invocations)
    work = _from_tally(tally, messages) + UnitWork(
        lambda_invocations=invocations / messages,
        lambda_gb_seconds=sum(gb_seconds(memory, wall) for wall in walls) / messages,
        stepfunctions_transitions=invocations / messages,
    )
    return Measured(
        "migrated message",
        messages,
        work,
        tally,
        sum(walls) / messages,
        tally.seconds_in_aws / messages,
        sum(walls) / messages,
        memory,
    )


# ----------------------------------------------------------------------------- report


def report(results: list[Measured], at_rest: dict[str, float], mailbox_messages: int) -> None:
    from mailroom.domain.billing import GB, PRICES

    prices = PRICES[REGION]
    print(f"AWS cost per 1,000 units of work, {REGION} list prices (docs/billing.md), free tiers ignored")
    print()
    services = ("lambda", "apigateway", "dynamodb", "s3", "ses", "sqs", "stepfunctions")
    print(f"{'unit of work':<28}{'total $':>10}" + "".join(f"{s:>14}" for s in services))
    for result in results:
        costs = cost_per_thousand(result.work, prices)
        total = sum(costs.values(), Decimal(0))
        print(f"{result.name:<28}{usd(total):>10}" + "".join(f"{usd(costs[s]):>14}" for s in services))
    print()
    print("measured per unit (mean):")
    for r in results:
        w = r.work
        calls = ", ".join(f"{name} {count / r.units:.2f}" for name, count in sorted(r.tally.calls.items()))
        print(
            f"  {r.name} ({r.units} measured; {r.memory_mb} MB): {1000 * r.seconds:.1f} ms "
            f"in the handler(s), {1000 * r.aws_seconds:.1f} ms summed inside emulated AWS calls; "
            "Lambda duration priced "
            f"{1000 * r.billed_seconds:.1f} ms"
        )
        print(
            f"    Lambda {w.lambda_invocations:.2f} invocations, {w.lambda_gb_seconds:.4f} GB-s; DynamoDB "
            f"{w.dynamodb_read_units:.2f} RRU, {w.dynamodb_write_units:.2f} WRU; "
            f"S3 {w.s3_put_tier:.2f} PUT-tier, {w.s3_get_tier:.2f} GET-tier; "
            f"SES {w.ses_messages:.2f} messages, {w.ses_inbound_chunks:.2f} "
            f"received chunks; SQS {w.sqs_requests:.2f}; API Gateway {w.apigateway_requests:.2f}"
        )
        print(f"    calls: {calls}")
        unpriced = [f"{name} {getattr(w, name):.3f}" for name in UNPRICED if getattr(w, name)]
        if unpriced:
            print(f"    not priced (no price in the table): {', '.join(unpriced)}")
    print()
    from bench._migration_corpus import messages as sample_mailbox

    sample = sample_mailbox(200)
    mean_size = sum(len(m.raw) for m in sample) / len(sample)
    s3_bytes = int(mailbox_messages * mean_size * at_rest["s3_bytes_per_received_byte"])
    dynamodb_bytes = mailbox_messages * at_rest["dynamodb_bytes_per_message"]
    print(
        f"mailbox-month at rest: {mailbox_messages:,} messages of {mean_size / 1024:.1f} KB on average "
        f"(bench.migration's corpus): S3 holds {s3_bytes / GB:.2f} GB (raw + stored copy, "
        f"{at_rest['s3_bytes_per_received_byte']:.2f} bytes per byte received, measured) = "
        f"${usd(storage_month(s3_bytes, prices))} a month; DynamoDB holds {dynamodb_bytes / GB:.3f} GB "
        f"({at_rest['dynamodb_bytes_per_message']:.0f} bytes per message, measured; "
        "not priced: the table has no DynamoDB storage price); no request is made while nothing happens"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=40, help="inbound messages (default 40)")
    parser.add_argument("--sends", type=int, default=20, help="sends (default 20)")
    parser.add_argument("--deliveries", type=int, default=50, help="webhook deliveries (default 50)")
    parser.add_argument("--migrated", type=int, default=100, help="messages migrated (default 100)")
    parser.add_argument(
        "--mailbox-messages",
        type=int,
        default=10_000,
        help="messages held by the mailbox at rest (default 10000)",
    )
    parser.add_argument(
        "--aws-call-ms", type=float, default=10.0, help="assumed AWS round trip per call (default 10 ms)"
    )
    args = parser.parse_args(argv)
    if args.messages < 2 or min(args.sends, args.migrated, args.mailbox_messages) < 1 or args.deliveries < 10:
        parser.error("--messages must be at least 2, --sends and --mailbox-messages 1, --deliveries 10")
    sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "layers" / "mailroom")) if p not in sys.path]
    import logging

    logging.disable(logging.WARNING)
    meter = Meter()
    with meter.installed():
        inbound, at_rest = measure_inbound(meter, args.messages, args.aws_call_ms)
        sends = measure_send(meter, args.sends, args.aws_call_ms)
        webhook = measure_webhooks(meter, args.deliveries)
        migrated = measure_migration(meter, args.migrated)
    report([inbound, sends, webhook, migrated], at_rest, args.mailbox_messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
