"""Compose end to end, over HTTP against the local stack: a draft created, edited and sent arrives in
another hosted mailbox and leaves Drafts; two racing sends of one draft deliver it once; a reply
draft threads on both sides; an identity's signature arrives once; templates render, and refuse a
missing variable and Python internals."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
    alice: httpx.Client  # message tokens
    bob: httpx.Client
    alice_address: str
    bob_address: str


@pytest.fixture(scope="module")
def pair(stack: LocalStackProcess) -> Iterator[Pair]:
    with client(stack, stack.admin_token) as admin:
        domain = data(
            post(admin, "/api/v1/domains", {"domain": f"compose-{uuid.uuid4().hex[:10]}.example.com"}), 201
        )
        tokens, addresses = {}, {}
        for local_part, name in (("alice", "Alice"), ("bob", "Bob")):
            body = {"local_part": local_part, "domain": domain["domain"], "password": PASSWORD, "name": name}
            mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
            scopes = {"name": "e2e compose", "scopes": ["messages:read", "messages:write", "messages:send"]}
            tokens[local_part] = data(
                post(admin, f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", scopes), 201
            )["token"]
            addresses[local_part] = mailbox["address"]
    with client(stack, tokens["alice"]) as alice, client(stack, tokens["bob"]) as bob:
        yield Pair(alice, bob, addresses["alice"], addresses["bob"])


def received(reader: httpx.Client, subject: str) -> list[dict[str, Any]]:
    response = reader.get("/api/v1/messages", params={"folder": "INBOX", "subject": subject})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["data"] if m["subject"] == subject]


def arrived(reader: httpx.Client, subject: str) -> dict[str, Any]:
    return wait_for(
        f"{subject!r} to arrive", lambda: ((found := received(reader, subject)) and found[0]) or None
    )


def drafts(reader: httpx.Client) -> list[str]:
    return [m["id"] for m in reader.get("/api/v1/messages", params={"folder": "drafts"}).json()["data"]]


def test_a_draft_is_edited_then_sent_and_arrives_once(pair: Pair) -> None:
    subject = f"Plan {uuid.uuid4().hex[:8]}"
    draft = data(post(pair.alice, "/api/v1/messages/drafts", {"subject": "wip", "text": "first"}), 201)
    assert draft["id"] in drafts(pair.alice)
    edited = data(
        post(
            pair.alice,
            f"/api/v1/messages/drafts/{draft['id']}",
            {"to": pair.bob_address, "subject": subject, "text": "final words"},
            method="PUT",
        )
    )
    assert edited["id"] == draft["id"]
    sent = data(post(pair.alice, "/api/v1/messages/send", {"draft_uid": draft["id"]}), 201)
    message = arrived(pair.bob, subject)
    assert message["message_id"] == sent["rfc_message_id"]
    assert data(pair.bob.get(f"/api/v1/messages/{message['id']}"))["text"].strip() == "final words"
    assert draft["id"] not in drafts(pair.alice)
    again = post(pair.alice, "/api/v1/messages/send", {"draft_uid": draft["id"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "draft_already_sent"


def test_racing_sends_of_one_draft_deliver_it_once(pair: Pair) -> None:
    subject = f"Race {uuid.uuid4().hex[:8]}"
    draft = data(
        post(pair.alice, "/api/v1/messages/drafts", {"to": pair.bob_address, "subject": subject}), 201
    )
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: post(pair.alice, "/api/v1/messages/send", {"draft_uid": draft["id"]}), range(4)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    arrived(pair.bob, subject)
    time.sleep(1.0)  # a second copy would be delivered by now: the first one was
    assert len(received(pair.bob, subject)) == 1


def test_a_reply_draft_threads_and_the_identity_signs_once(pair: Pair) -> None:
    subject = f"Lunch {uuid.uuid4().hex[:8]}"
    sent = data(
        post(pair.alice, "/api/v1/messages/send", {"to": pair.bob_address, "subject": subject, "text": "?"}),
        201,
    )
    original = arrived(pair.bob, subject)
    signer = data(
        post(
            pair.bob,
            "/api/v1/messages/identities",
            {"address": pair.bob_address, "name": "Bob B", "signature_text": "Bob\nCEO"},
        ),
        201,
    )
    draft = data(
        post(
            pair.bob,
            "/api/v1/messages/drafts",
            {"in_reply_to": original["id"], "text": "Yes!", "identity_id": signer["id"]},
        ),
        201,
    )
    assert draft["subject"] == f"Re: {subject}" and draft["thread_id"] == original["thread_id"]
    data(post(pair.bob, "/api/v1/messages/send", {"draft_uid": draft["id"]}), 201)
    answer = arrived(pair.alice, f"Re: {subject}")
    assert answer["thread_id"] == sent["thread_id"] and answer["from"] == f"Bob B <{pair.bob_address}>"
    text = data(pair.alice.get(f"/api/v1/messages/{answer['id']}"))["text"].replace("\r\n", "\n")
    assert text.count("Bob\nCEO") == 1 and text.startswith("Yes!")


def test_templates_render_and_refuse_what_they_must(pair: Pair) -> None:
    subject = f"Welcome {uuid.uuid4().hex[:8]}"
    template = data(
        post(
            pair.alice,
            "/api/v1/messages/templates",
            {"name": "W", "subject": subject + " {{ name }}", "text": "Hi {{ name }}"},
        ),
        201,
    )
    missing = post(
        pair.alice,
        "/api/v1/messages/send",
        {"to": pair.bob_address, "template_id": template["id"], "variables": {}},
    )
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "template_variable_missing"
    assert "name" in missing.json()["error"]["message"]
    body = {"to": pair.bob_address, "template_id": template["id"], "variables": {"name": "Zoë"}}
    data(post(pair.alice, "/api/v1/messages/send", body), 201)
    message = arrived(pair.bob, f"{subject} Zoë")
    assert data(pair.bob.get(f"/api/v1/messages/{message['id']}"))["text"].strip() == "Hi Zoë"

    sneaky = data(
        post(pair.alice, "/api/v1/messages/templates", {"name": "S", "text": "{{ ''.__class__ }}"}), 201
    )
    refused = post(pair.alice, "/api/v1/messages/send", {"to": pair.bob_address, "template_id": sneaky["id"]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "template_refused"
