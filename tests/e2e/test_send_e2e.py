"""Sending end to end, over HTTP against the local stack: mailbox A sends to mailbox B (SES v2
through moto → local outbound → the receipt rule → the inbound function), B finds it with the
Message-ID of A's Sent copy, B's reply (built from the reply prefill) lands in A's thread; mail for
other domains goes to the outbox; SES's mailbox simulator bounces, which the configuration set's
EventBridge events turn into delivery statuses and a suppression."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess
from tests.support.api_http import client, data, post, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Pair:
    stack: LocalStackProcess
    admin: httpx.Client
    alice: httpx.Client  # message tokens
    bob: httpx.Client
    alice_address: str
    bob_address: str


@pytest.fixture(scope="module")
def pair(stack: LocalStackProcess) -> Iterator[Pair]:
    with client(stack, stack.admin_token) as admin:
        domain = data(
            post(admin, "/api/v1/domains", {"domain": f"send-{uuid.uuid4().hex[:10]}.example.com"}), 201
        )
        tokens, addresses = {}, {}
        for local_part, name in (("alice", "Alice"), ("bob", "Bob")):
            body = {"local_part": local_part, "domain": domain["domain"], "password": PASSWORD, "name": name}
            mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
            scopes = {"name": "e2e send", "scopes": ["messages:read", "messages:write", "messages:send"]}
            tokens[local_part] = data(
                post(admin, f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", scopes), 201
            )["token"]
            addresses[local_part] = mailbox["address"]
        with client(stack, tokens["alice"]) as alice, client(stack, tokens["bob"]) as bob:
            yield Pair(stack, admin, alice, bob, addresses["alice"], addresses["bob"])


def in_inbox(reader: httpx.Client, subject: str) -> dict[str, Any] | None:
    response = reader.get("/api/v1/messages", params={"folder": "INBOX", "subject": subject})
    assert response.status_code == 200, response.text
    found = [m for m in response.json()["data"] if m["subject"] == subject]
    return found[0] if found else None


def delivery(reader: httpx.Client, message_id: str) -> dict[str, Any]:
    return dict(data(reader.get(f"/api/v1/messages/{message_id}"))["delivery"])


def test_a_to_b_and_the_reply_thread_on_both_sides(pair: Pair) -> None:
    subject = f"Lunch {uuid.uuid4().hex[:8]}"
    sent = data(
        post(
            pair.alice,
            "/api/v1/messages/send",
            {"to": pair.bob_address, "subject": subject, "text": "Thursday?"},
        ),
        201,
    )

    received = wait_for("B to receive A's message", lambda: in_inbox(pair.bob, subject))
    assert received["message_id"] == sent["rfc_message_id"]  # the Message-ID SES gave it
    assert received["from"] == f"Alice <{pair.alice_address}>"
    assert data(pair.bob.get(f"/api/v1/messages/{received['id']}"))["text"].strip() == "Thursday?"
    status = wait_for(
        "A's Sent copy to be delivered",
        lambda: d if (d := delivery(pair.alice, sent["message_id"]))["status"] == "delivered" else None,
    )
    assert status["recipients"][pair.bob_address]["status"] == "delivered"

    prefill = pair.bob.get(f"/api/v1/messages/{received['id']}/reply")
    assert prefill.status_code == 200, prefill.text
    draft = prefill.json()["data"]
    assert draft["to"] == [f"Alice <{pair.alice_address}>"] and draft["in_reply_to"] == sent["rfc_message_id"]
    reply = data(post(pair.bob, "/api/v1/messages/send", {**draft, "text": "Yes!\n" + draft["text"]}), 201)
    assert reply["thread_id"] == received["thread_id"]  # B's Sent copy joins B's thread

    answer = wait_for("A to receive B's reply", lambda: in_inbox(pair.alice, f"Re: {subject}"))
    assert answer["thread_id"] == sent["thread_id"]  # ... and A's copy of it joins A's
    assert answer["in_reply_to"] == sent["rfc_message_id"]
    thread = pair.alice.get(
        "/api/v1/messages", params={"thread": sent["thread_id"], "order": "oldest"}
    ).json()
    assert [m["id"] for m in thread["data"]] == [sent["message_id"], answer["id"]]


def test_other_domains_go_to_the_outbox_and_simulated_bounces_suppress(pair: Pair) -> None:
    outside, bouncing = "someone@elsewhere.example.org", "bounce@simulator.amazonses.com"
    body = {"to": outside, "bcc": bouncing, "subject": "Out there", "text": "hello world"}
    sent = data(post(pair.alice, "/api/v1/messages/send", body), 201)

    outbox = pair.stack.state_dir / "outbox" / f"{sent['ses_message_id']}.eml"
    written = wait_for("the outbox file", lambda: outbox.read_bytes() if outbox.exists() else None)
    assert f"Message-ID: {sent['rfc_message_id']}".encode() in written
    assert f"X-Mailroom-Outbox-To: {outside}".encode() in written and b"hello world" in written
    assert bouncing.encode() not in written  # a Bcc recipient is never in the message itself

    settled = wait_for(
        "both recipients' results",
        lambda: d if (d := delivery(pair.alice, sent["message_id"]))["status"] != "sending" else None,
    )
    assert settled["status"] == "partially_delivered"
    assert settled["recipients"][outside]["status"] == "delivered"
    assert settled["recipients"][bouncing]["status"] == "bounced"
    suppressed = data(pair.admin.get(f"/api/v1/suppressions/{bouncing}"))
    assert (suppressed["reason"], suppressed["source"]["message_id"]) == ("hard_bounce", sent["message_id"])

    refused = post(pair.alice, "/api/v1/messages/send", {"to": bouncing, "text": "again?"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "recipient_suppressed"
    assert pair.admin.delete(f"/api/v1/suppressions/{bouncing}").status_code == 204
    data(
        post(pair.alice, "/api/v1/messages/send", {"to": "success@simulator.amazonses.com", "text": "ok"}),
        201,
    )
