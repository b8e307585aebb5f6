"""``/api/v0/inboxes/{inboxId}/messages...`` through AgentMessagesFunction's handler under moto:
sending (the page's example, every field, custom and refused headers, attachments by content and
by URL through the SSRF guard), the list (fields, order, numbered pages, maintained totals, the
key-only skip), a message in full, labels, reply / reply-all / forward (recipients, threading),
attachment links that download, v0 errors, tenancy, and v0 agreeing with v1 on the same message."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mailroom import clock
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store import mail as store
from mailroom.store.errors import SendingPaused, SendRefused, StoreError, Throttled, Unreachable
from mailroom.store.table import Table
from tests.support.agent_mail import (
    WHEN,
    World,
    inbound,
    last_sent_mime,
    make_world,
    ok0,
    send,
    ses_recipients,
    v0,
    v0_error,
)
from tests.support.lambda_api import call
from tests.support.mailboxes import ok, post
from tests.support.sending import message_token, sent_messages

MESSAGE_KEYS = {
    "inbox_id",
    "thread_id",
    "message_id",
    "direction",
    "labels",
    "timestamp",
    "from",
    "to",
    "cc",
    "subject",
    "preview",
    "size",
}
ATTACHMENT_KEYS = {"attachment_id", "filename", "size", "content_type", "content_disposition", "content_id"}
FULL_KEYS = MESSAGE_KEYS | {
    "reply_to",
    "bcc",
    "text",
    "html",
    "in_reply_to",
    "references",
    "headers",
    "attachments",
    "created_at",
    "updated_at",
}


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(org, table, monkeypatch)


# --- send ----------------------------------------------------------------------------------------


def test_send_the_page_example_then_list_and_read_it(world: World) -> None:
    alice = world.alice
    example = {
        "to": "recipient@example.com",
        "subject": "Hello from agentmail",
        "text": "This is a test email.",
    }
    sent = send(world, alice, example)
    assert sent["message_id"].startswith("msg_") and sent["thread_id"].startswith("thr_")

    ses, mime = last_sent_mime()
    assert ses_recipients(ses) == {"recipient@example.com"}
    assert mime["From"] == "Agent One <agent-1@example.com>" and mime["Subject"] == example["subject"]

    listed = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages"))
    assert set(listed) == {"data", "total", "page", "page_size"}
    assert (listed["total"], listed["page"], listed["page_size"]) == (1, 1, 20)
    (item,) = listed["data"]
    assert set(item) == MESSAGE_KEYS
    stored = store.get_message(world.table, alice.org_id, alice.id, sent["message_id"])
    assert stored is not None
    assert item == {
        "inbox_id": alice.id,
        "thread_id": sent["thread_id"],
        "message_id": sent["message_id"],
        "direction": "outbound",
        "labels": [],
        "timestamp": stored["received_at"],
        "from": "Agent One <agent-1@example.com>",
        "to": ["recipient@example.com"],
        "cc": None,
        "subject": "Hello from agentmail",
        "preview": "This is a test email.",
        "size": stored["size"],
    }
    assert item["size"] > 0

    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{sent['message_id']}"))
    assert set(full) == FULL_KEYS
    assert {k: full[k] for k in MESSAGE_KEYS} == item
    assert full["reply_to"] is None and full["bcc"] is None and full["cc"] is None
    assert full["text"] == "This is a test email." and full["html"] is None  # exactly as sent
    assert full["in_reply_to"] is None and full["references"] is None
    assert full["headers"] == {}  # nothing beyond what the fields show, as in the page's example
    assert full["attachments"] == []
    assert full["created_at"] == full["updated_at"]
    assert clock.parse_iso(full["timestamp"]) <= clock.parse_iso(full["created_at"])


def test_send_with_every_field(world: World) -> None:
    alice = world.alice
    content = b"%PDF-1.4 fake\n" * 10
    body = {
        "to": ["Recipient <recipient@example.com>", "second@example.com"],
        "cc": "cc@example.com",
        "bcc": ["bcc@example.com"],
        "reply_to": "reply@example.com",
        "subject": "Hello",
        "text": "Plain text body",
        "html": "<h1>HTML body</h1>",
        "labels": ["important"],
        "attachments": [
            {
                "filename": "doc.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(content).decode(),
            }
        ],
        "headers": {"X-Custom": "value"},
    }
    sent = send(world, alice, body)
    ses, mime = last_sent_mime()
    assert mime["X-Custom"] == "value" and mime["Reply-To"] == "reply@example.com"
    assert "bcc@example.com" not in ses.raw_data  # envelope only
    attachments = list(mime.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["doc.pdf"]
    assert attachments[0].get_content() == content

    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{sent['message_id']}"))
    assert full["to"] == ["Recipient <recipient@example.com>", "second@example.com"]
    assert full["cc"] == ["cc@example.com"] and full["bcc"] == ["bcc@example.com"]
    assert full["reply_to"] == ["reply@example.com"]
    assert full["labels"] == ["important"]
    assert full["html"] == "<h1>HTML body</h1>" and full["text"] == "Plain text body"
    assert full["headers"] == {"X-Custom": "value"}
    (attachment,) = full["attachments"]
    assert set(attachment) == ATTACHMENT_KEYS
    assert (attachment["filename"], attachment["size"], attachment["content_type"]) == (
        "doc.pdf",
        len(content),
        "application/pdf",
    )
    assert attachment["content_disposition"] == "attachment" and attachment["content_id"] is None


@pytest.mark.parametrize("header", ["From", "to", "Message-ID", "Date", "Subject", "In-Reply-To"])
def test_reserved_headers_are_refused_before_anything_is_sent(world: World, header: str) -> None:
    before = len(sent_messages())
    result = v0(
        world.token,
        "POST",
        f"/inboxes/{world.alice.id}/messages/send",
        {"to": "x@example.com", "text": "hi", "headers": {header: "evil@example.com"}},
    )
    error = v0_error(result, 422, "ValidationError")
    assert "cannot be overridden" in error["message"] and header in error["message"]
    assert error["errors"] == [{"field": "headers", "message": error["message"]}]
    assert len(sent_messages()) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "no recipient"}, "to"),
        ({"to": "x@example.com", "unknown": 1}, "unknown"),
        ({"to": ["x@example.com"] * 101}, "to"),
        ({"to": "not an address"}, "to"),
        (
            {"to": "x@example.com", "attachments": [{"filename": "a.txt", "content": "@@not base64"}]},
            "content",
        ),
        ({"to": "x@example.com", "attachments": [{"filename": "a.txt"}]}, "attachments.0"),
        (
            {
                "to": "x@example.com",
                "attachments": [{"filename": "a", "content": "YQ==", "url": "https://x.io/a"}],
            },
            "attachments.0",
        ),
        ({"to": "x@example.com", "headers": {"X-Evil": "a\r\nBcc: b@example.com"}}, "headers"),
    ],
)
def test_invalid_sends_are_422_in_the_v0_shape(world: World, body: dict[str, Any], field: str) -> None:
    error = v0_error(
        v0(world.token, "POST", f"/inboxes/{world.alice.id}/messages/send", body), 422, "ValidationError"
    )
    assert any(field in e["field"] for e in error["errors"]), error


@pytest.mark.parametrize(
    ("failure", "status", "name"),
    [
        (SendRefused("Message rejected: virus"), 422, "ValidationError"),
        (Throttled("Maximum sending rate exceeded"), 503, "ServiceUnavailableError"),
        (SendingPaused("Sending paused for this account"), 503, "ServiceUnavailableError"),
        (Unreachable("Could not connect to the endpoint URL"), 502, "BadGatewayError"),
    ],
)
def test_a_send_ses_does_not_take_is_a_documented_v0_error_and_stores_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, failure: StoreError, status: int, name: str
) -> None:
    from mailroom.store import ses_outbound

    def failing(*args: Any, **kwargs: Any) -> str:
        raise failure

    monkeypatch.setattr(ses_outbound, "send_raw", failing)
    path = f"/inboxes/{world.alice.id}/messages/send"
    v0_error(v0(world.token, "POST", path, {"to": "x@example.com", "text": "hi"}), status, name)
    assert ok0(v0(world.token, "GET", f"/inboxes/{world.alice.id}/messages"))["total"] == 0


# --- attachments by URL --------------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, tuple[int, str, bytes]] = {}
    requests_seen: list[str] = []

    def do_GET(self) -> None:
        self.requests_seen.append(self.path)
        status, content_type, payload = self.files.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if status in (301, 302):
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        del args


@pytest.fixture
def file_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    _Files.requests_seen.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_allowed(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_url_attachments_are_fetched_when_allowed(
    world: World, file_server: str, private_allowed: None
) -> None:
    payload = bytes(range(256)) * 40
    _Files.files = {"/files/report%20q1.pdf": (200, "application/pdf; name=x", payload)}
    body = {
        "to": "x@example.com",
        "text": "see attached",
        "attachments": [{"url": f"{file_server}/files/report%20q1.pdf"}],
    }
    sent = send(world, world.alice, body)
    _ses, mime = last_sent_mime()
    (part,) = list(mime.iter_attachments())
    assert part.get_content() == payload
    assert part.get_filename() == "report q1.pdf" and part.get_content_type() == "application/pdf"
    full = ok0(v0(world.token, "GET", f"/inboxes/{world.alice.id}/messages/{sent['message_id']}"))
    assert [(a["filename"], a["size"]) for a in full["attachments"]] == [("report q1.pdf", len(payload))]

    # The caller's filename and type win over the URL's and the server's.
    body["attachments"] = [
        {
            "url": f"{file_server}/files/report%20q1.pdf",
            "filename": "r.bin",
            "content_type": "application/x-r",
        }
    ]
    send(world, world.alice, body)
    (part,) = list(last_sent_mime()[1].iter_attachments())
    assert (part.get_filename(), part.get_content_type()) == ("r.bin", "application/x-r")


@pytest.mark.parametrize(
    ("served", "fragment"),
    [
        ((404, "text/plain", b"missing"), "HTTP 404"),
        ((302, "text/plain", b""), "redirects are not followed"),
    ],
)
def test_url_attachments_that_cannot_be_fetched_are_422(
    world: World, file_server: str, private_allowed: None, served: tuple[int, str, bytes], fragment: str
) -> None:
    _Files.files = {"/a": served}
    before = len(sent_messages())
    result = v0(
        world.token,
        "POST",
        f"/inboxes/{world.alice.id}/messages/send",
        {"to": "x@example.com", "attachments": [{"url": f"{file_server}/a", "filename": "a"}]},
    )
    error = v0_error(result, 422, "ValidationError")
    assert fragment in error["message"] and error["errors"][0]["field"] == "attachments.0.url"
    assert len(sent_messages()) == before


def test_url_attachments_over_the_message_limit_are_422(
    world: World, file_server: str, private_allowed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.mail import compose

    monkeypatch.setattr(compose, "MAX_MESSAGE_BYTES", 1000)
    _Files.files = {"/big": (200, "application/octet-stream", b"x" * 1500)}
    result = v0(
        world.token,
        "POST",
        f"/inboxes/{world.alice.id}/messages/send",
        {"to": "x@example.com", "attachments": [{"url": f"{file_server}/big"}]},
    )
    assert "larger than the 1000-byte" in v0_error(result, 422, "ValidationError")["message"]


def test_url_attachments_are_refused_by_the_ssrf_guard_when_private_is_not_allowed(
    world: World, file_server: str
) -> None:
    _Files.files = {"/a": (200, "text/plain", b"secret")}
    port = file_server.rsplit(":", 1)[1]
    for url, fragment in (
        (f"{file_server}/a", "must use https"),  # http: never outside the local stack
        (f"https://127.0.0.1:{port}/a", "not allowed (loopback)"),  # refused before connecting
        ("https://user:pw@example.com/a", "credentials"),
    ):
        result = v0(
            world.token,
            "POST",
            f"/inboxes/{world.alice.id}/messages/send",
            {"to": "x@example.com", "attachments": [{"url": url, "filename": "a"}]},
        )
        error = v0_error(result, 422, "ValidationError")
        assert fragment in error["message"], (url, error)
    assert _Files.requests_seen == []  # nothing reached the private host


# --- listing -------------------------------------------------------------------------------------


def test_list_is_newest_first_in_numbered_pages_with_a_maintained_total(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = world.alice
    for i in range(23):
        alice.receive(
            inbound(f"Inbound {i}", message_id=f"<in{i}@example.net>"), at=WHEN + timedelta(minutes=i)
        )
    sent = send(world, alice, {"to": "x@example.com", "subject": "Outbound", "text": "out"})
    expected = [sent["message_id"]]
    expected += [
        m["id"]
        for m in sorted(
            store.list_messages(world.table, alice.org_id, alice.id, per_page=100, cursor=None).items,
            key=lambda m: m["received_at"],
            reverse=True,
        )
        if m["id"] != sent["message_id"]
    ]
    assert len(expected) == 24

    first = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages"))
    assert (first["total"], first["page"], first["page_size"], len(first["data"])) == (24, 1, 20, 20)
    assert first["data"][0]["direction"] == "outbound" and first["data"][1]["direction"] == "inbound"
    second = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages", page=2))
    assert (second["total"], second["page"], len(second["data"])) == (24, 2, 4)
    assert [m["message_id"] for m in first["data"] + second["data"]] == expected
    timestamps = [m["timestamp"] for m in first["data"] + second["data"]]
    assert timestamps == sorted(timestamps, reverse=True)
    beyond = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages", page=4))
    assert beyond == {"data": [], "total": 24, "page": 4, "page_size": 20}

    seen: list[str] = []
    for page in range(1, 6):
        body = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages", page=page, page_size=5))
        assert body["page_size"] == 5
        seen += [m["message_id"] for m in body["data"]]
    assert seen == expected

    # Page 3 of 5 skips 10 messages with key-only Queries, then reads 5 in full.
    queries: list[dict[str, Any]] = []
    client = aws.dynamodb()
    real_query = client.query

    def spy(**kwargs: Any) -> Any:
        queries.append(kwargs)
        return real_query(**kwargs)

    monkeypatch.setattr(client, "query", spy)
    body = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages", page=3, page_size=5))
    assert [m["message_id"] for m in body["data"]] == expected[10:15]
    skips = [q for q in queries if "ProjectionExpression" in q]
    reads = [q for q in queries if "ProjectionExpression" not in q and "MSG#" in str(q)]
    assert [q["Limit"] for q in skips] == [10] and [q["Limit"] for q in reads] == [5]
    assert sorted(
        skips[0]["ExpressionAttributeNames"][n] for n in skips[0]["ProjectionExpression"].split(", ")
    ) == [
        "PK",
        "SK",
    ]


@pytest.mark.parametrize("query", [{"page": 0}, {"page_size": 101}, {"page_size": 0}, {"page": "x"}])
def test_bad_page_parameters_are_422(world: World, query: dict[str, Any]) -> None:
    v0_error(v0(world.token, "GET", f"/inboxes/{world.alice.id}/messages", **query), 422, "ValidationError")


def test_page_size_100_is_accepted(world: World) -> None:
    body = ok0(v0(world.token, "GET", f"/inboxes/{world.alice.id}/messages", page_size=100))
    assert (body["data"], body["total"], body["page_size"]) == ([], 0, 100)


# --- one message, labels -------------------------------------------------------------------------


def test_an_inbound_message_in_full(world: World) -> None:
    alice = world.alice
    raw = inbound(
        "Question",
        message_id="<q1@example.net>",
        extra=[
            "Reply-To: Replies <replies@example.net>",
            "X-Mailer: Mutt",
            "In-Reply-To: <older@example.net>",
        ],
        attachment=("notes.txt", "text/plain", b"some notes"),
    )
    stored = alice.receive(raw, at=WHEN)
    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{stored['id']}"))
    assert full["direction"] == "inbound" and full["timestamp"] == "2026-03-01T12:00:00.000Z"
    assert full["from"] == "Carol <carol@example.net>"
    assert full["to"] == ["Agent One <agent-1@example.com>", "dave@example.org"]
    assert full["cc"] == ["erin@example.org"] and full["bcc"] is None
    assert full["reply_to"] == ["Replies <replies@example.net>"]
    assert full["in_reply_to"] == "<older@example.net>" and full["references"] is None
    assert full["headers"]["X-Mailer"] == "Mutt"
    assert not {"From", "To", "Subject", "Message-ID", "Content-Type", "MIME-Version"} & set(full["headers"])
    assert [(a["filename"], a["size"], a["content_type"]) for a in full["attachments"]] == [
        ("notes.txt", 10, "text/plain")
    ]


def test_unknown_and_malformed_message_ids_are_404(world: World) -> None:
    for message_id in ("msg_01JAAAAAAAAAAAAAAAAAAAAAAA", "nope", "thr_01JAAAAAAAAAAAAAAAAAAAAAAA"):
        error = v0_error(
            v0(world.token, "GET", f"/inboxes/{world.alice.id}/messages/{message_id}"), 404, "NotFoundError"
        )
        assert error["message"] == "Message not found"
    v0_error(
        v0(world.token, "PATCH", f"/inboxes/{world.alice.id}/messages/nope", {"labels": []}),
        404,
        "NotFoundError",
    )
    v0_error(v0(world.token, "GET", "/inboxes/mbx_nope/messages"), 404, "NotFoundError")


def test_patch_replaces_labels_and_returns_the_message(world: World) -> None:
    alice = world.alice
    stored = alice.receive(inbound("Label me", message_id="<l1@example.net>"), labels=["inbox-rule"])
    path = f"/inboxes/{alice.id}/messages/{stored['id']}"
    patched = ok0(v0(world.token, "PATCH", path, {"labels": ["important", "follow-up"]}))
    assert set(patched) == FULL_KEYS
    assert patched["message_id"] == stored["id"] and patched["labels"] == ["important", "follow-up"]
    assert patched["updated_at"] >= patched["created_at"] and patched["text"].strip() == "Hi there!"
    assert ok0(v0(world.token, "GET", path))["labels"] == ["important", "follow-up"]
    # The thread shows the labels its messages were given.
    thread = store.get_thread(world.table, alice.org_id, alice.id, stored["thread_id"])
    assert thread is not None and {"important", "follow-up", "inbox-rule"} <= set(thread["labels"])
    assert ok0(v0(world.token, "PATCH", path, {"labels": []}))["labels"] == []

    for bad in (
        {},
        {"labels": "important"},
        {"labels": [""]},
        {"labels": ["x"] * 51},
        {"labels": [], "seen": True},
    ):
        v0_error(v0(world.token, "PATCH", path, bad), 422, "ValidationError")


# --- reply, reply-all, forward -------------------------------------------------------------------


def test_reply_goes_to_the_sender_only_and_threads(world: World) -> None:
    alice = world.alice
    original = alice.receive(inbound("Hello", message_id="<hello@example.net>"), at=WHEN)
    replied = ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{alice.id}/messages/{original['id']}/reply",
            {"text": "Thanks for your email!", "labels": ["replied"], "cc": "boss@example.org"},
        )
    )
    assert set(replied) == {"message_id", "thread_id"} and replied["thread_id"] == original["thread_id"]
    ses, mime = last_sent_mime()
    assert ses_recipients(ses) == {"carol@example.net", "boss@example.org"}
    assert mime["To"] == "Carol <carol@example.net>" and mime["Cc"] == "boss@example.org"
    assert mime["In-Reply-To"] == "<hello@example.net>" and mime["References"] == "<hello@example.net>"
    assert mime["Subject"] == "Re: Hello" and mime.get_content().strip() == "Thanks for your email!"
    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{replied['message_id']}"))
    assert full["labels"] == ["replied"] and full["in_reply_to"] == "<hello@example.net>"
    assert full["references"] == ["<hello@example.net>"] and full["direction"] == "outbound"
    assert full["html"] is None
    answered = store.get_message(world.table, alice.org_id, alice.id, original["id"])
    assert answered is not None and answered["flags"]["answered"] is True


def test_reply_goes_to_reply_to_when_set_and_quotes_when_no_body_is_given(world: World) -> None:
    alice = world.alice
    original = alice.receive(
        inbound("Hello", message_id="<rt@example.net>", extra=["Reply-To: list@example.net"], text="line one")
    )
    ok0(v0(world.token, "POST", f"/inboxes/{alice.id}/messages/{original['id']}/reply", {}))
    ses, mime = last_sent_mime()
    assert ses_recipients(ses) == {"list@example.net"} and mime["Cc"] is None
    assert "> line one" in mime.get_content()


def test_reply_all_goes_to_everyone_but_the_inbox(world: World) -> None:
    alice = world.alice
    original = alice.receive(
        inbound(
            "Team",
            message_id="<team@example.net>",
            to="Agent One <AGENT-1@example.com>, dave@example.org",
            cc="erin@example.org, agent-1@example.com",
        )
    )
    replied = ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{alice.id}/messages/{original['id']}/reply-all",
            {"text": "Thanks, everyone!", "html": "<p>Thanks, everyone!</p>", "cc": "extra-cc@example.com"},
        )
    )
    assert replied["thread_id"] == original["thread_id"]
    ses, mime = last_sent_mime()
    assert ses_recipients(ses) == {
        "carol@example.net",
        "dave@example.org",
        "erin@example.org",
        "extra-cc@example.com",
    }
    assert mime["To"] == "Carol <carol@example.net>, dave@example.org"
    assert mime["Cc"] == "erin@example.org, extra-cc@example.com"
    assert mime["In-Reply-To"] == "<team@example.net>"
    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{replied['message_id']}"))
    assert full["html"] == "<p>Thanks, everyone!</p>" and full["text"] == "Thanks, everyone!"


def test_forward_starts_a_new_thread_with_the_original_content_and_attachments(world: World) -> None:
    alice = world.alice
    original = alice.receive(
        inbound(
            "Report",
            message_id="<report@example.net>",
            text="The numbers.",
            attachment=("q1.csv", "text/csv", b"a,b\n1,2\n"),
        )
    )
    forwarded = ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{alice.id}/messages/{original['id']}/forward",
            {"to": "forward@example.com", "labels": ["forwarded"]},
        )
    )
    assert forwarded["thread_id"] != original["thread_id"]
    ses, mime = last_sent_mime()
    assert ses_recipients(ses) == {"forward@example.com"}
    assert mime["Subject"] == "Fwd: Report" and mime["In-Reply-To"] is None
    body = mime.get_body(preferencelist=("plain",))
    assert body is not None and "The numbers." in body.get_content()
    assert "Forwarded message" in body.get_content()
    assert [(p.get_filename(), p.get_content()) for p in mime.iter_attachments()] == [
        ("q1.csv", "a,b\n1,2\n")
    ]

    overridden = ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{alice.id}/messages/{original['id']}/forward",
            {"to": ["forward@example.com"], "cc": "cc@example.com", "text": "FYI, see below."},
        )
    )
    _ses, mime = last_sent_mime()
    body = mime.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().strip() == "FYI, see below."
    assert [p.get_filename() for p in mime.iter_attachments()] == ["q1.csv"]  # kept with an override
    assert overridden["thread_id"] not in (original["thread_id"], forwarded["thread_id"])
    full = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{forwarded['message_id']}"))
    assert full["labels"] == ["forwarded"] and full["subject"] == "Fwd: Report"

    v0_error(
        v0(world.token, "POST", f"/inboxes/{alice.id}/messages/{original['id']}/forward", {"text": "no to"}),
        422,
        "ValidationError",
    )


def test_reply_to_an_unknown_message_is_404(world: World) -> None:
    for mode in ("reply", "reply-all", "forward"):
        body = {"to": "x@example.com"} if mode == "forward" else {}
        v0_error(
            v0(
                world.token,
                "POST",
                f"/inboxes/{world.alice.id}/messages/msg_01JAAAAAAAAAAAAAAAAAAAAAAA/{mode}",
                body,
            ),
            404,
            "NotFoundError",
        )


# --- attachments ---------------------------------------------------------------------------------


def test_attachment_metadata_and_a_download_url_that_downloads(world: World) -> None:
    alice = world.alice
    payload = b"\x00binary\xffbytes" * 100
    stored = alice.receive(
        inbound(
            "Files", message_id="<files@example.net>", attachment=("résumé.pdf", "application/pdf", payload)
        )
    )
    (attachment_id,) = [
        a["attachment_id"]
        for a in ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{stored['id']}"))["attachments"]
    ]
    before = clock.utcnow()
    meta = ok0(
        v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{stored['id']}/attachments/{attachment_id}")
    )
    assert set(meta) == ATTACHMENT_KEYS | {"download_url", "expires_at"}
    assert (meta["attachment_id"], meta["filename"], meta["size"]) == (
        attachment_id,
        "résumé.pdf",
        len(payload),
    )
    assert (meta["content_type"], meta["content_disposition"], meta["content_id"]) == (
        "application/pdf",
        "attachment",
        None,
    )
    expires = clock.parse_iso(meta["expires_at"])
    assert timedelta(minutes=59) < expires - before <= timedelta(hours=1, seconds=5)
    query = parse_qs(urlsplit(meta["download_url"]).query)
    assert query["X-Amz-Expires"] == ["3600"]
    assert query["response-content-disposition"][0].startswith("attachment; filename=")
    download = requests.get(meta["download_url"], timeout=10)
    assert download.status_code == 200 and download.content == payload

    v0_error(
        v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{stored['id']}/attachments/att_nope"),
        404,
        "NotFoundError",
    )


# --- tenancy and tokens --------------------------------------------------------------------------


def test_inboxes_of_other_organizations_and_other_mailboxes_are_404(
    world: World, other_org: NewOrganization
) -> None:
    alice = world.alice
    stored = alice.receive(inbound("Private", message_id="<private@example.net>"))
    paths = [
        ("GET", f"/inboxes/{alice.id}/messages", None),
        ("GET", f"/inboxes/{alice.id}/messages/{stored['id']}", None),
        ("PATCH", f"/inboxes/{alice.id}/messages/{stored['id']}", {"labels": ["x"]}),
        ("POST", f"/inboxes/{alice.id}/messages/send", {"to": "x@example.com", "text": "as alice"}),
        ("POST", f"/inboxes/{alice.id}/messages/{stored['id']}/reply", {"text": "as alice"}),
    ]
    before = len(sent_messages())
    for method, path, body in paths:
        v0_error(v0(other_org.admin_token, method, path, body), 404, "NotFoundError")
    # Bob's inbox does not hold Alice's message.
    v0_error(v0(world.token, "GET", f"/inboxes/{world.bob.id}/messages/{stored['id']}"), 404, "NotFoundError")
    # A message token reaches its own inbox only.
    bob_token = message_token(world.org, world.bob.id)
    alice_token = message_token(world.org, alice.id)
    for method, path, body in paths:
        v0_error(v0(bob_token, method, path, body), 404, "NotFoundError")
    assert ok0(v0(alice_token, "GET", f"/inboxes/{alice.id}/messages"))["total"] == 1
    assert len(sent_messages()) == before
    assert store.get_message(world.table, alice.org_id, alice.id, stored["id"])["labels"] == []  # type: ignore[index]


def test_scopes_of_the_same_action_are_needed(world: World) -> None:
    alice = world.alice
    reader = ok(
        post("tokens", world.token, "/api/v1/tokens", {"name": "reader", "scopes": ["mailboxes:read"]}), 201
    )["token"]
    assert ok0(v0(reader, "GET", f"/inboxes/{alice.id}/messages"))["total"] == 0
    error = v0_error(
        v0(reader, "POST", f"/inboxes/{alice.id}/messages/send", {"to": "x@example.com"}),
        403,
        "ForbiddenError",
    )
    assert "mailboxes:write" in error["message"]
    read_only = message_token(world.org, alice.id, ["messages:read"])
    v0_error(
        v0(read_only, "POST", f"/inboxes/{alice.id}/messages/send", {"to": "x@example.com"}),
        403,
        "ForbiddenError",
    )


# --- v0 and v1 agree -----------------------------------------------------------------------------


def test_v0_and_v1_show_the_same_message(world: World) -> None:
    alice = world.alice
    original = alice.receive(inbound("Agree", message_id="<agree@example.net>", text="Same text"), at=WHEN)
    ok0(
        v0(
            world.token,
            "PATCH",
            f"/inboxes/{alice.id}/messages/{original['id']}",
            {"labels": ["both"]},
        )
    )
    token = message_token(world.org, alice.id)
    v1 = call("messages", "GET", f"/api/v1/messages/{original['id']}", token=token)
    assert v1.status == 200, v1.body[:500]
    one = v1.json()["data"]
    zero = ok0(v0(world.token, "GET", f"/inboxes/{alice.id}/messages/{original['id']}"))
    assert (zero["message_id"], zero["thread_id"], zero["inbox_id"]) == (
        one["id"],
        one["thread_id"],
        one["mailbox_id"],
    )
    assert (zero["subject"], zero["from"], zero["to"], zero["labels"]) == (
        one["subject"],
        one["from"],
        one["to"],
        one["labels"],
    )
    assert (zero["timestamp"], zero["text"], zero["preview"], zero["size"]) == (
        one["received_at"],
        one["text"],
        one["preview"],
        one["size"],
    )
    assert zero["cc"] == (one["cc"] or None) and zero["in_reply_to"] == one["in_reply_to"]
    assert [a["attachment_id"] for a in zero["attachments"]] == [
        a["attachment_id"] for a in one["attachments"]
    ]
