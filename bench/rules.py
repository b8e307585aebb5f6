"""Inbound throughput with mailbox rules: a mailbox with 100 rules (regular expressions, header and
body conditions) against the same mailbox with none, measured in one run.

Each round is a fresh moto account (in this process) with two mailboxes of one organization, ``ruled``
(100 rules: regular expressions on the subject and body, header tests, one glob; the last rule
matches every message and labels it, so every message pays the whole evaluation and an action) and
``plain`` (no rules). The same messages go to each, alternating plain and ruled message by message,
through the inbound function's handler with its SES receipt event, so drift in the machine or the
table's size hits both alike.

AWS is moto in this process, so a request's AWS side costs CPU here, most of the handler's time,
and none of it would be the function's. The time inside moto's emulation (its botocore
``before-send`` handler, timed by a handler registered first and one registered last) is measured
and left out of Mailroom's own time; botocore's serializing and parsing, and the items'
(de)serialization, stay in it, as they would in the function. (This bench is why the rule set is
stored as one JSON string: as 100 nested maps, botocore's parsing of the BatchGetItem response cost
about 15 ms per message, and moto's serializer 300 ms.)

Printed: the medians of messages per second and their ratio, as measured and without moto's
emulation (the target, >= 0.9, is for the latter), the AWS API calls per message for each (target:
the same), the rule set item's size, and the rules' evaluation time per message in microseconds
(from the processing log). Nothing is asserted.

    python -m bench.rules [--rounds N] [--messages N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.inbound import BUCKET, LAYER_DIR, ROOT, TABLE_NAME, CallMeter, environment

DEFAULT_ROUNDS = 3
DEFAULT_MESSAGES = 30
RULES = 100
TARGET_RATIO = 0.9


@dataclass
class EmulatorClock:
    """Time spent inside moto's emulation of AWS requests (see the module docstring)."""

    seconds: float = 0.0
    started: float = 0.0

    def start(self, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def stop(self, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self.started

    def take(self) -> float:
        taken, self.seconds = self.seconds, 0.0
        return taken


@dataclass
class Round:
    plain_s: float
    ruled_s: float
    plain_moto_s: float
    ruled_moto_s: float
    rule_set_bytes: int
    plain_calls: Counter[tuple[str, str]]
    ruled_calls: Counter[tuple[str, str]]
    evaluation_us: list[int]


def rule_set() -> list[dict[str, Any]]:
    """100 rules that do not match the bench's mail (so every one is evaluated), then one that does."""
    rules: list[dict[str, Any]] = []
    for number in range(RULES - 1):
        kind = number % 4
        if kind == 0:
            condition = {
                "field": "subject",
                "op": "regex",
                "value": rf"^(invoice|receipt) #{number}[0-9]{{3,}}$",
            }
        elif kind == 1:
            condition = {
                "field": "body",
                "op": "regex",
                "value": rf"order (number|no\.?) *{number}-[A-Z]{{2}}[0-9]+",
            }
        elif kind == 2:
            condition = {
                "field": "header",
                "header": f"X-Campaign-{number}",
                "op": "contains",
                "value": "spring",
            }
        else:
            condition = {"field": "from", "op": "matches", "value": f"*@shop-{number}.example.?et"}
        rules.append(
            {
                "name": f"rule {number}",
                "match": "any",
                "conditions": [
                    condition,
                    {"field": "body", "op": "contains", "value": f"unsubscribe-{number}"},
                ],
                "actions": [{"type": "add_label", "label": f"l{number}"}],
            }
        )
    rules.append(
        {
            "name": "everything",
            "conditions": [{"field": "size", "op": "greater_than", "value": 0}],
            "actions": [{"type": "add_label", "label": "seen-by-rules"}],
        }
    )
    return rules


def message(number: int, to: str) -> bytes:
    body = "\r\n".join(
        f"Line {line} of message {number}: the quarterly figures, the plan and the next steps."
        for line in range(60)
    )
    return (
        f"From: Ann Example <ann@example.net>\r\nTo: {to}\r\nSubject: Weekly report {number}\r\n"
        f"Message-ID: <bench-{number}-{to}>\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Mailer: Bench 1.0\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def one_round(count: int) -> Round:
    from moto import mock_aws

    from local.moto_patches import install as install_moto_fixes
    from mailroom.services.organizations import create_organization
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from mailroom.store import rules as rule_store
    from mailroom.store.table import Table
    from tests.support import inbound as sim
    from tests.support.aws import create_table_from_template
    from tests.support.lambda_api import LambdaContext, function_module
    from tests.support.mailboxes import add_domain, new_mailbox, post

    get_settings.cache_clear()
    aws.reset_clients()
    install_moto_fixes()
    with mock_aws():
        create_table_from_template(aws.dynamodb(), TABLE_NAME)
        aws.client("s3").create_bucket(Bucket=BUCKET)
        org = create_organization(Table(), name="Bench Co")
        add_domain(org, "example.com")
        new_mailbox(org, "plain")
        ruled = new_mailbox(org, "ruled")
        for rule in rule_set():
            created = post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{ruled['id']}/rules", rule)
            if created.status != 201:
                raise RuntimeError(f"the bench's rule was refused: {created.body!r}")
        events = []
        for number in range(-1, count):  # -1: a warm-up pair, not measured (imports, first reads)
            for address in ("plain@example.com", "ruled@example.com"):
                ses_id, _ = sim.store_inbound(BUCKET, message(number, address), recipients=[address])
                events.append((address, sim.ses_event(ses_id, [address])))
        handler = function_module("inbound").handler
        context = LambdaContext(function_name="inbound")
        for _address, event in events[:2]:
            handler(event, context)
        events = events[2:]

        meter, emulator = CallMeter(), EmulatorClock()
        for service in ("dynamodb", "s3", "sesv2"):
            client = aws.client(service)
            client.meta.events.register("before-call.*.*", meter.before)
            client.meta.events.register("after-call.*.*", meter.after)
            client.meta.events.register_first("before-send", emulator.start)
            client.meta.events.register_last("before-send", emulator.stop)
        seconds = {"plain@example.com": 0.0, "ruled@example.com": 0.0}
        moto_seconds = dict.fromkeys(seconds, 0.0)
        calls: dict[str, Counter[tuple[str, str]]] = {address: Counter() for address in seconds}
        meter.take()
        emulator.take()
        for address, event in events:
            started = time.perf_counter()
            (report,) = handler(event, context)["messages"]
            seconds[address] += time.perf_counter() - started
            moto_seconds[address] += emulator.take()
            calls[address].update(meter.take())
            if report["stored"] != 1:
                raise RuntimeError(f"a message was not stored: {report}")
        org_id = str(org.organization["id"])
        table = Table()
        page = rule_store.log_page(table, org_id, ruled["id"], per_page=100, cursor=None)
        evaluation = [int(item["evaluation_us"]) for item in page.items]
        stored_rules = rule_store.get_rule_set(table, org_id, ruled["id"]) or {}
        rule_set_bytes = len(json.dumps(stored_rules, default=str))
    aws.reset_clients()
    get_settings.cache_clear()
    return Round(
        seconds["plain@example.com"],
        seconds["ruled@example.com"],
        moto_seconds["plain@example.com"],
        moto_seconds["ruled@example.com"],
        rule_set_bytes,
        calls["plain@example.com"],
        calls["ruled@example.com"],
        evaluation,
    )


def _per_message(calls: Counter[tuple[str, str]], n: int) -> str:
    return ", ".join(f"{service}:{op} {count / n:.2f}" for (service, op), count in sorted(calls.items()))


def report(rounds: list[Round], n: int) -> None:
    median = statistics.median
    print(f"{n} messages per mailbox, {len(rounds)} rounds (medians); moto in-process for AWS")
    print("                     no rules    100 rules    ratio")
    rows = (
        ("as measured", [(r.plain_s, r.ruled_s) for r in rounds], ""),
        (
            "without moto",
            [(r.plain_s - r.plain_moto_s, r.ruled_s - r.ruled_moto_s) for r in rounds],
            f" (target >= {TARGET_RATIO})",
        ),
    )
    for label, times, target in rows:
        plain = median(n / plain_s for plain_s, _ in times)
        ruled = median(n / ruled_s for _, ruled_s in times)
        ratio = median(plain_s / ruled_s for plain_s, ruled_s in times)
        print(f"  {label:<14} {plain:8.1f} msg/s {ruled:6.1f} msg/s  {ratio:.3f}{target}")
    moto_ms = median((r.ruled_moto_s - r.plain_moto_s) * 1000 / n for r in rounds)
    print(
        f"  moto's extra emulation time per ruled message: {moto_ms:.0f} ms "
        f"(the rule set item: {rounds[0].rule_set_bytes / 1024:.0f} KB as JSON)"
    )
    print("AWS API calls per message (first round):")
    print(f"  no rules:  {_per_message(rounds[0].plain_calls, n)}")
    print(f"  {RULES} rules: {_per_message(rounds[0].ruled_calls, n)}")
    same = all(
        {k: v / n for k, v in r.plain_calls.items()} == {k: v / n for k, v in r.ruled_calls.items()}
        for r in rounds
    )
    print(f"  the same: {'yes' if same else 'NO'}")
    samples = [us for r in rounds for us in r.evaluation_us]
    if samples:
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        print(
            f"rule evaluation per message: median {median(samples):.0f} µs, p90 {p90} µs "
            f"({RULES} rules, from the processing log)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"default {DEFAULT_ROUNDS}")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help=f"default {DEFAULT_MESSAGES}")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.messages < 1:
        parser.error("--rounds and --messages must be at least 1")
    sys.path[:0] = [p for p in (str(ROOT), str(LAYER_DIR)) if p not in sys.path]
    rounds = []
    with environment():
        for _ in range(args.rounds):
            rounds.append(one_round(args.messages))
            sys.stderr.write(".")
            sys.stderr.flush()
    sys.stderr.write("\n")
    report(rounds, args.messages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
