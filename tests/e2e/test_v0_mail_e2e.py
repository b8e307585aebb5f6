"""v0 mail end to end, over HTTP against the local stack: inbox A sends to inbox B (both hosted, so
SES emulated by moto delivers it back through the receipt rule), both inboxes list it, B replies,
A's thread holds both in order, and an attachment sent by content and one sent by URL download
byte for byte through their pre-signed ``download_url`` from moto's S3 on loopback."""

from __future__ import annotations

import base64
import http.server
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess
from tests.support.agentmail_checks import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Inboxes:
    api: httpx.Client  # the stack's admin (ops) token on /api/v0
    a: dict[str, Any]  # v1 mailboxes: id is the v0 inbox id
    b: dict[str, Any]


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url.path, response.status_code, response.text)
    return response.json()


@pytest.fixture(scope="module")
def inboxes(stack: LocalStackProcess) -> Iterator[Inboxes]:
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as admin:

        def create(path: str, payload: dict[str, Any]) -> dict[str, Any]:
            response = admin.post(path, json=payload, headers={"Idempotency-Key": str(uuid.uuid4())})
            return dict(body(response, 201)["data"])

        domain = create("/api/v1/domains", {"domain": f"v0-{uuid.uuid4().hex[:10]}.example.com"})["domain"]
        a = create(
            "/api/v1/mailboxes",
            {"local_part": "agent-1", "domain": domain, "name": "Agent One", "password": PASSWORD},
        )
        b = create("/api/v1/mailboxes", {"local_part": "agent-2", "domain": domain, "password": PASSWORD})
        with httpx.Client(base_url=f"{stack.api_url}/api/v0", headers=headers, timeout=30) as api:
            yield Inboxes(api, a, b)


def find(api: httpx.Client, inbox_id: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    page = body(api.get(f"/inboxes/{inbox_id}/messages", params={"page_size": 100}))
    return next((m for m in page["data"] if match(m)), None)


@pytest.fixture
def file_server() -> Iterator[tuple[str, bytes]]:
    payload = os.urandom(3000)

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            del args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pics/chart.png", payload
    server.shutdown()
    server.server_close()


def test_send_receive_reply_thread_and_download(inboxes: Inboxes, file_server: tuple[str, bytes]) -> None:
    api, a, b = inboxes.api, inboxes.a, inboxes.b
    subject = f"Plans {uuid.uuid4().hex[:8]}"
    content = b"%PDF-1.4\n" + os.urandom(2048)
    url, fetched = file_server
    sent = body(
        api.post(
            f"/inboxes/{a['id']}/messages/send",
            json={
                "to": b["address"],
                "subject": subject,
                "text": "Thursday?",
                "labels": ["outreach"],
                "headers": {"X-Campaign": "e2e"},
                "attachments": [
                    {
                        "filename": "plan.pdf",
                        "content_type": "application/pdf",
                        "content": base64.b64encode(content).decode(),
                    },
                    {"url": url},  # the local stack allows private hosts, like its webhooks
                ],
            },
        )
    )
    assert set(sent) == {"message_id", "thread_id"}

    received = wait_for(
        "B to receive A's message", lambda: find(api, b["id"], lambda m: m["subject"] == subject)
    )
    assert received["direction"] == "inbound" and received["from"] == f"Agent One <{a['address']}>"
    assert received["to"] == [b["address"]] and received["cc"] is None
    outbound = find(api, a["id"], lambda m: m["message_id"] == sent["message_id"])
    assert outbound is not None and outbound["direction"] == "outbound" and outbound["labels"] == ["outreach"]
    assert outbound["thread_id"] == sent["thread_id"]

    full = body(api.get(f"/inboxes/{b['id']}/messages/{received['message_id']}"))
    assert full["text"].strip() == "Thursday?" and full["headers"]["X-Campaign"] == "e2e"
    by_name = {x["filename"]: x for x in full["attachments"]}
    assert set(by_name) == {"plan.pdf", "chart.png"}
    for name, expected in (("plan.pdf", content), ("chart.png", fetched)):
        meta = body(
            api.get(
                f"/inboxes/{b['id']}/messages/{received['message_id']}/attachments/{by_name[name]['attachment_id']}"
            )
        )
        assert meta["size"] == len(expected) and meta["filename"] == name
        download = httpx.get(meta["download_url"], timeout=30)  # pre-signed: no token
        assert download.status_code == 200, download.text[:300]
        assert download.content == expected
        assert download.headers["content-disposition"].startswith("attachment")

    replied = body(
        api.post(f"/inboxes/{b['id']}/messages/{received['message_id']}/reply", json={"text": "Yes!"})
    )
    assert replied["thread_id"] == received["thread_id"]
    answer = wait_for(
        "A to receive B's reply", lambda: find(api, a["id"], lambda m: m["subject"] == f"Re: {subject}")
    )
    assert answer["thread_id"] == sent["thread_id"] and answer["direction"] == "inbound"

    thread = body(api.get(f"/inboxes/{a['id']}/threads/{sent['thread_id']}"))
    assert thread["message_count"] == 2 and thread["subject"] == subject
    assert [(m["message_id"], m["direction"]) for m in thread["messages"]] == [
        (sent["message_id"], "outbound"),
        (answer["message_id"], "inbound"),
    ]
    assert thread["messages"][1]["text"].strip() == "Yes!"
    threads = body(api.get(f"/inboxes/{a['id']}/threads"))
    listed = next(t for t in threads["data"] if t["thread_id"] == sent["thread_id"])
    assert listed["last_message_id"] == answer["message_id"] and listed["message_count"] == 2
    assert listed["sent_timestamp"] is not None and listed["received_timestamp"] is not None


def test_errors_over_http_are_v0_shaped(inboxes: Inboxes) -> None:
    api, a = inboxes.api, inboxes.a
    missing = api.get(f"/inboxes/{a['id']}/messages/msg_01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert missing.status_code == 404 and missing.json() == {
        "name": "NotFoundError",
        "message": "Message not found",
    }
    refused = api.post(
        f"/inboxes/{a['id']}/messages/send", json={"to": "x@example.com", "headers": {"Message-ID": "<x@y>"}}
    )
    assert refused.status_code == 422 and refused.json()["name"] == "ValidationError"
    assert api.delete(f"/inboxes/{a['id']}/threads/thr_01JAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404
