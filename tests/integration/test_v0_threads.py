"""``/api/v0/inboxes/{inboxId}/threads...`` through AgentMessagesFunction's handler under moto: the
list (every field from the maintained thread item, latest activity first, numbered pages, the
maintained ``thread_count``), a thread with its messages in order, deleting a thread with every
message, how ``thread_count`` follows threads created and dropped, tenancy, and v0 agreeing with
v1 on the same thread."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mailroom.services import threads as v1_threads
from mailroom.services.organizations import NewOrganization
from mailroom.store import keys, mail_objects
from mailroom.store import mail as store
from mailroom.store.mail import Stored, ThreadChange
from mailroom.store.table import Table
from mailroom.store.txn import Update, delete, run
from tests.support.agent_mail import WHEN, World, inbound, make_world, ok0, send, v0, v0_error
from tests.support.lambda_api import call
from tests.support.sending import message_token


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(org, table, monkeypatch)


THREAD_KEYS = {
    "inbox_id",
    "thread_id",
    "labels",
    "timestamp",
    "received_timestamp",
    "sent_timestamp",
    "senders",
    "recipients",
    "subject",
    "preview",
    "last_message_id",
    "message_count",
    "size",
}


def conversation(
    world: World, subject: str = "Hello", minute: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An inbound message and the inbox's reply to it: (original item, reply as sent)."""
    alice = world.alice
    original = alice.receive(
        inbound(subject, message_id=f"<{subject.replace(' ', '')}@example.net>", text="Hi there!"),
        at=WHEN + timedelta(minutes=minute),
    )
    reply = ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{alice.id}/messages/{original['id']}/reply",
            {"text": "Thanks for your email!"},
        )
    )
    return original, reply


def test_a_thread_in_the_list(world: World) -> None:
    alice = world.alice
    original, reply = conversation(world)
    ok0(v0(world.token, "PATCH", f"/inboxes/{alice.id}/messages/{original['id']}", {"labels": ["vip"]}))
    listed = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads"))
    assert (listed["total"], listed["page"], listed["page_size"]) == (1, 1, 20)
    (thread,) = listed["data"]
    assert set(thread) == THREAD_KEYS
    sent = store.get_message(world.table, alice.org_id, alice.id, reply["message_id"])
    assert sent is not None
    assert thread == {
        "inbox_id": alice.id,
        "thread_id": original["thread_id"],
        "labels": ["vip"],
        "timestamp": sent["received_at"],
        "received_timestamp": "2026-03-01T12:00:00.000Z",
        "sent_timestamp": sent["received_at"],
        "senders": ["agent-1@example.com", "carol@example.net"],
        "recipients": ["agent-1@example.com", "carol@example.net", "dave@example.org", "erin@example.org"],
        "subject": "Hello",
        "preview": "Thanks for your email!",
        "last_message_id": reply["message_id"],
        "message_count": 2,
        "size": original["size"] + sent["size"],
    }


def test_a_thread_without_sent_mail_has_a_null_sent_timestamp(world: World) -> None:
    world.alice.receive(inbound("Only in", message_id="<only@example.net>"), at=WHEN)
    (thread,) = ok0(v0(world.token, "GET", f"/inboxes/{world.alice.id}/threads"))["data"]
    assert thread["sent_timestamp"] is None and thread["received_timestamp"] == "2026-03-01T12:00:00.000Z"
    sent = send(world, world.bob, {"to": "x@example.com", "text": "only out"})
    (thread,) = ok0(v0(world.token, "GET", f"/inboxes/{world.bob.id}/threads"))["data"]
    assert thread["received_timestamp"] is None and thread["thread_id"] == sent["thread_id"]
    assert thread["subject"] == "" and thread["senders"] == ["bob@example.com"]


def test_threads_by_latest_activity_in_numbered_pages(world: World) -> None:
    alice = world.alice
    threads = [
        alice.receive(
            inbound(f"Topic {i}", message_id=f"<t{i}@example.net>"), at=WHEN + timedelta(minutes=i)
        )["thread_id"]
        for i in range(5)
    ]
    # New activity in the oldest thread moves it to the top.
    alice.receive(
        inbound("Re: Topic 0", message_id="<t0b@example.net>", extra=["In-Reply-To: <t0@example.net>"]),
        at=WHEN + timedelta(minutes=10),
    )
    expected = [threads[0], threads[4], threads[3], threads[2], threads[1]]
    pages = [
        ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads", page=p, page_size=2)) for p in (1, 2, 3, 4)
    ]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["data"]) for p in pages] == [2, 2, 1, 0]
    assert [t["thread_id"] for p in pages for t in p["data"]] == expected
    assert pages[0]["data"][0]["message_count"] == 2
    v0_error(v0(world.token, "GET", f"/inboxes/{alice.id}/threads", page_size=101), 422, "ValidationError")


def test_a_thread_with_its_messages_in_order(world: World) -> None:
    alice = world.alice
    original, reply = conversation(world)
    thread = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads/{original['thread_id']}"))
    sent = store.get_message(world.table, alice.org_id, alice.id, reply["message_id"])
    assert sent is not None
    assert {k: v for k, v in thread.items() if k != "messages"} == {
        "inbox_id": alice.id,
        "thread_id": original["thread_id"],
        "subject": "Hello",
        "message_count": 2,
        "preview": "Thanks for your email!",
    }
    first, second = thread["messages"]
    assert {**first, "text": first["text"].strip()} == {
        "message_id": original["id"],
        "direction": "inbound",
        "from": "Carol <carol@example.net>",
        "to": ["Agent One <agent-1@example.com>", "dave@example.org"],
        "subject": "Hello",
        "text": "Hi there!",
        "timestamp": "2026-03-01T12:00:00.000Z",
    }
    assert second == {
        "message_id": reply["message_id"],
        "direction": "outbound",
        "from": "Agent One <agent-1@example.com>",
        "to": ["Carol <carol@example.net>"],
        "subject": "Re: Hello",
        "text": "Thanks for your email!",
        "timestamp": sent["received_at"],
    }


def test_a_long_thread_is_read_whole_and_bodies_stop_at_the_budget(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.alice
    first = alice.receive(inbound("Long", message_id="<long0@example.net>", text="x" * 100), at=WHEN)
    for i in range(1, 105):
        alice.receive(
            inbound(
                "Re: Long",
                message_id=f"<long{i}@example.net>",
                text="x" * 100,
                extra=["In-Reply-To: <long0@example.net>"],
            ),
            at=WHEN + timedelta(seconds=i),
        )
    monkeypatch.setattr(v1_threads, "THREAD_BODY_BUDGET", 50 * 101)
    thread = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads/{first['thread_id']}"))
    assert thread["message_count"] == 105 == len(thread["messages"])
    timestamps = [m["timestamp"] for m in thread["messages"]]
    assert timestamps == sorted(timestamps) and thread["messages"][0]["message_id"] == first["id"]
    with_text = [m for m in thread["messages"] if m["text"] is not None]
    assert len(with_text) == 50 and thread["messages"][50]["text"] is None


def test_delete_a_thread_and_every_message_in_it(world: World) -> None:
    alice = world.alice
    original, reply = conversation(world)
    other = alice.receive(inbound("Unrelated", message_id="<other@example.net>"))
    stored = [
        store.get_message(world.table, alice.org_id, alice.id, m)
        for m in (original["id"], reply["message_id"])
    ]
    raw_keys = [m["raw_key"] for m in stored if m]
    assert len(raw_keys) == 2 and all(mail_objects.exists(k) for k in raw_keys)
    before = alice.item()
    assert (before["message_count"], before["thread_count"]) == (3, 2)

    result = v0(world.token, "DELETE", f"/inboxes/{alice.id}/threads/{original['thread_id']}")
    assert (result.status, result.body) == (204, b"")
    v0_error(
        v0(world.token, "GET", f"/inboxes/{alice.id}/threads/{original['thread_id']}"), 404, "NotFoundError"
    )
    for message_id in (original["id"], reply["message_id"]):
        v0_error(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{message_id}"), 404, "NotFoundError")
    assert not any(mail_objects.exists(k) for k in raw_keys)
    after = alice.item()
    assert (after["message_count"], after["thread_count"]) == (1, 1)
    assert after["used_bytes"] == before["used_bytes"] - sum(m["size"] for m in stored if m)
    listed = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages"))
    assert [m["message_id"] for m in listed["data"]] == [other["id"]] and listed["total"] == 1
    threads = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads"))
    assert [t["thread_id"] for t in threads["data"]] == [other["thread_id"]] and threads["total"] == 1
    v0_error(
        v0(world.token, "DELETE", f"/inboxes/{alice.id}/threads/{original['thread_id']}"),
        404,
        "NotFoundError",
    )


def test_unknown_threads_and_other_tenants_are_404(world: World, other_org: NewOrganization) -> None:
    alice = world.alice
    original = alice.receive(inbound("Mine", message_id="<mine@example.net>"))
    for thread_id in ("thr_01JAAAAAAAAAAAAAAAAAAAAAAA", "nope", original["id"]):
        error = v0_error(
            v0(world.token, "GET", f"/inboxes/{alice.id}/threads/{thread_id}"), 404, "NotFoundError"
        )
        assert error["message"] == "Thread not found"
    for token in (other_org.admin_token, message_token(world.org, world.bob.id)):
        v0_error(v0(token, "GET", f"/inboxes/{alice.id}/threads"), 404, "NotFoundError")
        v0_error(
            v0(token, "GET", f"/inboxes/{alice.id}/threads/{original['thread_id']}"), 404, "NotFoundError"
        )
        v0_error(
            v0(token, "DELETE", f"/inboxes/{alice.id}/threads/{original['thread_id']}"), 404, "NotFoundError"
        )
    v0_error(
        v0(world.token, "GET", f"/inboxes/{world.bob.id}/threads/{original['thread_id']}"),
        404,
        "NotFoundError",
    )
    assert alice.item()["thread_count"] == 1


def test_thread_count_follows_threads_created_and_dropped(world: World) -> None:
    alice = world.alice
    first = alice.receive(inbound("One", message_id="<one@example.net>"))
    alice.receive(
        inbound("Re: One", message_id="<one-b@example.net>", extra=["In-Reply-To: <one@example.net>"])
    )
    alice.receive(inbound("Two", message_id="<two@example.net>"))
    assert alice.item()["thread_count"] == 2
    # v1: Trash, then for good, message by message; the emptied thread is dropped and uncounted.
    token = message_token(world.org, alice.id)
    for message in store.list_messages(
        world.table, alice.org_id, alice.id, per_page=10, cursor=None, thread_id=first["thread_id"]
    ).items:
        for _ in range(2):
            assert call("messages", "DELETE", f"/api/v1/messages/{message['id']}", token=token).status in (
                200,
                204,
            )
    assert store.get_thread(world.table, alice.org_id, alice.id, first["thread_id"]) is None
    assert alice.item()["thread_count"] == 1
    assert ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads"))["total"] == 1


def test_a_thread_gone_between_read_and_store_is_created_and_counted_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.alice
    first = alice.receive(inbound("Gone", message_id="<gone@example.net>"))
    assert alice.item()["thread_count"] == 1
    raw = inbound("Re: Gone", message_id="<gone-b@example.net>", extra=["In-Reply-To: <gone@example.net>"])
    real_get_thread = store.get_thread

    def read_then_vanish(*args: Any) -> Any:
        thread = real_get_thread(*args)
        monkeypatch.setattr(store, "get_thread", real_get_thread)
        # Right after this read another request empties and drops the thread (and uncounts it).
        pk = keys.mailbox_pk(alice.org_id, alice.id)
        run(world.table, [delete("thread", pk, keys.thread_sk(store.ulid_of(first["thread_id"])))])
        Update(keys.org_pk(alice.org_id), keys.mailbox_sk(alice.id)).add(thread_count=-1).apply(world.table)
        return thread

    monkeypatch.setattr(store, "get_thread", read_then_vanish)
    stored = alice.receive(raw, at=WHEN + timedelta(hours=1))
    assert stored["thread_id"] == first["thread_id"]
    assert store.get_message(world.table, alice.org_id, alice.id, stored["id"]) is not None
    thread = store.get_thread(world.table, alice.org_id, alice.id, first["thread_id"])
    assert thread is not None and thread["message_count"] == 1 and thread["id"] == first["thread_id"]
    assert alice.item()["thread_count"] == 1


def test_a_new_thread_that_exists_already_is_updated_not_counted_twice(world: World) -> None:
    alice = world.alice
    first = alice.receive(inbound("Twice", message_id="<twice@example.net>"))
    message = {
        **store.get_message(world.table, alice.org_id, alice.id, first["id"]),  # type: ignore[dict-item]
        "id": "msg_01JBBBBBBBBBBBBBBBBBBBBBBB",
        "rfc_message_id_hash": None,
    }
    change = ThreadChange(
        thread_id=first["thread_id"],
        subject="Twice",
        subject_key="twice",
        last_activity_at="2026-03-02T00:00:00.000Z",
        preview="p",
        last_message_id=message["id"],
        created=True,
    )
    assert (
        store.store_message(world.table, message, thread=change, quota_bytes=None, event=None)
        is Stored.STORED
    )
    assert alice.item()["thread_count"] == 1
    assert store.get_thread(world.table, alice.org_id, alice.id, first["thread_id"])["message_count"] == 2  # type: ignore[index]


def test_v0_and_v1_show_the_same_thread(world: World) -> None:
    alice = world.alice
    original, reply = conversation(world)
    token = message_token(world.org, alice.id)
    one = call("messages", "GET", f"/api/v1/threads/{original['thread_id']}", token=token).json()["data"]
    zero = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads/{original['thread_id']}"))
    (listed,) = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/threads"))["data"]
    assert (zero["thread_id"], zero["inbox_id"], zero["subject"], zero["message_count"], zero["preview"]) == (
        one["id"],
        one["mailbox_id"],
        one["subject"],
        one["message_count"],
        one["preview"],
    )
    assert [
        (m["message_id"], m["from"], m["to"], m["subject"], m["timestamp"], m["text"])
        for m in zero["messages"]
    ] == [(m["id"], m["from"], m["to"], m["subject"], m["received_at"], m["text"]) for m in one["messages"]]
    assert (listed["senders"], listed["recipients"], listed["labels"], listed["last_message_id"]) == (
        one["senders"],
        one["recipients"],
        one["labels"],
        one["last_message_id"],
    )
    assert (listed["timestamp"], listed["received_timestamp"], listed["sent_timestamp"], listed["size"]) == (
        one["last_activity_at"],
        one["received_at"],
        one["sent_at"],
        one["size"],
    )
    assert reply["message_id"] == one["last_message_id"]
