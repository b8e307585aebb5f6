"""The mail store through the delivery service: one transaction per message, idempotent on the
source id, threads, folder counters, quota and quarantine, bodies inline or in S3."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, events, keys, mailboxes, organizations
from mailroom.store import mail as store
from mailroom.store.mail import Stored
from mailroom.store.table import Table
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def mailbox(org: NewOrganization, table: Table, bucket: str) -> dict[str, Any]:
    add_domain(org, "example.com")
    created = new_mailbox(org, "inbox")
    item = mailboxes.get(table, org.organization["id"], created["id"])
    assert item is not None
    return item


def raw(subject: str, *, message_id: str, in_reply_to: str | None = None, body: str = "hello") -> bytes:
    headers = [
        "From: Ann <ann@example.net>",
        "To: inbox@example.com",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Sun, 01 Mar 2026 12:00:00 +0000",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def incoming(
    org: NewOrganization,
    mailbox: dict[str, Any],
    data: bytes,
    *,
    source: str | None,
    at: datetime = WHEN,
    folder_key: str = "inbox",
) -> Incoming:
    return Incoming(
        org_id=org.organization["id"],
        mailbox=mailbox,
        raw=data,
        parsed=parse(data),
        folder_key=folder_key,
        direction="inbound",
        received_at=at,
        source_id=source,
        event_type="message.received",
    )


def fresh(table: Table, org: NewOrganization, mailbox: dict[str, Any]) -> dict[str, Any]:
    item = mailboxes.get(table, org.organization["id"], mailbox["id"])
    assert item is not None
    return item


def test_a_message_is_stored_once_with_its_counters_and_event(
    org: NewOrganization, table: Table, mailbox: dict[str, Any], bucket: str
) -> None:
    data = raw("Hello", message_id="<a@example.net>")
    first = deliver(table, incoming(org, mailbox, data, source="ses-1"))
    again = deliver(table, incoming(org, mailbox, data, source="ses-1"))
    assert (first.stored, again.stored) == (Stored.STORED, Stored.DUPLICATE)
    assert first.message["id"] == again.message["id"]
    state = fresh(table, org, mailbox)
    assert (state["fc_inbox_total"], state["fc_inbox_unread"], state["used_bytes"]) == (1, 1, len(data))
    org_item = organizations.get(table, org.organization["id"])
    assert org_item is not None and org_item["storage_used_bytes"] == len(data)
    stream = events.list_page(table, org.organization["id"], per_page=10).items
    assert [e["event_type"] for e in stream] == ["message.received"]
    assert stream[0]["data"]["subject"] == "Hello" and "text" not in stream[0]["data"]
    stored = aws.client("s3").get_object(Bucket=bucket, Key=first.message["raw_key"])["Body"].read()
    assert stored == data
    page = store.list_messages(
        table, org.organization["id"], mailbox["id"], per_page=10, cursor=None, folder_key="inbox"
    )
    assert [m["id"] for m in page.items] == [first.message["id"]]


def test_replies_join_the_thread_through_headers_then_subject(
    org: NewOrganization, table: Table, mailbox: dict[str, Any]
) -> None:
    first = deliver(table, incoming(org, mailbox, raw("Plan", message_id="<p1@x>"), source="1"))
    reply = deliver(
        table,
        incoming(
            org,
            mailbox,
            raw("Re: Plan", message_id="<p2@x>", in_reply_to="<p1@x>"),
            source="2",
            at=WHEN + timedelta(minutes=5),
        ),
    )
    headerless = deliver(
        table,
        incoming(
            org, mailbox, raw("RE: plan", message_id="<p3@x>"), source="3", at=WHEN + timedelta(minutes=9)
        ),
    )
    unrelated = deliver(table, incoming(org, mailbox, raw("Plan", message_id="<p4@x>"), source="4"))
    thread_id = first.message["thread_id"]
    assert reply.message["thread_id"] == thread_id == headerless.message["thread_id"]
    assert unrelated.message["thread_id"] != thread_id
    thread = store.get_thread(table, org.organization["id"], mailbox["id"], thread_id)
    assert thread is not None
    assert (thread["message_count"], thread["unread_count"], thread["last_message_id"]) == (
        3,
        3,
        headerless.message["id"],
    )
    in_thread = store.list_messages(
        table,
        org.organization["id"],
        mailbox["id"],
        per_page=10,
        cursor=None,
        thread_id=thread_id,
        newest_first=False,
    )
    assert [m["id"] for m in in_thread.items] == [
        first.message["id"],
        reply.message["id"],
        headerless.message["id"],
    ]
    threads = store.list_threads(table, org.organization["id"], mailbox["id"], per_page=10, cursor=None)
    assert threads.items[0]["id"] == thread_id  # most recent activity first


def test_flags_moves_and_removal_keep_counters_exact(
    org: NewOrganization, table: Table, mailbox: dict[str, Any]
) -> None:
    stored = deliver(table, incoming(org, mailbox, raw("Count", message_id="<c@x>"), source="c")).message
    seen = store.change_message(table, stored, seen=True)
    moved = store.change_message(table, seen, folder_key="archive", labels=["work"])
    state = fresh(table, org, mailbox)
    assert (state["fc_inbox_total"], state["fc_inbox_unread"]) == (0, 0)
    assert (state["fc_archive_total"], state.get("fc_archive_unread", 0)) == (1, 0)
    thread = store.get_thread(table, org.organization["id"], mailbox["id"], stored["thread_id"])
    assert thread is not None and thread["unread_count"] == 0
    with pytest.raises(store.Rejected):  # stale copy: the folder changed since it was read
        store.change_message(table, stored, folder_key="trash")
    store.remove_message(table, moved)
    state = fresh(table, org, mailbox)
    assert (state["fc_archive_total"], state["used_bytes"], state["message_count"]) == (0, 0, 0)
    assert store.get_message(table, org.organization["id"], mailbox["id"], stored["id"]) is None


def test_over_quota_mail_is_quarantined_not_lost(
    org: NewOrganization, table: Table, mailbox: dict[str, Any], bucket: str
) -> None:
    table.update(
        keys.org_pk(org.organization["id"]),
        keys.mailbox_sk(mailbox["id"]),
        "SET used_bytes = :full",
        expression_values={":full": {"N": str(int(mailbox["quota"]) * 1024 * 1024)}},
    )
    outcome = deliver(
        table, incoming(org, fresh(table, org, mailbox), raw("Big", message_id="<q@x>"), source="q")
    )
    assert outcome.stored is Stored.OVER_QUOTA
    quarantined = table.query_page(
        partition=keys.mailbox_pk(org.organization["id"], mailbox["id"]), sk_prefix="QUAR#", per_page=10
    ).items
    assert [(q["reason"], q["subject"]) for q in quarantined] == [("over_quota", "Big")]
    kept = aws.client("s3").get_object(Bucket=bucket, Key=quarantined[0]["raw_key"])["Body"].read()
    assert b"Subject: Big" in kept
    listed = (
        aws.client("s3")
        .list_objects_v2(Bucket=bucket, Prefix=keys.mailbox_s3_prefix(org.organization["id"], mailbox["id"]))
        .get("KeyCount", 0)
    )
    assert listed == 0, "the refused message's bytes were withdrawn"


def test_large_bodies_go_to_s3(org: NewOrganization, table: Table, mailbox: dict[str, Any]) -> None:
    small = deliver(table, incoming(org, mailbox, raw("s", message_id="<s@x>"), source="s")).message
    large = deliver(
        table, incoming(org, mailbox, raw("l", message_id="<l@x>", body="x" * 40_000), source="l")
    ).message
    assert small["body"]["text"].startswith("hello") and "body_key" not in small
    assert "body" not in large and large["body_key"].endswith("/body.json")
    from mailroom.services.mail_views import load_body, message_full

    assert load_body(large)["text"].startswith("x" * 100)
    assert message_full(large)["text"] == load_body(large)["text"]


def test_filtered_listing_fills_pages_and_resumes(
    org: NewOrganization, table: Table, mailbox: dict[str, Any]
) -> None:
    delivered = [
        deliver(
            table,
            incoming(
                org,
                mailbox,
                raw(f"m{i}", message_id=f"<f{i}@x>"),
                source=f"f{i}",
                at=WHEN + timedelta(seconds=i),
            ),
        ).message
        for i in range(9)
    ]
    for message in delivered[::3]:  # three read messages: 0, 3, 6
        store.change_message(table, message, seen=True)
    unread = ("#flags.#seen = :no", {"#flags": "flags", "#seen": "seen"}, {":no": {"BOOL": False}})
    seen_ids: list[str] = []
    cursor = None
    while True:
        page = store.list_messages(
            table,
            org.organization["id"],
            mailbox["id"],
            per_page=4,
            cursor=cursor,
            folder_key="inbox",
            filter_expression=unread,
        )
        seen_ids += [m["id"] for m in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    expected = [m["id"] for i, m in enumerate(delivered) if i % 3 != 0][::-1]
    assert seen_ids == expected
