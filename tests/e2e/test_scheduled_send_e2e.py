"""Scheduled send end to end, over HTTP against its own local stack (the minimum lead lowered to 2
seconds): a scheduled message arrives in another hosted mailbox at its time, once; a cancelled one
never does; one that came due while the stack was down goes out after the restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.api_http import data, post, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("scheduled-send")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Pair:
    stack: LocalStackProcess
    alice: httpx.Client  # message tokens
    bob: httpx.Client
    bob_address: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    state: Path = tmp_path_factory.mktemp("scheduled-send-state")
    with start_stack(state, MAILROOM_SCHEDULE_MIN_LEAD_SECONDS="2") as stack:
        with httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
        ) as admin:
            domain = data(
                post(admin, "/api/v1/domains", {"domain": f"later-{uuid.uuid4().hex[:8]}.example.com"}), 201
            )
            tokens, addresses = {}, {}
            for local_part in ("alice", "bob"):
                body = {"local_part": local_part, "domain": domain["domain"], "password": PASSWORD}
                mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
                scopes = {"name": "e2e", "scopes": ["messages:read", "messages:write", "messages:send"]}
                tokens[local_part] = data(
                    post(admin, f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", scopes), 201
                )["token"]
                addresses[local_part] = mailbox["address"]

        def client(token: str) -> httpx.Client:
            return httpx.Client(
                base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )

        with client(tokens["alice"]) as alice, client(tokens["bob"]) as bob:
            yield Pair(stack, alice, bob, addresses["bob"])


def received(reader: httpx.Client, subject: str) -> list[dict[str, Any]]:
    response = reader.get("/api/v1/messages", params={"folder": "INBOX", "subject": subject})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["data"] if m["subject"] == subject]


def schedule(pair: Pair, subject: str, seconds: float) -> tuple[dict[str, Any], datetime]:
    send_at = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)
    body = {"to": pair.bob_address, "subject": subject, "text": "later", "send_at": send_at.isoformat()}
    return data(post(pair.alice, "/api/v1/messages/scheduled", body), 201), send_at


def status(pair: Pair, scheduled_id: str) -> str:
    listed = data(pair.alice.get("/api/v1/messages/scheduled"))
    return str(next(s["status"] for s in listed if s["id"] == scheduled_id))


def test_a_scheduled_send_arrives_at_its_time_once_and_a_cancelled_one_never(pair: Pair) -> None:
    kept_subject, cancelled_subject = f"Kept {uuid.uuid4().hex[:8]}", f"Dropped {uuid.uuid4().hex[:8]}"
    kept, send_at = schedule(pair, kept_subject, 3)
    dropped, _ = schedule(pair, cancelled_subject, 3)
    assert data(pair.alice.delete(f"/api/v1/messages/scheduled/{dropped['id']}"))["status"] == "cancelled"
    assert received(pair.bob, kept_subject) == []  # not before its time

    message = wait_for(
        "the scheduled message", lambda: found[0] if (found := received(pair.bob, kept_subject)) else None
    )
    arrived = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00"))
    assert arrived >= send_at - timedelta(seconds=1)
    wait_for("the send to be recorded", lambda: status(pair, kept["id"]) == "sent" or None)
    time.sleep(2)  # a second firing, or the cancelled one, would have arrived by now
    assert len(received(pair.bob, kept_subject)) == 1
    assert received(pair.bob, cancelled_subject) == [] and status(pair, dropped["id"]) == "cancelled"


def test_a_send_that_came_due_while_the_stack_was_down_goes_out_after_the_restart(pair: Pair) -> None:
    subject = f"Overnight {uuid.uuid4().hex[:8]}"
    scheduled, send_at = schedule(pair, subject, 4)
    code = pair.stack.stop()
    assert code == 0, pair.stack.logs()
    while datetime.now(UTC) < send_at + timedelta(seconds=1):  # the stack is down at the time
        time.sleep(0.2)
    pair.stack.start()
    wait_for("the overdue message", lambda: received(pair.bob, subject) or None, pair.stack)
    wait_for("the send to be recorded", lambda: status(pair, scheduled["id"]) == "sent" or None)
