"""The Messages API through the messages function, as API Gateway invokes it, with a message token:
listing with filters and cursor pages, reading (bodies, raw, attachments), organizing (flags,
labels, folders, Trash, Spam, bulk) with exact counters, threads, blocked senders, isolation."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from mailroom.errors import MailroomError
from mailroom.mail import folders as folder_rules
from mailroom.mail.parse import parse
from mailroom.services import folders, message_changes, message_removal
from mailroom.services import threads as thread_service
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.message_downloads import INLINE_LIMIT_BYTES
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, blocked_senders, keys, mailboxes, organizations
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox, ok, post

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALL_SCOPES = ["messages:read", "messages:write", "messages:send"]
_keys = itertools.count()
_sources = itertools.count()


@dataclass
class Box:
    org: NewOrganization
    mailbox: dict[str, Any]
    token: str
    bucket: str

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def item(self, table: Table) -> dict[str, Any]:
        found = mailboxes.get(table, self.org_id, self.mailbox["id"])
        assert found is not None
        return found


def message_token(org: NewOrganization, mailbox_id: str, scopes: list[str]) -> str:
    created = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{mailbox_id}/message-tokens",
            {"name": "agent", "scopes": scopes},
        ),
        201,
    )
    return str(created["token"])


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def box(org: NewOrganization, table: Table, bucket: str) -> Box:
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "inbox")
    return Box(org, mailbox, message_token(org, mailbox["id"], ALL_SCOPES), bucket)


def api(
    box_or_token: Box | str,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, Any] | None = None,
) -> Result:
    token = box_or_token.token if isinstance(box_or_token, Box) else box_or_token
    headers = {"Idempotency-Key": f"m-{next(_keys)}"} if method in ("POST", "PUT") else None
    return call("messages", method, path, token=token, json_body=body, headers=headers, query=query)


def data(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:1500])
    return result.json()["data"]


def error(result: Result, status: int, code: str) -> None:
    assert (result.status, result.error_code) == (status, code), (result.status, result.body[:1500])


def mime(
    subject: str,
    *,
    sender: str = "Ann Example <ann@example.net>",
    to: str = "inbox@example.com",
    cc: str | None = None,
    text: str = "hello",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    if cc:
        message["Cc"] = cc
    message["Message-ID"] = message_id or f"<{next(_sources)}.{subject.replace(' ', '')}@example.net>"
    message["Date"] = "Sun, 01 Mar 2026 12:00:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = message["References"] = in_reply_to
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, payload in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def put_mail(
    box: Box, table: Table, raw: bytes, *, at: datetime = WHEN, folder_key: str = "inbox", **extra: Any
) -> dict[str, Any]:
    outcome = deliver(
        table,
        Incoming(
            org_id=box.org_id,
            mailbox=box.item(table),
            raw=raw,
            parsed=parse(raw),
            folder_key=folder_key,
            direction="inbound",
            received_at=at,
            source_id=f"src-{next(_sources)}",
            **extra,
        ),
    )
    assert outcome.stored.value == "stored", outcome.stored
    return outcome.message


def folder_counts(box: Box) -> dict[str, tuple[int, int]]:
    return {f["path"]: (f["total"], f["unread"]) for f in data(api(box, "GET", "/api/v1/messages/folders"))}


def listing(box: Box, **query: Any) -> dict[str, Any]:
    result = api(box, "GET", "/api/v1/messages", query=query)
    assert result.status == 200, result.body[:1500]
    return result.json()  # type: ignore[no-any-return]


def follow(box: Box, link: str) -> dict[str, Any]:
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    result = api(box, "GET", parts.path, query=query)
    assert result.status == 200, result.body[:1500]
    return result.json()  # type: ignore[no-any-return]


def s3_keys(box: Box) -> set[str]:
    listed = aws.client("s3").list_objects_v2(
        Bucket=box.bucket, Prefix=keys.mailbox_s3_prefix(box.org_id, box.mailbox["id"])
    )
    return {o["Key"] for o in listed.get("Contents", [])}


# --- listing -------------------------------------------------------------------------------------


def test_filters_pick_the_right_messages_and_totals_come_from_counters(box: Box, table: Table) -> None:
    plan = put_mail(box, table, mime("Quarterly PLAN", sender="Bob <bob@partner.org>"), at=WHEN)
    invoice = put_mail(
        box, table, mime("Invoice 42", cc="Accounts <acct@example.com>"), at=WHEN + timedelta(hours=1)
    )
    news = put_mail(box, table, mime("Newsletter"), at=WHEN + timedelta(hours=2), folder_key="archive")
    reply = put_mail(
        box,
        table,
        mime("Re: Quarterly PLAN", in_reply_to=plan["rfc_message_id"]),
        at=WHEN + timedelta(hours=3),
    )
    store.change_message(table, invoice, seen=True, flagged=True, labels=["billing"])

    def ids(**query: Any) -> list[str]:
        return [m["id"] for m in listing(box, **query)["data"]]

    everything = listing(box)
    assert [m["id"] for m in everything["data"]] == [reply["id"], news["id"], invoice["id"], plan["id"]]
    assert everything["meta"]["total"] == 4
    assert everything["data"][1]["folder"] == "Archive"
    inbox = listing(box, folder="inbox")  # system folders by name, in any case
    assert [m["id"] for m in inbox["data"]] == [reply["id"], invoice["id"], plan["id"]]
    assert inbox["meta"]["total"] == 3
    assert listing(box, folder="INBOX", unread="true")["meta"]["total"] == 2
    assert listing(box, unread="false")["meta"]["total"] == 1
    assert ids(unread="true") == [reply["id"], news["id"], plan["id"]]
    assert ids(flagged="true") == [invoice["id"]]
    assert ids(flagged="false", folder="INBOX") == [reply["id"], plan["id"]]
    assert ids(label="billing") == [invoice["id"]]
    assert ids(subject="quarterly plan") == [reply["id"], plan["id"]]  # case-insensitive part
    assert ids(**{"from": "PARTNER.org"}) == [plan["id"]]
    assert ids(to="acct@") == [invoice["id"]]  # Cc counts as a recipient
    assert ids(
        since=(WHEN + timedelta(hours=1)).isoformat(), before=(WHEN + timedelta(hours=3)).isoformat()
    ) == [
        news["id"],
        invoice["id"],
    ]
    assert ids(folder="Inbox", since=(WHEN + timedelta(minutes=30)).isoformat()) == [
        reply["id"],
        invoice["id"],
    ]
    thread = listing(box, thread=plan["thread_id"], order="oldest")
    assert [m["id"] for m in thread["data"]] == [plan["id"], reply["id"]]
    assert thread["meta"]["total"] == 2  # the thread's own counter
    assert listing(box, subject="plan")["meta"]["total"] is None  # a search: nobody counted it
    assert listing(box, thread=plan["thread_id"], folder="INBOX")["meta"]["total"] is None

    error(api(box, "GET", "/api/v1/messages", query={"folder": "Nope"}), 422, "unknown_folder")
    error(api(box, "GET", "/api/v1/messages", query={"thread": "nope"}), 422, "validation_error")
    error(api(box, "GET", "/api/v1/messages", query={"cursor": "garbage"}), 422, "invalid_cursor")
    later, earlier = (WHEN + timedelta(hours=1)).isoformat(), WHEN.isoformat()
    error(
        api(box, "GET", "/api/v1/messages", query={"since": later, "before": earlier}),
        422,
        "validation_error",
    )


def test_pages_follow_cursors_forward_and_back(box: Box, table: Table) -> None:
    delivered = [
        put_mail(box, table, mime(f"Report {i}" if i % 2 else f"Note {i}"), at=WHEN + timedelta(minutes=i))
        for i in range(23)
    ]
    newest_first = [m["id"] for m in reversed(delivered)]
    first = listing(box, folder="INBOX", per_page=10)
    assert first["meta"] == {"current_page": 1, "last_page": 3, "per_page": 10, "total": 23}
    assert first["links"]["prev"] is None
    second = follow(box, first["links"]["next"])
    third = follow(box, second["links"]["next"])
    assert third["links"]["next"] is None and third["meta"]["current_page"] == 3
    walked = [m["id"] for page in (first, second, third) for m in page["data"]]
    assert walked == newest_first
    back = follow(box, third["links"]["prev"])
    assert [m["id"] for m in back["data"]] == [m["id"] for m in second["data"]]

    # A search pages forward over what it matches (the 11 odd ones), with no total.
    found, page = [], listing(box, subject="report", per_page=4)
    while True:
        assert page["meta"]["total"] is None
        found += [m["id"] for m in page["data"]]
        if not page["links"]["next"]:
            break
        page = follow(box, page["links"]["next"])
    assert found == [m["id"] for i, m in reversed(list(enumerate(delivered))) if i % 2]
    # A cursor is bound to its listing.
    error(
        api(
            box,
            "GET",
            "/api/v1/messages",
            query={
                "folder": "Archive",
                "cursor": parse_qs(urlsplit(first["links"]["next"]).query)["cursor"][0],
            },
        ),
        422,
        "invalid_cursor",
    )


# --- reading -------------------------------------------------------------------------------------


def test_a_message_has_its_html_as_sent_and_sanitized(box: Box, table: Table) -> None:
    html = (
        '<p onclick="steal()">Hi<script>alert(1)</script></p>'
        "<img src=https://tracker.example/pixel.gif alt=pixel>"
        '<img src="&#104;ttps://tracker.example/2.gif">'
        '<img src="cid:logo@x"><a href="https://example.org/x">link</a>'
    )
    message = put_mail(box, table, mime("Styled", text="plain version", html=html))
    view = data(api(box, "GET", f"/api/v1/messages/{message['id']}"))
    assert view["html"].strip() == html
    clean = view["html_sanitized"]
    assert "script" not in clean and "onclick" not in clean and "tracker.example" not in clean
    assert 'src="cid:logo@x"' in clean and 'rel="noopener noreferrer nofollow"' in clean
    assert view["text"].strip() == "plain version"
    assert (view["subject"], view["folder"], view["omitted"]) == ("Styled", "INBOX", [])
    assert view["headers"]["Subject"] == "Styled"
    error(api(box, "GET", "/api/v1/messages/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")
    error(api(box, "GET", "/api/v1/messages/not-an-id"), 404, "not_found")


def test_raw_and_attachments_are_byte_identical(box: Box, table: Table) -> None:
    binary = os.urandom(70_000)
    pdf = b"%PDF-1.4 \x00\xff\xfe fake"
    raw = mime(
        "Files",
        attachments=[
            ("photo.bin", "application/octet-stream", binary),
            ("naïve résumé.pdf", "application/pdf", pdf),
        ],
    )
    message = put_mail(box, table, raw)
    got = api(box, "GET", f"/api/v1/messages/{message['id']}/raw")
    assert got.status == 200 and got.body == raw
    assert got.headers["content-type"].startswith("message/rfc822")
    listed = data(api(box, "GET", f"/api/v1/messages/{message['id']}/attachments"))
    assert [(a["index"], a["filename"], a["content_type"], a["size"]) for a in listed] == [
        (0, "photo.bin", "application/octet-stream", len(binary)),
        (1, "naïve résumé.pdf", "application/pdf", len(pdf)),
    ]
    first = api(box, "GET", f"/api/v1/messages/{message['id']}/attachments/0")
    assert first.status == 200 and first.body == binary
    assert first.headers["content-type"] == "application/octet-stream"
    assert first.headers["x-content-type-options"] == "nosniff"
    second = api(box, "GET", listed[1]["url"])
    assert second.body == pdf
    disposition = second.headers["content-disposition"]
    assert disposition.startswith("attachment;") and quote("naïve résumé.pdf", safe="") in disposition
    error(api(box, "GET", f"/api/v1/messages/{message['id']}/attachments/2"), 404, "not_found")
    assert api(box, "GET", f"/api/v1/messages/{message['id']}/attachments/-1").status == 422


def test_large_attachments_and_raw_redirect_to_a_short_lived_url(box: Box, table: Table) -> None:
    big = os.urandom(INLINE_LIMIT_BYTES + 1024)
    raw = mime("Big", attachments=[("big.bin", "application/octet-stream", big)])
    message = put_mail(box, table, raw)
    for path, expected in (
        (f"/api/v1/messages/{message['id']}/attachments/0", big),
        (f"/api/v1/messages/{message['id']}/raw", raw),
    ):
        result = api(box, "GET", path)
        assert result.status == 302 and result.body == b"", (path, result.status)
        location = result.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert query["X-Amz-Expires"] == ["900"]
        assert requests.get(location, timeout=30).content == expected  # moto serves the signed URL


# --- organizing ----------------------------------------------------------------------------------


def test_flags_and_labels_move_the_counters(box: Box, table: Table) -> None:
    first = put_mail(box, table, mime("One"))
    put_mail(box, table, mime("Two"))
    assert folder_counts(box)["INBOX"] == (2, 2)
    updated = data(
        api(box, "PATCH", f"/api/v1/messages/{first['id']}", {"seen": True, "labels": ["a", "b", "a"]})
    )
    assert updated["flags"]["seen"] is True and updated["labels"] == ["a", "b"]
    assert folder_counts(box)["INBOX"] == (2, 1)
    flagged = data(api(box, "PATCH", f"/api/v1/messages/{first['id']}", {"flagged": True}))
    assert flagged["flags"] == {"seen": True, "flagged": True, "answered": False, "draft": False}
    assert flagged["labels"] == ["a", "b"]  # untouched when not sent
    data(api(box, "PATCH", f"/api/v1/messages/{first['id']}", {"seen": False, "labels": []}))
    assert folder_counts(box)["INBOX"] == (2, 2)
    thread = store.get_thread(table, box.org_id, box.mailbox["id"], first["thread_id"])
    assert thread is not None and thread["unread_count"] == 1
    error(api(box, "PATCH", f"/api/v1/messages/{first['id']}", {}), 422, "validation_error")
    error(
        api(box, "PATCH", f"/api/v1/messages/{first['id']}", {"labels": ["x"] * 51}), 422, "validation_error"
    )
    error(api(box, "PATCH", f"/api/v1/messages/{first['id']}", {"color": "red"}), 422, "validation_error")


def test_delete_moves_to_trash_then_removes_for_good_with_its_bytes(box: Box, table: Table) -> None:
    raw = mime("Doomed", html="<p>" + "x" * 20_000 + "</p>", attachments=[("a.txt", "text/plain", b"abc")])
    message = put_mail(box, table, raw)
    other = put_mail(box, table, mime("Kept"))
    mine = {k for k in s3_keys(box) if message["id"].removeprefix("msg_") in k}
    assert len(mine) == 3  # raw, body (too large to inline) and the attachment
    trashed = api(box, "DELETE", f"/api/v1/messages/{message['id']}")
    assert trashed.status == 200 and trashed.json()["data"]["folder"] == "Trash"
    assert folder_counts(box)["Trash"] == (1, 1) and folder_counts(box)["INBOX"] == (1, 1)
    gone = api(box, "DELETE", f"/api/v1/messages/{message['id']}")
    assert gone.status == 204
    error(api(box, "GET", f"/api/v1/messages/{message['id']}"), 404, "not_found")
    assert not mine & s3_keys(box)
    state = box.item(table)
    assert (state["message_count"], state["used_bytes"]) == (1, other["size"])
    assert (state.get("fc_trash_total"), state.get("fc_trash_unread")) == (0, 0)
    org_item = organizations.get(table, box.org_id)
    assert org_item is not None and org_item["storage_used_bytes"] == other["size"]
    # The thread went with its only message.
    error(api(box, "GET", f"/api/v1/threads/{message['thread_id']}"), 404, "not_found")
    error(api(box, "DELETE", f"/api/v1/messages/{message['id']}"), 404, "not_found")


def test_move_spam_and_ham(box: Box, table: Table) -> None:
    message = put_mail(box, table, mime("Offer"))
    moved = data(api(box, "POST", f"/api/v1/messages/{message['id']}:move", {"folder": "archive"}))
    assert (moved["folder"], moved["folder_key"]) == ("Archive", "archive")
    spam = data(api(box, "POST", f"/api/v1/messages/{message['id']}:spam"))
    assert spam["folder"] == "Spam" and spam["verdicts"]["user_report"] == "spam"
    assert folder_counts(box)["Spam"] == (1, 1) and folder_counts(box)["Archive"] == (0, 0)
    ham = data(api(box, "POST", f"/api/v1/messages/{message['id']}:ham"))
    assert ham["folder"] == "INBOX" and ham["verdicts"]["user_report"] == "ham"
    assert folder_counts(box)["INBOX"] == (1, 1) and folder_counts(box)["Spam"] == (0, 0)
    error(
        api(box, "POST", f"/api/v1/messages/{message['id']}:move", {"folder": "Nowhere"}),
        422,
        "unknown_folder",
    )
    error(
        api(box, "POST", f"/api/v1/messages/{message['id']}:move", {"folder": "a//b"}), 422, "invalid_folder"
    )


def test_custom_folders_lifecycle(box: Box, table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    message = put_mail(box, table, mime("Filed"))
    listed = data(api(box, "GET", "/api/v1/messages/folders"))
    assert [f["path"] for f in listed] == ["INBOX", "Sent", "Drafts", "Trash", "Spam", "Archive"]
    created = data(api(box, "POST", "/api/v1/messages/folders", {"path": " Projects / 2026 "}), 201)
    assert (created["path"], created["name"], created["system"], created["total"]) == (
        "Projects/2026",
        "2026",
        False,
        0,
    )
    assert created["key"].startswith("f")
    error(api(box, "POST", "/api/v1/messages/folders", {"path": "Projects/2026"}), 409, "folder_exists")
    error(api(box, "POST", "/api/v1/messages/folders", {"path": "spam"}), 409, "folder_exists")
    error(api(box, "POST", "/api/v1/messages/folders", {"path": "bad\x01name"}), 422, "invalid_folder")
    data(api(box, "POST", "/api/v1/messages/folders", {"path": "Other"}), 201)

    data(api(box, "POST", f"/api/v1/messages/{message['id']}:move", {"folder": "Projects/2026"}))
    assert folder_counts(box)["Projects/2026"] == (1, 1)
    assert listing(box, folder="Projects/2026")["data"][0]["folder"] == "Projects/2026"
    # Renamed through its path in the URL: '/' raw or encoded.
    renamed = data(api(box, "PATCH", "/api/v1/messages/folders/Projects/2026", {"path": "Work/2026"}))
    assert (renamed["key"], renamed["path"], renamed["total"]) == (created["key"], "Work/2026", 1)
    # (API Gateway hands functions the decoded path: an encoded '/' arrives as '/'; see the e2e test.)
    error(api(box, "PATCH", "/api/v1/messages/folders/Work/2026", {"path": "Other"}), 409, "folder_exists")
    error(api(box, "GET", "/api/v1/messages", query={"folder": "Projects/2026"}), 422, "unknown_folder")
    assert listing(box, folder=created["key"])["meta"]["total"] == 1  # by key, too
    data(api(box, "POST", "/api/v1/messages/folders", {"path": "Projects/2026"}), 201)  # the old path is free

    error(api(box, "DELETE", "/api/v1/messages/folders/Work/2026"), 409, "folder_not_empty")
    for system in folder_rules.SYSTEM_FOLDERS:
        error(api(box, "DELETE", f"/api/v1/messages/folders/{system}"), 409, "system_folder_protected")
        error(
            api(box, "PATCH", f"/api/v1/messages/folders/{system}", {"path": "x"}),
            409,
            "system_folder_protected",
        )
    data(api(box, "POST", f"/api/v1/messages/{message['id']}:move", {"folder": "INBOX"}))
    assert api(box, "DELETE", f"/api/v1/messages/folders/{created['key']}").status == 204
    error(api(box, "DELETE", "/api/v1/messages/folders/Work/2026"), 404, "not_found")
    paths = [f["path"] for f in data(api(box, "GET", "/api/v1/messages/folders"))]
    assert paths[6:] == ["Other", "Projects/2026"]

    monkeypatch.setattr(folder_rules, "MAX_CUSTOM_FOLDERS", 3)
    data(api(box, "POST", "/api/v1/messages/folders", {"path": "Third"}), 201)
    error(api(box, "POST", "/api/v1/messages/folders", {"path": "Fourth"}), 422, "folder_limit_reached")


def test_a_message_cannot_land_in_a_folder_deleted_meanwhile(box: Box, table: Table) -> None:
    message = put_mail(box, table, mime("Race"))
    created = data(api(box, "POST", "/api/v1/messages/folders", {"path": "Short-lived"}), 201)
    folder = folders.require_folder(table, box.item(table), "Short-lived")
    assert api(box, "DELETE", f"/api/v1/messages/folders/{created['key']}").status == 204
    with pytest.raises(MailroomError) as refused:
        message_changes.apply_change(table, message, message_changes.move_to(folder.key))
    assert refused.value.code == "unknown_folder"
    assert folder_counts(box)["INBOX"] == (1, 1)
    assert box.item(table).get(f"fc_{folder.key}_total", 0) == 0


def test_a_stale_copy_is_reread_and_the_counters_stay_exact(box: Box, table: Table) -> None:
    message = put_mail(box, table, mime("Stale"))
    data(api(box, "PATCH", f"/api/v1/messages/{message['id']}", {"seen": True}))
    # ``message`` still says unread in INBOX: the transaction's conditions fail, it reads again.
    moved = message_changes.apply_change(table, message, message_changes.move_to("archive"))
    assert moved["flags"]["seen"] is True and moved["folder_key"] == "archive"
    counts = folder_counts(box)
    assert counts["INBOX"] == (0, 0) and counts["Archive"] == (1, 0)


def test_emptying_trash_works_in_bounded_batches(
    box: Box, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_removal, "EMPTY_BATCH", 3)
    monkeypatch.setattr(store, "REMOVE_BATCH", 2)  # several transactions per batch
    trashed = [
        put_mail(box, table, mime(f"T{i}"), folder_key="trash", at=WHEN + timedelta(seconds=i))
        for i in range(7)
    ]
    kept = put_mail(box, table, mime("Keep"))
    rounds = []
    for _ in range(4):
        result = data(api(box, "POST", "/api/v1/messages/folders:empty", {"folder": "trash"}))
        rounds.append((result["removed"], result["remaining"], result["more"]))
        if not result["more"]:
            break
    assert rounds == [(3, 4, True), (3, 1, True), (1, 0, False)]
    assert folder_counts(box)["Trash"] == (0, 0)
    assert all(store.get_message(table, box.org_id, box.mailbox["id"], m["id"]) is None for m in trashed)
    assert s3_keys(box) == {kept["raw_key"]}
    state = box.item(table)
    assert (state["message_count"], state["used_bytes"]) == (1, kept["size"])
    empty_spam = data(api(box, "POST", "/api/v1/messages/folders:empty", {"folder": "Spam"}))
    assert (empty_spam["removed"], empty_spam["more"]) == (0, False)
    error(
        api(box, "POST", "/api/v1/messages/folders:empty", {"folder": "INBOX"}), 422, "folder_not_emptiable"
    )


def test_removal_rereads_messages_changed_since_they_were_listed(
    box: Box, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "REMOVE_BATCH", 3)
    stale = [put_mail(box, table, mime(f"R{i}"), folder_key="trash") for i in range(4)]
    store.change_message(table, stale[0], seen=True)  # changed: removed after a fresh read
    store.change_message(table, stale[1], folder_key="inbox")  # moved out of Trash: kept
    removed = store.remove_messages(table, stale)
    assert sorted(m["id"] for m in removed) == sorted([stale[0]["id"], stale[2]["id"], stale[3]["id"]])
    state = box.item(table)
    assert (state["fc_trash_total"], state["fc_trash_unread"], state["fc_inbox_total"]) == (0, 0, 1)
    assert state["message_count"] == 1


def test_bulk_actions_report_each_message(box: Box, table: Table, org: NewOrganization) -> None:
    messages = [put_mail(box, table, mime(f"B{i}"), at=WHEN + timedelta(seconds=i)) for i in range(4)]
    ids = [m["id"] for m in messages]
    other_box = new_mailbox(org, "other")
    foreign = put_mail(Box(org, other_box, "", box.bucket), table, mime("Not yours"))
    unknown = "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    result = api(
        box,
        "POST",
        "/api/v1/messages:bulk",
        {"ids": [*ids, foreign["id"], unknown, "junk", ids[0]], "action": "seen"},
    )
    assert result.status == 207
    rows = result.json()["data"]
    assert [(r["id"], r["status"]) for r in rows] == [
        *[(i, "ok") for i in ids],
        (foreign["id"], "error"),
        (unknown, "error"),
        ("junk", "error"),
    ]
    assert rows[4]["error"]["code"] == "not_found" and result.json()["meta"] == {"succeeded": 4, "failed": 3}
    assert folder_counts(box)["INBOX"] == (4, 0)

    def bulk(action: str, **extra: Any) -> Any:
        return data(api(box, "POST", "/api/v1/messages:bulk", {"ids": ids[:2], "action": action, **extra}))

    bulk("flag")
    bulk("add_labels", labels=["x", "y"])
    bulk("remove_labels", labels=["x"])
    assert [(m["flags"]["flagged"], m["labels"]) for m in listing(box, label="y")["data"]] == [
        (True, ["y"])
    ] * 2
    bulk("unseen")
    bulk("unflag")
    assert listing(box, flagged="true")["data"] == []
    assert [r["folder_key"] for r in bulk("move", folder="Archive")] == ["archive", "archive"]
    bulk("spam")
    assert folder_counts(box)["Spam"] == (2, 2)
    bulk("ham")
    assert [r["result"] for r in bulk("delete")] == ["moved_to_trash"] * 2
    assert [r["result"] for r in bulk("delete")] == ["deleted"] * 2
    counts = folder_counts(box)
    assert (counts["INBOX"], counts["Trash"], counts["Spam"], counts["Archive"]) == (
        (2, 0),
        (0, 0),
        (0, 0),
        (0, 0),
    )
    assert box.item(table)["message_count"] == 2  # the other mailbox's message counts on its own item

    error(api(box, "POST", "/api/v1/messages:bulk", {"ids": ids, "action": "move"}), 422, "validation_error")
    error(
        api(box, "POST", "/api/v1/messages:bulk", {"ids": ["x"] * 101, "action": "seen"}),
        422,
        "validation_error",
    )
    error(
        api(box, "POST", "/api/v1/messages:bulk", {"ids": ids, "action": "explode"}), 422, "validation_error"
    )
    error(
        api(box, "POST", "/api/v1/messages:bulk", {"ids": ids, "action": "move", "folder": "Nope"}),
        422,
        "unknown_folder",
    )


# --- threads -------------------------------------------------------------------------------------


def test_threads_list_by_activity_and_show_messages_in_order(
    box: Box, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = put_mail(box, table, mime("Plan", text="first"), at=WHEN)
    other = put_mail(box, table, mime("Other"), at=WHEN + timedelta(minutes=1))
    replies = [
        put_mail(
            box,
            table,
            mime("Re: Plan", text=f"reply {i}", in_reply_to=root["rfc_message_id"]),
            at=WHEN + timedelta(minutes=2 + i),
        )
        for i in range(3)
    ]
    threads = api(box, "GET", "/api/v1/threads").json()
    assert [t["id"] for t in threads["data"]] == [root["thread_id"], other["thread_id"]]
    assert threads["meta"]["total"] == 2  # the mailbox's maintained thread_count
    assert threads["data"][0]["message_count"] == 4 and threads["data"][0]["unread_count"] == 4

    monkeypatch.setattr(thread_service, "THREAD_MESSAGES", 3)
    detail = data(api(box, "GET", f"/api/v1/threads/{root['thread_id']}"))
    assert detail["subject"] == "Plan"
    assert [m["id"] for m in detail["messages"]] == [root["id"], *[r["id"] for r in replies[:2]]]
    assert [m["text"].strip() for m in detail["messages"]] == ["first", "reply 0", "reply 1"]
    assert all(m["body_included"] for m in detail["messages"])
    rest = follow(box, detail["links"]["messages_next"])
    assert [m["id"] for m in rest["data"]] == [replies[2]["id"]]

    monkeypatch.setattr(thread_service, "THREAD_BODY_BUDGET", len("first\n") + 2)
    budgeted = data(api(box, "GET", f"/api/v1/threads/{root['thread_id']}"))
    assert [m["body_included"] for m in budgeted["messages"]] == [True, False, False]
    assert "text" not in budgeted["messages"][1]
    error(api(box, "GET", "/api/v1/threads/thr_01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found")


# --- blocked senders -----------------------------------------------------------------------------


def test_blocked_senders(box: Box, table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    person = data(
        api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "Spammer@Example.ORG"}), 201
    )
    domain = data(api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "@Junk.biz"}), 201)
    assert (person["id"], person["type"]) == ("spammer@example.org", "address")
    assert (domain["pattern"], domain["type"]) == ("@junk.biz", "domain")
    error(
        api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "spammer@example.org"}),
        409,
        "already_blocked",
    )
    error(
        api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "not an address"}),
        422,
        "invalid_pattern",
    )
    listed = api(box, "GET", "/api/v1/messages/blocked-senders").json()
    assert sorted(b["pattern"] for b in listed["data"]) == ["@junk.biz", "spammer@example.org"]
    assert listed["meta"]["total"] == 2
    assert blocked_senders.is_blocked(table, box.org_id, box.mailbox["id"], "anyone@junk.biz")
    assert api(box, "DELETE", f"/api/v1/messages/blocked-senders/{domain['id']}").status == 204
    assert not blocked_senders.is_blocked(table, box.org_id, box.mailbox["id"], "anyone@junk.biz")
    error(api(box, "DELETE", "/api/v1/messages/blocked-senders/@junk.biz"), 404, "not_found")
    assert api(box, "GET", "/api/v1/messages/blocked-senders").json()["meta"]["total"] == 1

    monkeypatch.setattr(blocked_senders, "MAX_PER_MAILBOX", 2)
    data(api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "@two.biz"}), 201)
    error(
        api(box, "POST", "/api/v1/messages/blocked-senders", {"pattern": "@three.biz"}),
        422,
        "blocked_sender_limit_reached",
    )


# --- who may do what -----------------------------------------------------------------------------


def test_a_token_reaches_only_its_own_mailbox(box: Box, table: Table, org: NewOrganization) -> None:
    message = put_mail(box, table, mime("Private", attachments=[("a.txt", "text/plain", b"a")]))
    other = new_mailbox(org, "bob")
    other_token = message_token(org, other["id"], ALL_SCOPES)
    mid = message["id"]
    for method, path, body in [
        ("GET", f"/api/v1/messages/{mid}", None),
        ("PATCH", f"/api/v1/messages/{mid}", {"seen": True}),
        ("DELETE", f"/api/v1/messages/{mid}", None),
        ("POST", f"/api/v1/messages/{mid}:move", {"folder": "Archive"}),
        ("POST", f"/api/v1/messages/{mid}:spam", None),
        ("POST", f"/api/v1/messages/{mid}:ham", None),
        ("GET", f"/api/v1/messages/{mid}/raw", None),
        ("GET", f"/api/v1/messages/{mid}/attachments", None),
        ("GET", f"/api/v1/messages/{mid}/attachments/0", None),
        ("GET", f"/api/v1/threads/{message['thread_id']}", None),
    ]:
        error(api(other_token, method, path, body), 404, "not_found")
    assert listing(Box(org, other, other_token, box.bucket))["data"] == []
    assert data(api(box, "GET", f"/api/v1/messages/{mid}"))["flags"]["seen"] is False  # untouched

    read_only = message_token(org, box.mailbox["id"], ["messages:read"])
    assert api(read_only, "GET", f"/api/v1/messages/{mid}").status == 200
    writes: list[tuple[str, str, Any]] = [
        ("PATCH", f"/api/v1/messages/{mid}", {"seen": True}),
        ("DELETE", f"/api/v1/messages/{mid}", None),
        ("POST", "/api/v1/messages:bulk", {"ids": [mid], "action": "seen"}),
        ("POST", "/api/v1/messages/folders", {"path": "X"}),
        ("POST", "/api/v1/messages/blocked-senders", {"pattern": "@x.biz"}),
    ]
    for method, path, body in writes:
        error(api(read_only, method, path, body), 403, "insufficient_scope")

    ops_calls: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/messages", None),
        ("GET", f"/api/v1/messages/{mid}", None),
        ("GET", "/api/v1/messages/folders", None),
        ("POST", "/api/v1/messages:bulk", {"ids": [mid], "action": "seen"}),
        ("GET", "/api/v1/threads", None),
        ("GET", "/api/v1/messages/blocked-senders", None),
    ]
    for method, path, body in ops_calls:
        error(api(org.admin_token, method, path, body), 403, "wrong_token_type")


def test_mutations_are_audited_and_idempotent(box: Box, table: Table) -> None:
    message = put_mail(box, table, mime("Audited"))
    headers = {"Idempotency-Key": "spam-once"}
    first = call(
        "messages", "POST", f"/api/v1/messages/{message['id']}:spam", token=box.token, headers=headers
    )
    again = call(
        "messages", "POST", f"/api/v1/messages/{message['id']}:spam", token=box.token, headers=headers
    )
    assert first.status == again.status == 200 and again.headers.get("idempotent-replayed") == "true"
    missing = call("messages", "POST", f"/api/v1/messages/{message['id']}:ham", token=box.token)
    error(missing, 422, "missing_idempotency_key")
    log = call(
        "audit", "GET", "/api/v1/audit-log", token=box.org.admin_token, query={"action": "message.spam"}
    )
    entries = log.json()["data"]
    assert [e["outcome"]["replayed"] for e in entries] == [True, False]  # newest first
    assert entries[1]["target"]["id"] == message["id"] and entries[1]["outcome"]["status"] == 200


def test_openapi_lists_the_message_endpoints() -> None:
    paths = call("openapi", "GET", "/api/openapi.json", public=True).json()["paths"]
    for path, method in [
        ("/api/v1/messages", "get"),
        ("/api/v1/messages:bulk", "post"),
        ("/api/v1/messages/{message_id}", "patch"),
        ("/api/v1/messages/{message_id}", "delete"),
        ("/api/v1/messages/{message_id}:move", "post"),
        ("/api/v1/messages/{message_id}:spam", "post"),
        ("/api/v1/messages/{message_id}:ham", "post"),
        ("/api/v1/messages/{message_id}/raw", "get"),
        ("/api/v1/messages/{message_id}/attachments/{index}", "get"),
        ("/api/v1/messages/folders", "post"),
        ("/api/v1/messages/folders:empty", "post"),
        ("/api/v1/messages/folders/{path}", "delete"),
        ("/api/v1/messages/blocked-senders/{pattern}", "delete"),
        ("/api/v1/threads", "get"),
        ("/api/v1/threads/{thread_id}", "get"),
    ]:
        assert method in paths.get(path, {}), (path, method)
