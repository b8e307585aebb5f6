"""Inbound mail end to end: smtplib to the local stack's SMTP listener (SES receiving) → the receipt
rule of template.yaml stores the message in the mail bucket and invokes the inbound function → the
message is read back through the Messages API with a message token, threaded, with its attachments
and its raw bytes identical to what was sent."""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, TypeVar

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
PASSWORD = "Correct-Horse-42"
ARRIVAL_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass
class Inbox:
    stack: LocalStackProcess
    admin: httpx.Client
    reader: httpx.Client  # a message token of the mailbox
    domain: dict[str, Any]
    mailbox: dict[str, Any]

    @property
    def address(self) -> str:
        return str(self.mailbox["address"])


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["data"]


def wait_for(what: str, probe: Callable[[], T | None]) -> T:
    """Poll until ``probe`` returns something (the inbound function runs asynchronously, as the
    receipt rule's Event invocation does)."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def inbox(stack: LocalStackProcess) -> Iterator[Inbox]:
    with httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
    ) as admin:
        domain = data(
            post(admin, "/api/v1/domains", {"domain": f"in-{uuid.uuid4().hex[:10]}.example.com"}), 201
        )
        body = {"local_part": "inbox", "domain": domain["domain"], "password": PASSWORD}
        mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
        token = data(
            post(
                admin,
                f"/api/v1/mailboxes/{mailbox['id']}/message-tokens",
                {"name": "e2e inbound", "scopes": ["messages:read"]},
            ),
            201,
        )["token"]
        with httpx.Client(
            base_url=stack.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            follow_redirects=True,  # large bodies are pre-signed S3 redirects (to moto)
        ) as reader:
            yield Inbox(stack, admin, reader, domain, mailbox)


def send(inbox: Inbox, raw: bytes, recipients: list[str], sender: str = "ann@sender.example.net") -> str:
    """SMTP to the stack; the SES message id from the 250 answer."""
    with smtplib.SMTP("127.0.0.1", inbox.stack.smtp_port, timeout=30) as smtp:
        smtp.ehlo("mx.sender.example.net")
        smtp.mail(sender)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            assert code == 250, reply
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return reply.decode().split()[-1]


def listed(inbox: Inbox, **params: Any) -> list[dict[str, Any]]:
    response = inbox.reader.get("/api/v1/messages", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def arrived(inbox: Inbox, subject: str, **params: Any) -> dict[str, Any]:
    return wait_for(
        f"'{subject}'", lambda: next((m for m in listed(inbox, **params) if m["subject"] == subject), None)
    )


def s3_inbound(inbox: Inbox, ses_id: str) -> bytes:
    s3 = boto3.client(
        "s3",
        endpoint_url=inbox.stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return bytes(s3.get_object(Bucket="mailroom-local-mailbucket", Key=f"inbound/{ses_id}")["Body"].read())


def test_mail_sent_over_smtp_is_listed_threaded_with_identical_attachments_and_raw(inbox: Inbox) -> None:
    tag = uuid.uuid4().hex[:8]
    first = EmailMessage(policy=SMTP)
    first["From"] = "Ann Example <ann@sender.example.net>"
    first["To"] = inbox.address
    first["Subject"] = f"Plan {tag}"
    first["Message-ID"] = f"<plan-{tag}@sender.example.net>"
    first.set_content("Shall we meet on Tuesday?\n")
    reply = EmailMessage(policy=SMTP)
    reply["From"] = "Ann Example <ann@sender.example.net>"
    reply["To"] = inbox.address
    reply["Subject"] = f"Re: Plan {tag}"
    reply["Message-ID"] = f"<plan2-{tag}@sender.example.net>"
    reply["In-Reply-To"] = first["Message-ID"]
    reply["References"] = first["Message-ID"]
    reply.set_content("Agenda attached.\n")
    binary = bytes(range(256)) * 400  # 100 KB of every byte value
    text_file = "naïve café, ünïcödé\r\n".encode() * 50
    reply.add_attachment(binary, maintype="application", subtype="octet-stream", filename="data.bin")
    reply.add_attachment(text_file, maintype="text", subtype="plain", filename="notes.txt")
    sent_first, sent_reply = first.as_bytes(), reply.as_bytes()

    first_id = send(inbox, sent_first, [inbox.address])
    # The reply after the first has arrived: SES invokes the function asynchronously, and a reply
    # processed before its parent starts a thread of its own (threading links to stored messages).
    one = arrived(inbox, f"Plan {tag}")
    reply_id = send(inbox, sent_reply, [inbox.address.upper()])  # recipients are case-insensitive
    two = arrived(inbox, f"Re: Plan {tag}")
    assert one["thread_id"] == two["thread_id"]
    assert one["folder_key"] == "inbox" and one["verdicts"]["spam"] == "PASS"
    threads = inbox.reader.get("/api/v1/threads").json()["data"]
    assert one["thread_id"] in [t["id"] for t in threads]
    in_thread = listed(inbox, thread=one["thread_id"], order="oldest")
    assert [m["id"] for m in in_thread] == [one["id"], two["id"]]

    attachments = inbox.reader.get(f"/api/v1/messages/{two['id']}/attachments").json()["data"]
    assert [(a["filename"], a["size"]) for a in attachments] == [
        ("data.bin", len(binary)),
        ("notes.txt", len(text_file)),
    ]
    for attachment, payload in zip(attachments, (binary, text_file), strict=True):
        download = inbox.reader.get(f"/api/v1/messages/{two['id']}/attachments/{attachment['index']}")
        assert download.status_code == 200
        assert download.content == payload

    for message, ses_id, sent in ((one, first_id, sent_first), (two, reply_id, sent_reply)):
        raw = inbox.reader.get(f"/api/v1/messages/{message['id']}/raw")
        assert raw.status_code == 200
        # What SES stored (its trace headers, then the message byte for byte) is what the API returns.
        assert raw.content == s3_inbound(inbox, ses_id)
        assert raw.content.endswith(sent)


def test_spam_verdict_lands_in_spam_and_unknown_recipients_are_dropped_and_counted(inbox: Inbox) -> None:
    tag = uuid.uuid4().hex[:8]
    spam = (
        f"From: win@sender.example.net\r\nTo: {inbox.address}\r\nSubject: Prize {tag}\r\n"
        "X-Mailroom-Test-Spam-Verdict: FAIL\r\n\r\nYou won.\r\n"
    ).encode()
    send(inbox, spam, [inbox.address])
    caught = arrived(inbox, f"Prize {tag}", folder="Spam")
    assert caught["folder_key"] == "spam" and caught["verdicts"]["spam"] == "FAIL"

    metrics_path = f"/api/v1/domains/{inbox.domain['id']}/spam-metrics/summary"
    before = data(inbox.admin.get(metrics_path))["inbound_dropped"]
    unknown = f"nobody-{tag}@{inbox.domain['domain']}"
    # Accepted at RCPT like SES does for a verified domain, then dropped without any bounce.
    send(
        inbox, f"From: a@sender.example.net\r\nTo: {unknown}\r\nSubject: ?\r\n\r\nhi\r\n".encode(), [unknown]
    )
    wait_for(
        "the dropped counter",
        lambda: True if data(inbox.admin.get(metrics_path))["inbound_dropped"] == before + 1 else None,
    )


def test_a_support_ticket_round_trip_through_ses_both_ways(inbox: Inbox) -> None:
    """A ticket is emailed to the operator (SES → the outbox, which stands for the Internet), the
    operator's mail client answers to its reply address (SMTP → the receipt rule → the inbound
    function), and the answer is in the ticket, cut above the quote."""
    import email
    import email.utils

    from tests.e2e.conftest import SUPPORT_ADDRESS

    tag = uuid.uuid4().hex[:8]
    ticket = data(
        post(inbox.admin, "/api/v1/tickets", {"subject": f"Help {tag}", "body": "DKIM fails."}), 201
    )
    outbox = inbox.stack.state_dir / "outbox"

    def emailed() -> email.message.Message | None:
        for path in outbox.glob("*.eml"):
            found = email.message_from_bytes(path.read_bytes())
            if found["Subject"] == f"[{ticket['id']}] Help {tag}":
                return found
        return None

    sent = wait_for("the ticket's email to the operator", emailed)
    assert SUPPORT_ADDRESS in sent["To"]
    reply_to = email.utils.parseaddr(sent["Reply-To"])[1]
    text = sent.get_payload(decode=True)
    assert isinstance(text, bytes)
    quoted = "\n".join(f"> {line}" for line in text.decode().splitlines())

    answer = EmailMessage(policy=SMTP)
    answer["From"] = f"Pat Operator <{SUPPORT_ADDRESS}>"
    answer["To"] = reply_to
    answer["Subject"] = f"Re: {sent['Subject']}"
    answer["Message-ID"] = f"<answer-{tag}@operator.example>"
    answer["In-Reply-To"] = sent["Message-ID"]
    answer.set_content(f"Publish the selector.\n\nOn Mon, 7 Dec 2026, Acme <{reply_to}> wrote:\n{quoted}\n")
    send(inbox, answer.as_bytes(), [reply_to], sender=SUPPORT_ADDRESS)

    def answered() -> list[dict[str, Any]] | None:
        messages = data(inbox.admin.get(f"/api/v1/tickets/{ticket['id']}/messages"))
        return messages if len(messages) == 2 else None

    first, reply = wait_for("the operator's answer in the ticket", answered)
    assert (first["author"], first["emailed"]) == ("organization", True)
    assert (reply["author"], reply["via"], reply["body"]) == ("operator", "email", "Publish the selector.")
    assert data(inbox.admin.get(f"/api/v1/tickets/{ticket['id']}"))["status"] == "answered"
