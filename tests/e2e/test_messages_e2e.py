"""The Messages API over HTTP through the local stack: a domain, a mailbox and message tokens made
through the API, mail put in with smtplib (the stack's SMTP listener stands in for SES receiving),
then listing, reading, organizing and deleting through the gateway, the authorizer and the
messages function, with the bytes served from (or redirected to) the emulated S3."""

from __future__ import annotations

import os
import smtplib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pytest

from mailroom.services.message_downloads import INLINE_LIMIT_BYTES
from tests.e2e.stack_process import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"
ARRIVAL_TIMEOUT = 60.0


@dataclass
class World:
    stack: LocalStackProcess
    admin: httpx.Client
    mail: httpx.Client  # message token of the mailbox, every message scope
    other: httpx.Client  # message token of another mailbox of the same organization
    address: str
    tag: str


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["data"]


def code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json().get("error", {}).get("code")


def client(stack: LocalStackProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def mailbox_token(admin: httpx.Client, domain: str, local_part: str) -> tuple[dict[str, Any], str]:
    body = {"local_part": local_part, "domain": domain, "password": PASSWORD}
    mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
    scopes = ["messages:read", "messages:write"]
    created = post(
        admin, f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", {"name": "e2e", "scopes": scopes}
    )
    return mailbox, str(data(created, 201)["token"])


@pytest.fixture(scope="module")
def world(stack: LocalStackProcess) -> Iterator[World]:
    with client(stack, stack.admin_token) as admin:
        domain = data(
            post(admin, "/api/v1/domains", {"domain": f"msg-{uuid.uuid4().hex[:10]}.example.com"}), 201
        )
        mailbox, token = mailbox_token(admin, domain["domain"], "reader")
        _other_mailbox, other_token = mailbox_token(admin, domain["domain"], "neighbour")
        with client(stack, token) as mail, client(stack, other_token) as other:
            yield World(stack, admin, mail, other, mailbox["address"], uuid.uuid4().hex[:8])


def smtp_send(world: World, message: EmailMessage) -> str:
    """SMTP to the stack; the SES message id from the 250 answer (the object's key under inbound/)."""
    with smtplib.SMTP("127.0.0.1", world.stack.smtp_port, timeout=60) as smtp:
        smtp.ehlo("mx.sender.example.net")
        smtp.mail("ann@sender.example.net")
        status, reply = smtp.rcpt(world.address)
        assert status == 250, reply
        status, reply = smtp.data(message.as_bytes())
    assert status == 250, reply
    return reply.decode().split()[-1]


def compose(world: World, subject: str, text: str, **headers: str) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ann Example <ann@sender.example.net>"
    message["To"] = world.address
    message["Subject"] = f"{subject} {world.tag}"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def arrive(world: World, count: int) -> list[dict[str, Any]]:
    """Poll the listing until ``count`` messages of this test are there (inbound runs async)."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while True:
        found = data(world.mail.get("/api/v1/messages", params={"subject": world.tag, "per_page": 100}))
        if len(found) >= count:
            return found  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            pytest.fail(f"{len(found)} of {count} messages arrived within {ARRIVAL_TIMEOUT}s")
        time.sleep(0.3)


def folders(world: World) -> dict[str, tuple[int, int]]:
    return {f["path"]: (f["total"], f["unread"]) for f in data(world.mail.get("/api/v1/messages/folders"))}


def inbound_object(world: World, ses_id: str) -> bytes:
    """The bytes the stack's SES receiving stored for a message (inbound/<SES message id>)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=world.stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "mailbucket" in b["Name"].lower())
    return bytes(s3.get_object(Bucket=bucket, Key=f"inbound/{ses_id}")["Body"].read())


def test_read_and_organize_mail_over_http(world: World) -> None:
    tag = world.tag
    first = compose(
        world, "Plan", "Shall we meet on Tuesday?\n", Message_ID=f"<plan-{tag}@sender.example.net>"
    )
    first.add_alternative(
        '<p>Shall we meet?</p><script>alert(1)</script><img src="https://tracker.example.net/p.gif">',
        subtype="html",
    )
    smtp_send(world, first)
    arrive(world, 1)  # inbound is asynchronous: the reply must find its parent stored
    reply = compose(
        world,
        "Re: Plan",
        "Agenda attached.\n",
        Message_ID=f"<plan2-{tag}@sender.example.net>",
        In_Reply_To=f"<plan-{tag}@sender.example.net>",
        References=f"<plan-{tag}@sender.example.net>",
    )
    agenda = os.urandom(3000)
    reply.add_attachment(agenda, maintype="application", subtype="octet-stream", filename="agenda.bin")
    reply_ses_id = smtp_send(world, reply)
    smtp_send(world, compose(world, "Lunch", "Pizza?\n", Message_ID=f"<lunch-{tag}@sender.example.net>"))
    listed = arrive(world, 3)
    by_subject = {m["subject"].removesuffix(f" {tag}"): m for m in listed}
    plan, re_plan, lunch = by_subject["Plan"], by_subject["Re: Plan"], by_subject["Lunch"]
    assert plan["thread_id"] == re_plan["thread_id"] != lunch["thread_id"]
    assert folders(world)["INBOX"] == (3, 3)

    # Pages: links.next through the gateway, two per page.
    page = world.mail.get("/api/v1/messages", params={"folder": "INBOX", "per_page": 2}).json()
    assert page["meta"]["total"] == 3 and page["meta"]["last_page"] == 2
    second = world.mail.get(page["links"]["next"]).json()
    assert len(page["data"]) + len(second["data"]) == 3 and second["links"]["next"] is None

    # Reading: bodies as sent and sanitized; attachment and raw bytes identical.
    full = data(world.mail.get(f"/api/v1/messages/{plan['id']}"))
    assert "<script>" in full["html"] and "script" not in full["html_sanitized"]
    assert "tracker.example.net" not in full["html_sanitized"]
    got = world.mail.get(f"/api/v1/messages/{re_plan['id']}/attachments/0")
    assert got.status_code == 200 and got.content == agenda
    raw = world.mail.get(f"/api/v1/messages/{re_plan['id']}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("message/rfc822")
    assert raw.content == inbound_object(world, reply_ses_id)

    thread = data(world.mail.get(f"/api/v1/threads/{plan['thread_id']}"))
    assert [m["id"] for m in thread["messages"]] == [plan["id"], re_plan["id"]]
    assert data(world.mail.get("/api/v1/threads"))[0]["id"] in {plan["thread_id"], lunch["thread_id"]}

    # Organizing, with the counters following.
    patched = data(world.mail.patch(f"/api/v1/messages/{plan['id']}", json={"seen": True, "flagged": True}))
    assert patched["flags"]["seen"] and patched["flags"]["flagged"]
    assert folders(world)["INBOX"] == (3, 2)
    work = data(post(world.mail, "/api/v1/messages/folders", {"path": "Projects/2026"}), 201)
    moved = data(post(world.mail, f"/api/v1/messages/{re_plan['id']}:move", {"folder": "Projects/2026"}))
    assert moved["folder"] == "Projects/2026"
    # The folder's path in the URL, '/' percent-encoded: the gateway decodes it.
    renamed = data(world.mail.patch("/api/v1/messages/folders/Projects%2F2026", json={"path": "Work/2026"}))
    assert (renamed["key"], renamed["total"]) == (work["key"], 1)
    assert code(world.mail.delete("/api/v1/messages/folders/Work%2F2026")) == (409, "folder_not_empty")
    assert code(world.mail.delete("/api/v1/messages/folders/Trash")) == (409, "system_folder_protected")

    spam = data(post(world.mail, f"/api/v1/messages/{lunch['id']}:spam"))
    assert spam["folder"] == "Spam"
    assert data(post(world.mail, f"/api/v1/messages/{lunch['id']}:ham"))["folder"] == "INBOX"
    bulk = post(world.mail, "/api/v1/messages:bulk", {"ids": [lunch["id"], re_plan["id"]], "action": "seen"})
    assert bulk.status_code == 200 and [r["status"] for r in bulk.json()["data"]] == ["ok", "ok"]

    # Delete: to Trash, then for good; emptying what is left.
    assert world.mail.delete(f"/api/v1/messages/{lunch['id']}").json()["data"]["folder"] == "Trash"
    assert world.mail.delete(f"/api/v1/messages/{lunch['id']}").status_code == 204
    assert code(world.mail.get(f"/api/v1/messages/{lunch['id']}")) == (404, "not_found")
    data(post(world.mail, f"/api/v1/messages/{re_plan['id']}:move", {"folder": "Trash"}))
    emptied = data(post(world.mail, "/api/v1/messages/folders:empty", {"folder": "Trash"}))
    assert (emptied["removed"], emptied["more"]) == (1, False)
    assert world.mail.delete(f"/api/v1/messages/folders/{work['key']}").status_code == 204
    counts = folders(world)
    assert (counts["INBOX"], counts["Trash"]) == ((1, 0), (0, 0)) and "Work/2026" not in counts

    # Nobody else's: another mailbox's token, an ops token.
    assert code(world.other.get(f"/api/v1/messages/{plan['id']}")) == (404, "not_found")
    assert code(world.other.delete(f"/api/v1/messages/{plan['id']}")) == (404, "not_found")
    assert code(world.admin.get("/api/v1/messages")) == (403, "wrong_token_type")
    assert data(world.mail.get(f"/api/v1/messages/{plan['id']}"))["folder"] == "INBOX"


def test_large_attachments_redirect_to_the_emulated_s3(world: World) -> None:
    big = os.urandom(INLINE_LIMIT_BYTES + 4096)
    message = compose(world, "Big", "See attached.\n", Message_ID=f"<big-{world.tag}@sender.example.net>")
    message.add_attachment(big, maintype="application", subtype="octet-stream", filename="big.bin")
    smtp_send(world, message)
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while not (found := data(world.mail.get("/api/v1/messages", params={"subject": f"Big {world.tag}"}))):
        assert time.monotonic() < deadline, "the large message did not arrive"
        time.sleep(0.3)
    redirect = world.mail.get(f"/api/v1/messages/{found[0]['id']}/attachments/0")
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(world.stack.moto_url) and "X-Amz-Signature=" in location
    assert httpx.get(location, timeout=60).content == big


def test_blocked_senders_over_http(world: World) -> None:
    domain = f"@blocked-{world.tag}.net"
    created = data(post(world.mail, "/api/v1/messages/blocked-senders", {"pattern": domain}), 201)
    assert created["id"] == domain
    listed = world.mail.get("/api/v1/messages/blocked-senders").json()
    assert domain in [b["pattern"] for b in listed["data"]] and listed["meta"]["total"] >= 1
    assert world.mail.delete(f"/api/v1/messages/blocked-senders/{quote(domain, safe='')}").status_code == 204
    assert code(world.mail.delete(f"/api/v1/messages/blocked-senders/{quote(domain, safe='')}")) == (
        404,
        "not_found",
    )
