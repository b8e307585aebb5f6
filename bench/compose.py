"""AWS API calls per compose operation: saving a draft, replacing it, sending it, and sends that
use an identity or a template, against the floor of a send that keeps a copy (as bench.send).

Counted like bench.send (a botocore ``before-call`` hook on every client, moto in-process, each
request through ComposeFunction's or SendFunction's real handler with a warm token cache).

Scenarios (``plain-send``, a send without compose options, is the comparison):

    draft-save     POST /messages/drafts: text and a 10 KB attachment
    draft-replace  PUT /messages/drafts/{uid}: new text, the attachment kept by reference
    draft-send     POST /messages/send {draft_uid}: claim, send, tombstone, remove the draft
    identity-send  POST /messages/send with identity_id (an address on a verified domain, signed)
    template-send  POST /messages/send with template_id + variables
    scheduled-create  POST /messages/scheduled: a body, composed and checked now, one schedule
    scheduled-fire    the schedule firing (ScheduledSendFunction): claim, send, record it sent

Baseline, same run: SES SendEmail, S3 PutObject of the raw message and one DynamoDB
TransactWriteItems (3 calls). A draft save sends nothing, so its floor is 2 (the bytes, the
record); it is printed against the same 3 for one scale.

    python -m bench.compose [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.send import BASELINE_CALLS, Calls, World, baseline, emulated_aws


def _scheduler(world: World) -> None:
    """What the template wires for scheduled send: the target, the role, the group (moto's)."""
    import os

    from mailroom.settings import get_settings
    from mailroom.store import aws

    functions = "arn:aws:lambda:us-east-1:123456789012:function"
    os.environ.update(
        {
            "MAILROOM_SCHEDULED_SEND_FUNCTION_ARN": f"{functions}:mailroom-bench-ScheduledSendFunction",
            "MAILROOM_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/mailroom-bench-SchedulerRole",
            "MAILROOM_SCHEDULE_GROUP": "mailroom-bench-scheduled-send",
        }
    )
    get_settings.cache_clear()
    aws.client("scheduler").create_schedule_group(Name="mailroom-bench-scheduled-send")


def scenarios(world: World) -> dict[str, Callable[[str], object]]:
    from datetime import UTC, datetime, timedelta

    from mailroom.store import keys
    from mailroom.store.txn import Update
    from tests.support.lambda_api import LambdaContext, function_module

    _scheduler(world)

    writer = world.request(
        "mailboxes",
        "POST",
        f"/api/v1/mailboxes/{world.mailbox['id']}/message-tokens",
        world.org.admin_token,
        {"name": "compose", "scopes": ["messages:read", "messages:write", "messages:send"]},
    )["token"]
    domain = world.request(
        "domains", "POST", "/api/v1/domains", world.org.admin_token, {"domain": "news.example.org"}
    )
    org_id = world.org.organization["id"]
    Update(keys.org_pk(org_id), keys.domain_sk(domain["id"])).set(status="verified").apply(world.table)
    identity = world.request(
        "compose",
        "POST",
        "/api/v1/messages/identities",
        writer,
        {"address": "hello@news.example.org", "name": "News", "signature_text": "-- News"},
    )
    template = world.request(
        "compose",
        "POST",
        "/api/v1/messages/templates",
        writer,
        {
            "name": "Welcome",
            "subject": "Hi {{ name }}",
            "text": "Hello {{ name }}",
            "html": "<p>{{ name }}</p>",
        },
    )
    attachment = base64.b64encode(b"q" * 10_000).decode()
    drafts: dict[str, dict[str, Any]] = {}

    def save(phase: str) -> None:
        body = {
            "to": "bob@example.net",
            "subject": "Draft",
            "text": "first",
            "attachments": [{"filename": "a.csv", "content": attachment}],
        }
        drafts[phase.split("#")[1]] = world.request(
            "compose", "POST", "/api/v1/messages/drafts", writer, body, phase=phase
        )

    def replace(phase: str) -> None:
        draft = drafts[phase.split("#")[1]]
        body = {
            "to": "bob@example.net",
            "subject": "Draft",
            "text": "second",
            "attachments": [{"message_id": draft["id"], "index": draft["attachments"][0]["index"]}],
        }
        world.request("compose", "PUT", f"/api/v1/messages/drafts/{draft['id']}", writer, body, phase=phase)

    def send_draft(phase: str) -> None:
        draft = drafts[phase.split("#")[1]]
        world.request(
            "send", "POST", "/api/v1/messages/send", writer, {"draft_uid": draft["id"]}, phase=phase
        )

    scheduled: dict[str, dict[str, Any]] = {}

    def schedule(phase: str) -> None:
        send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {"to": "bob@example.net", "subject": "Later", "text": "hi", "send_at": send_at}
        scheduled[phase.split("#")[1]] = world.request(
            "compose", "POST", "/api/v1/messages/scheduled", writer, body, phase=phase
        )

    def fire(phase: str) -> None:
        event = {
            "org_id": world.org.organization["id"],
            "mailbox_id": world.mailbox["id"],
            "scheduled_id": scheduled[phase.split("#")[1]]["id"],
        }
        with world.calls.counting(phase):
            outcome = function_module("scheduled_send").handler(event, LambdaContext("scheduled_send"))
        if outcome != {"outcome": "sent"}:
            raise RuntimeError(f"the scheduled send did not go out: {outcome}")

    return {
        "baseline": lambda phase: baseline(world, phase),
        "plain-send": lambda phase: world.request(
            "send",
            "POST",
            "/api/v1/messages/send",
            writer,
            {"to": "bob@example.net", "text": "hi"},
            phase=phase,
        ),
        "draft-save": save,
        "draft-replace": replace,
        "draft-send": send_draft,
        "identity-send": lambda phase: world.request(
            "send",
            "POST",
            "/api/v1/messages/send",
            writer,
            {"to": "bob@example.net", "text": "hi", "identity_id": identity["id"]},
            phase=phase,
        ),
        "template-send": lambda phase: world.request(
            "send",
            "POST",
            "/api/v1/messages/send",
            writer,
            {"to": "bob@example.net", "template_id": template["id"], "variables": {"name": "Bo"}},
            phase=phase,
        ),
        "scheduled-create": schedule,
        "scheduled-fire": fire,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compose", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario (default 3)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    totals: dict[str, list[int]] = {}
    detail: dict[str, Counter[str]] = {}
    with emulated_aws():
        calls = Calls()
        world = World(calls)
        runs = scenarios(world)
        for name, run in runs.items():
            run(f"{name}#warm-up")  # first use creates the clients (and imports) outside the count
        for round_number in range(args.rounds):
            for name, run in runs.items():
                phase = f"{name}#{round_number}"
                run(phase)
                totals.setdefault(name, []).append(sum(calls.counts[phase].values()))
                detail[name] = calls.counts[phase]
    print(
        f"AWS API calls per compose operation (moto in-process, {args.rounds} rounds; "
        f"baseline = {BASELINE_CALLS} calls)"
    )
    print(f"{'scenario':<16} {'calls':>5} {'ratio':>6}  by operation")
    for name, counts in totals.items():
        median = statistics.median(counts)
        spread = "" if len(set(counts)) == 1 else f" (varied: {counts})"
        operations = ", ".join(f"{op} {n}" for op, n in sorted(detail[name].items()))
        print(f"{name:<16} {median:>5.0f} {median / BASELINE_CALLS:>6.2f}  {operations}{spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
