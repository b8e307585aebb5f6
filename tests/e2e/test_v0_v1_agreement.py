"""The v0 (agentmail) and v1 views of the same inbox and the same message agree.

v0 is driven with ``tests.support.agentmail_client`` and an ``inai_`` key; v1 with the stack's
admin token (mailboxes) and a message token of each mailbox (messages), as README.md documents.
An inbox id of v0 is the id of a v1 mailbox, and a v0 message id the id of a v1 message (both
pages use ``msg_``/``thr_`` ids). Changes made through either side are seen by the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess
from tests.support import agentmail_examples as ex
from tests.support.agentmail_checks import assert_matches_example, body, parse_timestamp, wait_for
from tests.support.agentmail_client import AgentMailClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Sides:
    stack: LocalStackProcess
    v0: AgentMailClient
    v1: httpx.Client  # admin (ops) token
    tag: str
    made: list[str] = field(default_factory=list)  # inbox ids to delete at the end

    def message_reader(self, mailbox_id: str) -> httpx.Client:
        scopes = {"name": "agreement", "scopes": ["messages:read", "messages:write"]}
        token = v1_data(v1_post(self.v1, f"/api/v1/mailboxes/{mailbox_id}/message-tokens", scopes), 201)[
            "token"
        ]
        return httpx.Client(
            base_url=self.stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


def v1_post(client: httpx.Client, path: str, payload: Any) -> httpx.Response:
    return client.post(path, json=payload, headers={"Idempotency-Key": str(uuid.uuid4())})


def v1_data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.url.path}: {response.status_code} {response.text[:400]}"
    )
    return response.json()["data"]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def people(value: Any) -> list[tuple[str, str]]:
    """(display name, lower-case address) of a "Name <a@b>" string, a list of them, or {name, address}."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    pairs = []
    for item in values:
        if isinstance(item, dict):
            pairs.append(
                (str(item.get("name") or ""), str(item.get("address") or item.get("email") or "").lower())
            )
        else:
            pairs += [(name, address.lower()) for name, address in getaddresses([str(item)])]
    return pairs


@pytest.fixture(scope="module")
def sides(stack: LocalStackProcess) -> Iterator[Sides]:
    v0_url = f"{stack.api_url}/api/v0"
    with AgentMailClient(v0_url, stack.admin_token) as bootstrap:
        created = body(bootstrap.create_api_key(f"agreement-{uuid.uuid4().hex[:6]}"), 200, 201)
    with (
        AgentMailClient(v0_url, created["key"]) as v0,
        httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
        ) as v1,
    ):
        sides = Sides(stack, v0, v1, uuid.uuid4().hex[:8])
        yield sides
        for inbox_id in sides.made:  # the organization is shared with other modules: tidy up
            v0.delete_inbox(inbox_id)


def new_inbox(sides: Sides, suffix: str, display_name: str) -> dict[str, Any]:
    inbox = body(sides.v0.create_inbox(f"agree-{sides.tag}-{suffix}", display_name=display_name), 200, 201)
    assert_matches_example(inbox, ex.INBOX_CREATED, path="POST /api/v0/inboxes")
    sides.made.append(inbox["inbox_id"])
    return dict(inbox)


def assert_inbox_is_mailbox(inbox: dict[str, Any], mailbox: dict[str, Any]) -> None:
    pairs = {
        "inbox_id / id": (inbox["inbox_id"], mailbox["id"]),
        "email_address / address": (inbox["email_address"], mailbox["address"]),
        "username / local_part": (inbox["username"], mailbox["local_part"]),
        "domain / domain": (inbox["domain"], mailbox["domain"]),
        "display_name / name": (inbox["display_name"], mailbox["name"]),
        "created_at": (parse_timestamp(inbox["created_at"]), instant(mailbox["created_at"])),
    }
    differ = {name: values for name, values in pairs.items() if values[0] != values[1]}
    assert not differ, f"v0 inbox and v1 mailbox disagree (v0, v1): {differ}"


def test_an_inbox_is_the_same_mailbox_both_ways(sides: Sides) -> None:
    inbox = new_inbox(sides, "one", "Agree One")
    mailbox = v1_data(sides.v1.get(f"/api/v1/mailboxes/{inbox['inbox_id']}"))
    assert_inbox_is_mailbox(inbox, mailbox)

    renamed = body(sides.v0.update_inbox(inbox["inbox_id"], display_name="Renamed In V0"), 200)
    assert v1_data(sides.v1.get(f"/api/v1/mailboxes/{inbox['inbox_id']}"))["name"] == "Renamed In V0"
    v1_data(sides.v1.patch(f"/api/v1/mailboxes/{inbox['inbox_id']}", json={"name": "Renamed In V1"}))
    again = body(sides.v0.get_inbox(inbox["inbox_id"]), 200)
    assert again["display_name"] == "Renamed In V1", again
    assert parse_timestamp(again["updated_at"]) >= parse_timestamp(renamed["updated_at"])


def test_a_v1_mailbox_is_a_v0_inbox(sides: Sides) -> None:
    domain = v1_data(v1_post(sides.v1, "/api/v1/domains", {"domain": f"agree-{sides.tag}.example.com"}), 201)
    payload = {
        "local_part": "made-in-v1",
        "domain": domain["domain"],
        "password": PASSWORD,
        "name": "Made In V1",
    }
    mailbox = v1_data(v1_post(sides.v1, "/api/v1/mailboxes", payload), 201)
    inbox = body(sides.v0.get_inbox(mailbox["id"]), 200)
    assert_matches_example(inbox, ex.INBOX, path="GET /api/v0/inboxes/:inboxId (a v1 mailbox)")
    assert_inbox_is_mailbox(inbox, mailbox)
    listed: list[dict[str, Any]] = []
    for number in range(1, 50):
        page = body(sides.v0.list_inboxes(page=number, page_size=100), 200)
        listed += page["data"]
        if len(page["data"]) < 100:
            break
    assert [i for i in listed if i["inbox_id"] == mailbox["id"]] == [inbox], "GET /api/v0/inboxes lacks it"

    # Deleted through v0, gone from v1; then its domain, which v0 knows by name.
    assert sides.v0.delete_inbox(mailbox["id"]).status_code == 204
    assert sides.v1.get(f"/api/v1/mailboxes/{mailbox['id']}").status_code == 404
    assert body(sides.v0.get_domain(domain["domain"]), 200)["domain_id"] == domain["domain"]
    assert sides.v0.delete_domain(domain["domain"]).status_code == 204
    assert sides.v1.get(f"/api/v1/domains/{domain['id']}").status_code == 404


def compare_message(v0: dict[str, Any], v1: dict[str, Any], what: str) -> None:
    received_at = v1.get("received_at")
    date = v1.get("date")
    stamp = parse_timestamp(v0["timestamp"])
    same_time = (received_at and abs((instant(received_at) - stamp).total_seconds()) < 0.001) or (
        date and abs((instant(date) - stamp).total_seconds()) < 1
    )
    pairs = {
        "message_id / id": (v0["message_id"], v1.get("id")),
        "thread_id": (v0["thread_id"], v1.get("thread_id")),
        "inbox_id / mailbox_id": (v0["inbox_id"], v1.get("mailbox_id")),
        "direction": (v0["direction"], v1.get("direction")),
        "subject": (v0["subject"], v1.get("subject")),
        "from": (people(v0["from"]), people(v1.get("from"))),
        "to": (people(v0["to"]), people(v1.get("to"))),
        "cc": (people(v0["cc"]), people(v1.get("cc"))),
        "labels": (sorted(v0["labels"]), sorted(v1.get("labels") or [])),
        "text": (v0["text"], v1.get("text")),
        "preview": (v0["preview"], v1.get("preview")),
        "size": (v0["size"], v1.get("size")),
    }
    differ = {name: values for name, values in pairs.items() if values[0] != values[1]}
    if not same_time:
        differ["timestamp / received_at|date"] = (v0["timestamp"], f"received_at={received_at} date={date}")
    assert not differ, f"{what}: v0 and v1 disagree (v0, v1): {differ}"


def test_a_message_is_the_same_both_ways(sides: Sides) -> None:
    sender, receiver = new_inbox(sides, "from", "Agree From"), new_inbox(sides, "to", "Agree To")
    subject = f"Agreement {sides.tag}"
    sent = body(
        sides.v0.send_message(
            sender["inbox_id"],
            to=receiver["email_address"],
            subject=subject,
            text="Same on both sides.",
            labels=["agree"],
        ),
        200,
        201,
        202,
    )

    def arrived() -> dict[str, Any] | None:
        page = body(sides.v0.list_messages(receiver["inbox_id"]), 200)
        return next((m for m in page["data"] if m.get("subject") == subject), None)

    received = wait_for("the message in the receiving inbox", arrived)
    for inbox, message_id, what in (
        (sender, sent["message_id"], "the Sent copy"),
        (receiver, received["message_id"], "the received copy"),
    ):
        v0 = body(sides.v0.get_message(inbox["inbox_id"], message_id), 200)
        if inbox is sender:
            assert v0["labels"] == ["agree"], f"the send's labels on the Sent copy: {v0['labels']}"
        with sides.message_reader(inbox["inbox_id"]) as reader:
            v1 = v1_data(reader.get(f"/api/v1/messages/{message_id}"))
            compare_message(v0, v1, what)
            thread_v0 = body(sides.v0.get_thread(inbox["inbox_id"], v0["thread_id"]), 200)
            thread_v1 = v1_data(reader.get(f"/api/v1/threads/{v0['thread_id']}"))
            assert [m["message_id"] for m in thread_v0["messages"]] == [
                m["id"] for m in thread_v1["messages"]
            ], f"{what}: the thread's messages differ"
            assert thread_v0["message_count"] == thread_v1["message_count"]

            # Labels changed on one side are the other side's labels.
            body(sides.v0.update_message(inbox["inbox_id"], message_id, labels=["from-v0", "both"]), 200)
            assert sorted(v1_data(reader.get(f"/api/v1/messages/{message_id}"))["labels"]) == [
                "both",
                "from-v0",
            ]
            v1_data(reader.patch(f"/api/v1/messages/{message_id}", json={"labels": ["from-v1"]}))
            assert body(sides.v0.get_message(inbox["inbox_id"], message_id), 200)["labels"] == ["from-v1"]
