"""Webhooks through the local stack: events from the API (``:test``, a domain verified against a real
DNS server) and from the event stream, fanned out by the DynamoDB stream poller, delivered by the
SQS poller to receivers on loopback that verify every request with the standardwebhooks library.

The stack runs with a retry schedule of one-second steps, so retries happen within the test.
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest

from mailroom.store import events
from mailroom.store.table import serialize
from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.dns_server import AuthoritativeDns, authoritative_dns, records_from_requirements
from tests.support.webhooks import Received, Receiver, always, fail_first, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webhooks")]
ZONE = "example.net"
LEDGER_EVENTS = 300


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDns]:
    with authoritative_dns(tmp_path_factory.mktemp("nsd"), ZONE) as server:
        server.serve([])
        yield server


@pytest.fixture(scope="module")
def hooks_stack(
    tmp_path_factory: pytest.TempPathFactory, dns_server: AuthoritativeDns
) -> Iterator[LocalStackProcess]:
    with start_stack(
        tmp_path_factory.mktemp("state"),
        MAILROOM_DNS_RESOLVER=dns_server.address,
        MAILROOM_WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1",
    ) as running:
        yield running


@pytest.fixture
def client(hooks_stack: LocalStackProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {hooks_stack.admin_token}"}
    with httpx.Client(base_url=hooks_stack.api_url, headers=headers, timeout=30) as http:
        yield http


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def subscribe(client: httpx.Client, hook: Receiver, *types: str) -> dict[str, Any]:
    response = post(
        client, "/api/v1/webhooks", {"url": hook.url, "event_types": list(types or ["domain.verified"])}
    )
    assert response.status_code == 201, response.text
    webhook = response.json()["data"]
    hook.secret = webhook["secret"]  # from now on the receiver verifies every request
    return webhook


def until(condition: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """Poll with a deadline: the value of ``condition`` once truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(0.1)


def test_deliveries_from_the_api_verify_with_the_reference_library(
    client: httpx.Client, dns_server: AuthoritativeDns
) -> None:
    with receiver() as hook:
        webhook = subscribe(client, hook, "domain.verified")
        sent = post(client, f"/api/v1/webhooks/{webhook['id']}:test")
        assert sent.status_code == 202
        test_event = sent.json()["data"]

        created = post(client, "/api/v1/domains", {"domain": f"hooks.{ZONE}"})
        assert created.status_code == 201, created.text
        domain = created.json()["data"]
        records = client.get(f"/api/v1/domains/{domain['id']}/dns-requirements").json()["data"]["records"]
        dns_server.serve(records_from_requirements(records))
        check = post(client, f"/api/v1/domains/{domain['id']}/dns-recheck")
        assert check.json()["data"]["result"] == "verified", check.text

        received = hook.wait_for(lambda got: len(got) >= 2)
    assert all(r.verified for r in received), [r.headers for r in received if not r.verified]
    by_type = {r.json()["event_type"]: r for r in received}
    assert by_type["webhook.test"].webhook_id == test_event["event_id"]
    verified = by_type["domain.verified"].json()
    assert verified["type"] == "event" and verified["event_id"].startswith("evt_")
    assert verified["data"]["id"] == domain["id"] and verified["data"]["status"] == "verified"
    assert by_type["domain.verified"].webhook_id == verified["event_id"]
    listing = client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json()
    assert listing["meta"]["total"] == 2
    assert {d["state"] for d in listing["data"]} == {"succeeded"}


def test_a_receiver_failing_k_times_gets_the_event_again_with_the_same_id(client: httpx.Client) -> None:
    k = 3
    with receiver(fail_first(k)) as hook:
        webhook = subscribe(client, hook)
        event_id = post(client, f"/api/v1/webhooks/{webhook['id']}:test").json()["data"]["event_id"]
        received = hook.wait_for(lambda got: any(r.status == 204 for r in got))
    assert [r.webhook_id for r in received] == [event_id] * (k + 1)
    assert [r.status for r in received] == [503] * k + [204]
    assert all(r.verified for r in received)
    assert len({r.headers["webhook-timestamp"] for r in received}) > 1  # each attempt is signed anew
    path = f"/api/v1/webhooks/{webhook['id']}/deliveries"
    (delivery,) = until(lambda: [d for d in client.get(path).json()["data"] if d["state"] == "succeeded"])
    assert [a["status_code"] for a in delivery["attempts"]] == [503] * k + [204]
    assert client.get(f"/api/v1/webhooks/{webhook['id']}").json()["data"]["failing_since"] is None


def test_a_receiver_answering_410_disables_its_webhook(client: httpx.Client) -> None:
    with receiver(always(410)) as hook:
        webhook = subscribe(client, hook)
        post(client, f"/api/v1/webhooks/{webhook['id']}:test")
        path = f"/api/v1/webhooks/{webhook['id']}"
        disabled = until(lambda: (w := client.get(path).json()["data"])["enabled"] is False and w)
        assert disabled["disabled_reason"] == "endpoint_gone" and disabled["disabled_at"]
        assert len(hook.received) == 1


def _flaky(n: int, request: Received) -> tuple[int, dict[str, str]]:
    """Deterministic per event: a third fail their first attempt, a ninth their second too."""
    roll = int(hashlib.sha256(request.webhook_id.encode()).hexdigest(), 16)
    if (n == 1 and roll % 3 == 0) or (n == 2 and roll % 9 == 0):
        return 500, {}
    return 204, {}


def test_a_loss_ledger_over_hundreds_of_events_with_a_flaky_receiver(
    client: httpx.Client, hooks_stack: LocalStackProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = client.get("/api/v1/me").json()["data"]["organization"]["id"]
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=hooks_stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-Table"))
    with receiver(_flaky) as hook:
        subscribe(client, hook, "message.received", "message.sent")
        started = time.monotonic()
        # Event items in the organization's stream, as the mail-flow code records them.
        ledger = [
            events.new_event(
                org_id, "message.received" if i % 2 else "message.sent", {"message_id": f"msg_{i}"}
            )
            for i in range(LEDGER_EVENTS)
        ]
        for start in range(0, len(ledger), 25):
            chunk = [{"PutRequest": {"Item": serialize(e)}} for e in ledger[start : start + 25]]
            assert not dynamodb.batch_write_item(RequestItems={table: chunk}).get("UnprocessedItems")
        written = [e["event_id"] for e in ledger]

        def acknowledged() -> set[str]:
            return {r.webhook_id for r in hook.received if r.status == 204}

        until(lambda: acknowledged() >= set(written), timeout=120)
        elapsed = time.monotonic() - started

    received = list(hook.received)
    assert all(r.verified for r in received)
    lost = set(written) - acknowledged()
    acks = Counter(r.webhook_id for r in received if r.status == 204)
    duplicates = sum(count - 1 for count in acks.values() if count > 1)
    failures = sum(1 for r in received if r.status != 204)
    with capsys.disabled():
        sys.stdout.write(
            f"\nloss ledger: {len(written)} events, {len(received)} requests, {failures} answered 500, "
            f"{len(lost)} lost, {duplicates} duplicate deliveries (allowed), {elapsed:.1f} s\n"
        )
    assert not lost
    assert set(acks) == set(written)  # nothing delivered that was not written
    assert failures > LEDGER_EVENTS // 4  # the receiver really was flaky
