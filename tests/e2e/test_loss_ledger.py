"""The loss ledger: inbound mail, sends, webhooks and an IMAP migration through one local stack whose
functions see 10% of their DynamoDB, S3, SES and SQS call attempts fail (``MAILROOM_FAULTS``,
seeded: server errors and throttling, as botocore responses; local/faults.py), a tenth of those
faults lasting through every botocore retry so that the code meets them too.

Everyone retries the way they would against AWS: botocore retries each call, Lambda retries a
failed asynchronous invocation (the SES receipt rule's, local/async_invoke.py), event source
mappings retry their batches, Step Functions retries tasks, and the API client retries a 5xx or 429
with the same ``Idempotency-Key``. The webhook receiver verifies every request with the
``standardwebhooks`` library and processes each ``webhook-id`` once.

At the end: every message accepted over SMTP is stored exactly once, every send went out exactly
once (one SES message, one outbox file or one copy in the recipient's inbox) with exactly one Sent
copy, every event of the subscribed types was delivered, the migration imported exactly what the
source holds, and every failure a client saw was a retryable 5xx or 429 in the v1 envelope.
"""

from __future__ import annotations

import email
import hashlib
import json
import smtplib
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, TypeVar

import boto3
import httpx
import pytest

from mailroom.store import keys
from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.dovecot import DovecotServer
from tests.support.webhooks import Received, Receiver, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ledger")]
FAULTS = "dynamodb=0.1,s3=0.1,sesv2=0.1,sqs=0.1,persist=0.1,seed=201"
FAULTED_SERVICES = ("dynamodb", "s3", "sesv2", "sqs")
PASSWORD = "Correct-Horse-42"
INBOUND = 24  # messages over SMTP
SENDS = 16  # through the API: half to another mailbox of the stack, half to the outbox
MIGRATED = {"INBOX": 16, "Archive": 8}
RETRYABLE_STATUSES = {429, 502, 503, 504}
MAX_TRIES = 10
CLIENTS = 6  # SMTP and API clients at once
DEADLINE = 90.0  # for everything asynchronous to settle
T = TypeVar("T")


# ----------------------------------------------------------------------------- the API client


@dataclass
class Failure:
    method: str
    path: str
    status: int
    body: str
    retry_after: str | None


@dataclass
class Api:
    """An API client that retries what a client should retry (5xx, 429), with the same
    ``Idempotency-Key``, honouring ``Retry-After``; every failure it saw is kept for the ledger."""

    http: httpx.Client
    failures: list[Failure]
    requests: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self, method: str, path: str, *, body: Any = None, key: str | None = None, **params: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())} if method in ("POST", "PUT") else {}
        for _ in range(MAX_TRIES):
            response = self.http.request(method, path, json=body, headers=headers, params=params or None)
            failed = response.status_code >= 500 or response.status_code == 429
            with self._lock:  # clients run on several threads
                self.requests[method] += 1
                if failed:
                    self.failures.append(
                        Failure(
                            method,
                            path,
                            response.status_code,
                            response.text,
                            response.headers.get("retry-after"),
                        )
                    )
            if not failed:
                return response
            time.sleep(min(2.0, float(response.headers.get("retry-after") or 0.5)))
        return response

    def data(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()["data"]

    def every(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following ``links.next``."""
        found: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] = {**params, "per_page": 100}
        while url:
            response = self.call("GET", url, **query)
            assert response.status_code == 200, response.text
            found += response.json()["data"]
            url, query = response.json()["links"]["next"], {}
        return found


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = DEADLINE) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


# ----------------------------------------------------------------------------- the world


@dataclass
class World:
    stack: LocalStackProcess
    admin: Api
    alice: Api  # message tokens
    bob: Api
    migrated: Api
    alice_address: str
    bob_address: str
    migration_mailbox: str
    org_id: str
    hook: Receiver
    webhook: dict[str, Any]
    dovecot: DovecotServer
    source_user: str
    source_password: str
    failures: list[Failure]


def token_client(stack: LocalStackProcess, token: str, failures: list[Failure]) -> Api:
    http = httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        follow_redirects=True,
    )
    return Api(http, failures)


def first_attempt_fails_for_a_third(n: int, request: Received) -> tuple[int, dict[str, str]]:
    """The receiver is down for the first attempt of a third of the events (by webhook-id), so the
    delivery function's retries run under faults too."""
    roll = int(hashlib.sha256(request.webhook_id.encode()).hexdigest(), 16)
    return (503, {}) if n == 1 and roll % 3 == 0 else (204, {})


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer) -> Iterator[World]:
    user, password = dovecot.new_user("ledger")
    for folder, count in MIGRATED.items():
        dovecot.seed(
            user,
            folder,
            [
                f"From: Old Friend <old@past.example>\r\nTo: {user}\r\nSubject: {folder} {i}\r\n"
                f"Message-ID: <{folder.lower()}-{i}@past.example>\r\n\r\nKept since then, {i}.\r\n".encode()
                for i in range(count)
            ],
        )
    env = {
        "MAILROOM_FAULTS": FAULTS,
        "MAILROOM_SNAPSHOT_INTERVAL": "0",  # state is not what this test is about: saved once, on exit
        "MAILROOM_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1,1,1,1",
        "MAILROOM_IMAP_CA_FILE": str(dovecot.ca_file),
        "MAILROOM_IMAP_TIMEOUT_SECONDS": "10",
        "MAILROOM_MIGRATION_BATCH_SIZE": "10",
        "MAILROOM_MIGRATION_WINDOW_BATCHES": "2",
        "MAILROOM_MIGRATION_WINDOWS_PER_EXECUTION": "2",
        "MAILROOM_MIGRATION_MAP_CONCURRENCY": "2",
    }
    failures: list[Failure] = []
    with (
        start_stack(tmp_path_factory.mktemp("ledger-state"), stop_timeout=60, **env) as stack,
        receiver(first_attempt_fails_for_a_third) as hook,
    ):
        admin = token_client(stack, stack.admin_token, failures)
        org_id = admin.data("GET", "/api/v1/me")["organization"]["id"]
        domain = f"ledger-{uuid.uuid4().hex[:8]}.example.com"
        admin.data("POST", "/api/v1/domains", 201, body={"domain": domain})
        mailboxes, tokens = {}, {}
        for local_part in ("alice", "bob", "migrated"):
            body = {
                "local_part": local_part,
                "domain": domain,
                "password": PASSWORD,
                "name": local_part.title(),
            }
            mailboxes[local_part] = admin.data("POST", "/api/v1/mailboxes", 201, body=body)
            scopes = {"name": "ledger", "scopes": ["messages:read", "messages:write", "messages:send"]}
            tokens[local_part] = admin.data(
                "POST", f"/api/v1/mailboxes/{mailboxes[local_part]['id']}/message-tokens", 201, body=scopes
            )["token"]
        webhook = admin.data(
            "POST",
            "/api/v1/webhooks",
            201,
            body={"url": hook.url, "event_types": ["message.received", "message.sent"]},
        )
        hook.secret = webhook["secret"]  # from now on every request is verified
        yield World(
            stack=stack,
            admin=admin,
            alice=token_client(stack, tokens["alice"], failures),
            bob=token_client(stack, tokens["bob"], failures),
            migrated=token_client(stack, tokens["migrated"], failures),
            alice_address=mailboxes["alice"]["address"],
            bob_address=mailboxes["bob"]["address"],
            migration_mailbox=mailboxes["migrated"]["id"],
            org_id=org_id,
            hook=hook,
            webhook=webhook,
            dovecot=dovecot,
            source_user=user,
            source_password=password,
            failures=failures,
        )


# ----------------------------------------------------------------------------- the ledger


def smtp_send(world: World, raw: bytes, recipient: str) -> None:
    """Deliver over SMTP as a sending MTA does: a 4xx answer is tried again."""
    for _ in range(MAX_TRIES):
        with smtplib.SMTP("127.0.0.1", world.stack.smtp_port, timeout=30) as smtp:
            smtp.ehlo("mx.sender.example.net")
            smtp.mail("ann@sender.example.net")
            code, reply = smtp.rcpt(recipient)
            assert code == 250 or 400 <= code < 500, reply
            if code == 250:
                code, reply = smtp.data(raw)
            if code == 250:
                return
            assert 400 <= code < 500, reply
        time.sleep(0.5)
    pytest.fail(f"SMTP kept refusing {recipient}")


def inbound_message(world: World, i: int, run: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ann Example <ann@sender.example.net>"
    message["To"] = world.bob_address
    message["Subject"] = f"ledger-in {run} {i}"
    message["Message-ID"] = f"<in-{run}-{i}@sender.example.net>"
    message.set_content(f"Inbound number {i}.\n")
    return bytes(message)


def subjects(messages: list[dict[str, Any]], prefix: str) -> Counter[str]:
    return Counter(m["subject"] for m in messages if str(m["subject"]).startswith(prefix))


def outbox_subjects(stack: LocalStackProcess, prefix: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in (stack.state_dir / "outbox").glob("*.eml"):
        subject = str(email.message_from_bytes(path.read_bytes())["Subject"] or "")
        if subject.startswith(prefix):
            found[subject] += 1
    return found


def emulator(world: World, service: str) -> Any:
    """A client of the emulated account itself (the test's view, never faulted)."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=world.stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def parked(world: World) -> dict[str, int]:
    """Messages waiting in the stack's dead-letter queues (inbound events whose retries ran out,
    stream batches the fan-out gave up on, webhook deliveries that exhausted theirs)."""
    sqs = emulator(world, "sqs")
    counts = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        if "DeadLetter" in url:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            counts[url.rpartition("/")[2]] = sum(int(v) for v in attributes.values())
    return counts


def event_stream(world: World) -> list[dict[str, Any]]:
    """The organization's events as stored (read from the emulator directly, not through the stack)."""
    dynamodb = emulator(world, "dynamodb")
    table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-Table"))
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.events_pk(world.org_id)}},
    }
    while True:
        page = dynamodb.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [
        {
            "event_id": i["event_id"]["S"],
            "event_type": i["event_type"]["S"],
            "created_at": i["created_at"]["S"],
            "message_id": i["data"]["M"].get("id", i["data"]["M"].get("message_id", {})).get("S"),
        }
        for i in items
    ]


def test_nothing_is_lost_or_duplicated_under_injected_faults(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        laps[name] = time.monotonic() - started - sum(laps.values())

    run = uuid.uuid4().hex[:6]

    # The migration runs in the background (Step Functions) while mail comes and goes.
    source = {
        "source_host": "127.0.0.1",
        "source_port": world.dovecot.ssl_port,
        "source_security": "ssl",
        "source_email": world.source_user,
        "source_password": world.source_password,
    }
    job = world.admin.data(
        "POST",
        "/api/v1/migrations",
        201,
        body={
            "mailbox_id": world.migration_mailbox,
            "provider": "generic_imap",
            "target_password": PASSWORD,
            "skip_duplicates": False,
            **source,
        },
    )

    def send(i: int) -> tuple[str, tuple[bool, Any]]:
        internal = i % 2 == 0
        subject = f"ledger-out {run} {i}"
        recipient = world.bob_address if internal else f"carol{i}@elsewhere.example.org"
        sent = world.alice.data(
            "POST",
            "/api/v1/messages/send",
            201,
            body={"to": recipient, "subject": subject, "text": f"Send number {i}."},
            key=f"ledger-send-{run}-{i}",
        )
        return subject, (internal, sent)

    # Mail arrives and leaves a few at a time, as it would.
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        arriving = [
            pool.submit(smtp_send, world, inbound_message(world, i, run), world.bob_address)
            for i in range(INBOUND)
        ]
        leaving = [pool.submit(send, i) for i in range(SENDS)]
        for arrival in arriving:
            arrival.result()
        lap("smtp")
        sends = dict(departure.result() for departure in leaving)

    lap("sends")
    # --- inbound: every message accepted over SMTP stored exactly once, and every internal send too
    inbound_subjects = {f"ledger-in {run} {i}" for i in range(INBOUND)}
    internal_subjects = {s for s, (internal, _) in sends.items() if internal}

    def bob_has_everything() -> Counter[str] | None:
        got = subjects(world.bob.every("/api/v1/messages", folder="INBOX"), "ledger-")
        return got if set(got) >= inbound_subjects | internal_subjects else None

    bob = wait_for("every message in Bob's inbox", bob_has_everything)
    assert {s: n for s, n in bob.items() if n != 1} == {}, "stored more than once"
    assert set(bob) == inbound_subjects | internal_subjects

    lap("inbound stored")
    # --- sends: one Sent copy each; each went out once (the outbox, or Bob's inbox above)
    sent_copies = subjects(world.alice.every("/api/v1/messages", folder="Sent"), "ledger-out")
    assert sent_copies == Counter(set(sends)), "Sent copies"
    external = {s for s, (internal, _) in sends.items() if not internal}
    outbox = wait_for(
        "every external send in the outbox",
        lambda: got if set(got := outbox_subjects(world.stack, f"ledger-out {run}")) >= external else None,
    )
    assert outbox == Counter(external), "sent through SES more than once"

    lap("sends checked")

    # --- the migration: exactly what the source holds, folder by folder
    def finished() -> dict[str, Any] | None:
        view = world.admin.data("GET", f"/api/v1/migrations/{job['id']}")
        return view if view["poll_hint_seconds"] is None else None

    done = wait_for("the migration to finish", finished)
    total = sum(MIGRATED.values())
    assert done["status"] == "completed", done
    assert (done["total_messages"], done["imported_messages"], done["failed_messages"]) == (total, total, 0)
    folders = {
        f["path"]: f["total"] for f in world.migrated.data("GET", "/api/v1/messages/folders") if f["total"]
    }
    assert folders == MIGRATED
    for folder, count in MIGRATED.items():
        assert subjects(world.migrated.every("/api/v1/messages", folder=folder), folder) == Counter(
            f"{folder} {i}" for i in range(count)
        )

    lap("migration")
    # --- webhooks: one event per stored message, each delivered and verified, processed once
    events = [
        e
        for e in event_stream(world)
        if e["event_type"] in ("message.received", "message.sent")
        and e["created_at"] >= world.webhook["created_at"]
    ]
    per_message = Counter((e["event_type"], e["message_id"]) for e in events)
    assert {k: n for k, n in per_message.items() if n != 1} == {}, "an event recorded twice"
    received = Counter(e["event_type"] for e in events)
    assert received["message.sent"] == SENDS
    assert received["message.received"] == INBOUND + len(internal_subjects)  # imports record none
    expected = {e["event_id"] for e in events}

    def delivered() -> set[str] | None:
        ok = {r.webhook_id for r in world.hook.received if r.verified and r.status == 204}
        return ok if ok >= expected else None

    wait_for("every event at the webhook receiver", delivered)
    requests = list(world.hook.received)
    assert all(r.verified for r in requests), "a delivery failed signature verification"
    processed: dict[str, Any] = {}
    for request in requests:
        if request.status == 204:  # accepted: processed once per webhook-id, repeats ignored
            processed.setdefault(request.webhook_id, request.json())
    assert set(processed) == expected
    assert {p["event_id"] for p in processed.values()} == expected
    refused = sum(1 for r in requests if r.status != 204)
    assert refused > 0  # the receiver's outage was real: those events were delivered again
    duplicates = len(requests) - refused - len(processed)

    lap("webhooks")
    # --- nothing parked for an operator: no dead-letter queue holds anything
    dead_letters = parked(world)
    assert len(dead_letters) >= 3 and set(dead_letters.values()) == {0}, dead_letters
    # --- every failure a client saw: retryable, 5xx or 429, in the v1 envelope
    bad = []
    for failure in world.failures:
        envelope = json.loads(failure.body).get("error") if failure.body.startswith("{") else None
        if (
            failure.status not in RETRYABLE_STATUSES
            or not isinstance(envelope, dict)
            or envelope.get("retryable") is not True
            or not envelope.get("request_id")
        ):
            bad.append(failure)
    assert bad == [], "client-visible failures that are not retryable 5xx/429 in the envelope"
    assert all(f.retry_after for f in world.failures if f.status in (429, 503)), "503/429 without Retry-After"
    elapsed = time.monotonic() - started

    # --- the faults really happened, and the figures
    code = world.stack.stop()
    assert code == 0, world.stack.logs()
    injected = json.loads((world.stack.state_dir / "faults.json").read_text())["services"]
    requests_made = sum(a.requests.total() for a in (world.admin, world.alice, world.bob, world.migrated))
    with capsys.disabled():
        lines = [
            f"\nloss ledger ({FAULTS}), {elapsed:.1f} s: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in laps.items()),
            f"  inbound {INBOUND}, sends {SENDS}, migrated {total}, events {len(expected)}: "
            "0 lost, 0 duplicated",
            f"  webhook requests {len(requests)}: {refused} refused by the receiver and delivered again, "
            f"{duplicates} accepted twice (deduplicated by webhook-id)",
            f"  API requests {requests_made}, client-visible failures {len(world.failures)}: "
            + ", ".join(f"{s} x{n}" for s, n in sorted(Counter(f.status for f in world.failures).items())),
        ]
        for service, s in injected.items():
            lines.append(
                f"  {service}: {s['injected_total']} faults in {s['attempts']} attempts "
                f"({s['retried_attempts']} retries; {s['persisted']} persisted, {s['surfaced']} reached "
                f"the code) {s['injected']}"
            )
        sys.stdout.write("\n".join(lines) + "\n")
    for service in FAULTED_SERVICES:
        assert injected[service]["injected_total"] > 0, (service, injected[service])
    assert sum(s["surfaced"] for s in injected.values()) > 0  # some outlasted botocore's retries
    assert any("fault injection:" in line for line in world.stack.output)  # the stack's own summary
