"""AWS API calls per send, by service and operation, against the floor any send-and-keep-a-copy pays.

Every call is counted with a botocore ``before-call`` hook (one per API call, retries excluded) on
each client the code under test creates. AWS is moto, in this process. Each scenario runs
SendFunction's (or DeliveryEventsFunction's) real handler with a real-shaped event, as API Gateway
would; the function authenticates the token itself (``mailroom.auth``) with its cache on, as
deployed, so the counted requests reuse the lookup the warm-up made; a lookup's own calls (once per
token per cache period per execution environment) are printed apart. API request counts are flushed
as the template configures it (``MAILROOM_USAGE_FLUSH_SECONDS=60``: one UpdateItem per organization
per minute per instance, services/request_meter.py), also printed apart.

Scenarios:

    plain     one recipient, text only
    rich      to + cc + bcc, text and HTML, two attachments, two labels, a custom header
    reply     the reply prefill of a received message posted back (parent lookup, answered flag)
    alias     from an alias identity of the mailbox
    forward   a forward carrying the original's attachment by reference (read back from S3)
    delivery  one SES Delivery event applied to a Sent copy
    bounce    one permanent bounce: status, event, counter, suppression

Baseline, same run: SES SendEmail, S3 PutObject of the raw message and one DynamoDB
TransactWriteItems, i.e. send, keep the bytes, record the message atomically. Printed: calls per
operation, the total, and the ratio total / baseline (3 calls) for each scenario, and the plain
send against its target (issue 23: at most 6; docs/sending.md "Cost per send" lists them).

    python -m bench.send [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
TABLE = "mailroom-bench-send"
BUCKET = "mailroom-bench-send-mail"
BASELINE_CALLS = 3
TARGET_PLAIN = 6  # issue 23


class Calls:
    """Counts API calls by ``service.Operation`` into the current phase."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.counts: dict[str, Counter[str]] = {}
        self._hooked: set[int] = set()

    def hook(self) -> None:
        from mailroom.store import aws

        for client in list(aws._clients.values()):
            if id(client) not in self._hooked:
                client.meta.events.register("before-call", self._count)
                self._hooked.add(id(client))

    def _count(self, event_name: str, **_kwargs: Any) -> None:
        _before, service, operation = event_name.split(".", 2)
        self.counts.setdefault(self.phase, Counter())[f"{service}.{operation}"] += 1

    @contextmanager
    def counting(self, phase: str) -> Iterator[Counter[str]]:
        self.hook()
        previous, self.phase = self.phase, phase
        self.counts[phase] = Counter()
        try:
            yield self.counts[phase]
        finally:
            self.phase = previous


@contextmanager
def emulated_aws() -> Iterator[None]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MAILROOM_TABLE_NAME": TABLE,
            "MAILROOM_MAIL_BUCKET": BUCKET,
            "MAILROOM_SES_CONFIGURATION_SET": "mailroom-bench-SendingConfigurationSet",
            "MAILROOM_AUTH_CACHE_TTL": "3600",  # the lookup is reused, as by a warm function
            "MAILROOM_USAGE_FLUSH_SECONDS": "60",  # as the template sets it: printed apart
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from local.moto_patches import install
    from mailroom.settings import get_settings
    from mailroom.store import aws
    from tests.support.aws import create_table_from_template

    get_settings.cache_clear()
    aws.reset_clients()
    install()
    with mock_aws():
        create_table_from_template(aws.dynamodb(), TABLE)
        aws.client("s3").create_bucket(Bucket=BUCKET)
        yield
    aws.reset_clients()


class World:
    def __init__(self, calls: Calls) -> None:
        from mailroom.services.organizations import create_organization
        from mailroom.store.table import Table

        self.calls = calls
        self._keys = 0
        self.table = Table()
        self.org = create_organization(self.table, name="Bench")
        self.request(
            "domains", "POST", "/api/v1/domains", self.org.admin_token, {"domain": "bench.example.com"}
        )
        self.mailbox = self.request(
            "mailboxes",
            "POST",
            "/api/v1/mailboxes",
            self.org.admin_token,
            {
                "local_part": "alice",
                "domain": "bench.example.com",
                "password": "Correct-Horse-42",
                "name": "A",
            },
        )
        self.request(
            "aliases",
            "POST",
            "/api/v1/aliases",
            self.org.admin_token,
            {"address": "sales@bench.example.com", "goto": ["alice@bench.example.com"]},
        )
        self.token = self.request(
            "mailboxes",
            "POST",
            f"/api/v1/mailboxes/{self.mailbox['id']}/message-tokens",
            self.org.admin_token,
            {"name": "bench", "scopes": ["messages:read", "messages:send"]},
        )["token"]

    def request(
        self, function: str, method: str, path: str, token: str, body: Any = None, phase: str | None = None
    ) -> Any:
        """One API request to the function, as API Gateway makes it."""
        import json

        from tests.support.lambda_api import LambdaContext, function_module, http_event

        self._keys += 1
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json", "idempotency-key": f"bench-{self._keys}"}
        event = http_event(method, path, token=token, headers=headers, body=payload)
        with self.calls.counting(phase) if phase else _nothing():
            response = function_module(function).handler(event, LambdaContext(function_name=function))
        raw = response.get("body") or ""
        text = base64.b64decode(raw).decode() if response.get("isBase64Encoded") else raw
        if response["statusCode"] >= 300:
            raise RuntimeError(f"{method} {path}: {response['statusCode']} {text[:500]}")
        return json.loads(text)["data"] if text else None

    def send(self, body: dict[str, Any], phase: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "send", "POST", "/api/v1/messages/send", self.token, body, phase=phase
        )
        return result

    def receive(self, subject: str, *, attachment: bool = False) -> dict[str, Any]:
        """A received message in the mailbox (stored directly: inbound is not what is measured)."""
        from datetime import UTC, datetime
        from email.message import EmailMessage
        from email.policy import SMTP

        from mailroom.mail.parse import parse
        from mailroom.services.mail_delivery import Incoming, deliver
        from mailroom.store import mailboxes

        message = EmailMessage(policy=SMTP)
        message["From"] = "Carol <carol@example.net>"
        message["To"] = "alice@bench.example.com"
        message["Subject"] = subject
        message["Message-ID"] = f"<{subject.replace(' ', '-')}@example.net>"
        message.set_content("Hello Alice")
        if attachment:
            message.add_attachment(b"x" * 20_000, maintype="application", subtype="pdf", filename="r.pdf")
        raw = message.as_bytes()
        box = mailboxes.get(self.table, self.org.organization["id"], self.mailbox["id"])
        assert box is not None
        outcome = deliver(
            self.table,
            Incoming(
                org_id=self.org.organization["id"],
                mailbox=box,
                raw=raw,
                parsed=parse(raw),
                folder_key="inbox",
                direction="inbound",
                received_at=datetime.now(UTC),
                source_id=subject,
            ),
        )
        return outcome.message

    def ses_event(self, kind: str, sent: dict[str, Any], recipient: str, phase: str) -> None:
        import copy

        from tests.support.lambda_api import LambdaContext, function_module, load_event

        names = {"delivery": "ses_delivery_delivered.json", "bounce": "ses_delivery_bounced.json"}
        event = copy.deepcopy(load_event(names[kind]))
        mail = event["detail"]["mail"]
        mail["messageId"] = sent["ses_message_id"]
        mail["tags"].update(
            {
                "org_id": [self.org.organization["id"]],
                "mailbox_id": [self.mailbox["id"]],
                "message_id": [sent["message_id"]],
            }
        )
        if kind == "delivery":
            event["detail"]["delivery"]["recipients"] = [recipient]
        else:
            event["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = recipient
        with self.calls.counting(phase):
            function_module("delivery_events").handler(event, LambdaContext(function_name="delivery-events"))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def baseline(world: World, phase: str) -> None:
    """The floor: send, keep the raw bytes, record the message in one transaction."""
    from mailroom.store import aws

    raw = b"From: alice@bench.example.com\r\nTo: bob@example.net\r\nSubject: s\r\n\r\nhi\r\n"
    with world.calls.counting(phase):
        ses_id = aws.client("sesv2").send_email(
            FromEmailAddress="alice@bench.example.com",
            Destination={"ToAddresses": ["bob@example.net"]},
            Content={"Raw": {"Data": raw}},
        )["MessageId"]
        aws.client("s3").put_object(Bucket=BUCKET, Key=f"baseline/{ses_id}", Body=raw)
        aws.dynamodb().transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "BASELINE"}, "SK": {"S": ses_id}}}}
            ]
        )


def scenarios(world: World) -> dict[str, Callable[[str], object]]:
    attachment = base64.b64encode(b"q" * 10_000).decode()
    rich = {
        "to": "bob@example.net",
        "cc": "carol@example.net",
        "bcc": "dave@example.net",
        "subject": "Rich",
        "text": "numbers",
        "html": "<p>numbers</p>",
        "attachments": [
            {"filename": "a.csv", "content_type": "text/csv", "content": attachment},
            {"filename": "b.bin", "content": attachment},
        ],
        "labels": ["finance", "q1"],
        "headers": {"X-Campaign": "bench"},
    }

    def reply(phase: str) -> None:
        original = world.receive(f"Question {phase}")
        path = f"/api/v1/messages/{original['id']}/reply"
        draft = world.request("send", "GET", path, world.token)
        world.send({**draft, "text": "Answer"}, phase=phase)

    def forward(phase: str) -> None:
        original = world.receive(f"Report {phase}", attachment=True)
        draft = world.request("send", "GET", f"/api/v1/messages/{original['id']}/forward", world.token)
        world.send({**draft, "to": "frank@example.net"}, phase=phase)

    def delivery(phase: str) -> None:
        sent = world.send({"to": "bob@example.net", "text": "x"})
        world.ses_event("delivery", sent, "bob@example.net", phase)

    def bounce(phase: str) -> None:
        address = f"gone-{phase.replace('#', '-')}@example.net"
        sent = world.send({"to": address, "text": "x"})
        world.ses_event("bounce", sent, address, phase)

    return {
        "baseline": lambda phase: baseline(world, phase),
        "plain": lambda phase: world.send({"to": "bob@example.net", "subject": "Hi", "text": "hi"}, phase),
        "rich": lambda phase: world.send(rich, phase),
        "reply": reply,
        "alias": lambda phase: world.send(
            {"from": "sales@bench.example.com", "to": "bob@example.net"}, phase
        ),
        "forward": forward,
        "delivery": delivery,
        "bounce": bounce,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.send", description=__doc__.split("\n")[0])
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
        from mailroom.auth import classify

        with calls.counting("authentication") as authentication:
            classify(f"Bearer {world.token}", world.table)
        from mailroom.services import request_meter

        with calls.counting("usage flush") as flush:
            request_meter.flush(world.table)
    print(
        f"AWS API calls per send (moto in-process, {args.rounds} rounds; baseline = {BASELINE_CALLS} calls)"
    )
    print(f"{'scenario':<10} {'calls':>5} {'ratio':>6}  by operation")
    for name, counts in totals.items():
        median = statistics.median(counts)
        spread = "" if len(set(counts)) == 1 else f" (varied: {counts})"
        operations = ", ".join(f"{op} {n}" for op, n in sorted(detail[name].items()))
        print(f"{name:<10} {median:>5.0f} {median / BASELINE_CALLS:>6.2f}  {operations}{spread}")
    plain = statistics.median(totals["plain"])
    verdict = "met" if plain <= TARGET_PLAIN else "NOT met"
    print(f"plain send: {plain:.0f} AWS calls (target <= {TARGET_PLAIN}: {verdict})")
    operations = ", ".join(f"{op} {n}" for op, n in sorted(authentication.items()))
    print(f"token lookup (a token cache miss, not in the totals): {operations}")
    operations = ", ".join(f"{op} {n}" for op, n in sorted(flush.items()))
    print(
        "request-count flush (per organization, at most once a minute per instance; not in the totals): "
        + operations
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
