"""POST /api/v1/messages/send and the reply/reply-all/forward prefills, through SendFunction's
handler under moto: the MIME SES receives (and the configuration set and tags it was sent with),
the Sent copy in its thread with the Message-ID SES gave it, and every way a send is refused."""

from __future__ import annotations

import base64
import email
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, domain_metrics, events, mailboxes, suppressions
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support.lambda_api import call
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    get,
    key,
    new_mailbox,
    ok,
    patch,
    post,
)
from tests.support.sending import message_token, send, sent_messages

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"


@dataclass
class World:
    org: NewOrganization
    table: Table
    bucket: str
    alice: dict[str, Any]
    bob: dict[str, Any]
    alice_token: str
    bob_token: str

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def mailbox(self, mailbox_id: str) -> dict[str, Any]:
        item = mailboxes.get(self.table, self.org_id, mailbox_id)
        assert item is not None
        return item

    def message(self, mailbox_id: str, message_id: str) -> dict[str, Any]:
        item = store.get_message(self.table, self.org_id, mailbox_id, message_id)
        assert item is not None, message_id
        return item

    def deliver_inbound(self, mailbox_id: str, raw: bytes, source: str) -> dict[str, Any]:
        outcome = deliver(
            self.table,
            Incoming(
                org_id=self.org_id,
                mailbox=self.mailbox(mailbox_id),
                raw=raw,
                parsed=parse(raw),
                folder_key="inbox",
                direction="inbound",
                received_at=datetime.now(UTC),
                source_id=source,
                event_type="message.received",
            ),
        )
        return outcome.message

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        page = events.list_page(self.table, self.org_id, per_page=100)
        return [e for e in page.items if event_type is None or e["event_type"] == event_type]


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", CONFIGURATION_SET)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice", name="Alice Example")
    bob = new_mailbox(org, "bob", name="Bob")
    yield World(
        org=org,
        table=table,
        bucket=bucket,
        alice=alice,
        bob=bob,
        alice_token=message_token(org, alice["id"]),
        bob_token=message_token(org, bob["id"]),
    )
    get_settings.cache_clear()


def inbound(
    subject: str, *, message_id: str, sender: str = "Carol <carol@example.net>", **headers: str
) -> bytes:
    lines = [
        f"From: {sender}",
        "To: Alice Example <alice@example.com>, dave@example.org",
        "Cc: erin@example.org",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Sun, 01 Mar 2026 12:00:00 +0000",
        *[f"{name.replace('_', '-')}: {value}" for name, value in headers.items()],
    ]
    return ("\r\n".join(lines) + "\r\n\r\nFirst line\r\nSecond line\r\n").encode()


def with_attachment(subject: str, *, message_id: str) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "Carol <carol@example.net>"
    message["To"] = "alice@example.com"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("See the attached report.")
    message.add_alternative("<p>See the <b>attached</b> report.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 report bytes", maintype="application", subtype="pdf", filename="r.pdf")
    return message.as_bytes()


def raw_of(ses_message: Any) -> EmailMessage:
    parsed = email.message_from_string(ses_message.raw_data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- the send ---------------------------------------------------------------------------------------


def test_a_send_builds_the_mime_sends_it_through_ses_and_keeps_a_sent_copy(world: World) -> None:
    before = len(sent_messages())
    body = {
        "to": "Bob Builder <bob@example.net>",
        "cc": ["carol@example.org"],
        "bcc": "hidden@example.org",
        "reply_to": ["replies@example.com", "team@example.com"],
        "subject": "Quarterly numbers ✓",
        "text": "Numbers attached.",
        "html": "<p>Numbers <b>attached</b>.</p>",
        "attachments": [
            {
                "filename": "q1.csv",
                "content_type": "text/csv",
                "content": base64.b64encode(b"a,b\n1,2\n").decode(),
            }
        ],
        "headers": {"X-Campaign": "q1"},
        "labels": ["finance", "q1"],
    }
    result = send(world.alice_token, body)
    data = ok(result, 201)
    assert result.headers["location"] == f"/api/v1/messages/{data['message_id']}"
    assert data["message_id"].startswith("msg_") and data["thread_id"].startswith("thr_")

    (ses,) = sent_messages()[before:]
    assert ses.id == data["ses_message_id"]
    assert ses.source == "alice@example.com"  # the envelope sender: the bare address
    assert {"bob@example.net", "carol@example.org", "hidden@example.org"} <= {
        email.utils.parseaddr(d)[1] for d in ses.destinations
    }
    assert ses.configuration_set_name == CONFIGURATION_SET
    assert ses.email_tags == {
        "org_id": world.org_id,
        "mailbox_id": world.alice["id"],
        "message_id": data["message_id"],
    }
    mime = raw_of(ses)
    assert mime["From"] == "Alice Example <alice@example.com>"
    assert mime["To"] == "Bob Builder <bob@example.net>" and mime["Cc"] == "carol@example.org"
    assert mime["Bcc"] is None and b"hidden@example.org" not in ses.raw_data.encode()
    assert mime["Reply-To"] == "replies@example.com, team@example.com"
    assert mime["Subject"] == "Quarterly numbers ✓" and mime["X-Campaign"] == "q1"
    text_part = mime.get_body(("plain",))
    html_part = mime.get_body(("html",))
    assert text_part is not None and text_part.get_content().strip() == "Numbers attached."
    assert html_part is not None and "<b>attached</b>" in html_part.get_content()
    (attached,) = list(mime.iter_attachments())
    assert attached.get_filename() == "q1.csv" and attached.get_content_type() == "text/csv"
    assert attached.get_payload(decode=True) == b"a,b\n1,2\n"

    sent = world.message(world.alice["id"], data["message_id"])
    amazon_id = f"<{ses.id}@email.amazonses.com>"
    assert data["rfc_message_id"] == sent["rfc_message_id"] == amazon_id
    assert (sent["folder_key"], sent["direction"], sent["flags"]["seen"]) == ("sent", "outbound", True)
    assert sent["thread_id"] == data["thread_id"] and sent["labels"] == ["finance", "q1"]
    assert sent["bcc"] == ["hidden@example.org"] and sent["ses_message_id"] == ses.id
    assert sent["delivery"]["status"] == "sending"
    assert sent["delivery"]["recipients"] == {
        "bob@example.net": {"status": "sending"},
        "carol@example.org": {"status": "sending"},
        "hidden@example.org": {"status": "sending"},
    }
    stored_raw = aws.client("s3").get_object(Bucket=world.bucket, Key=sent["raw_key"])["Body"].read()
    assert f"Message-ID: {amazon_id}".encode() in stored_raw  # as SES sent it, not as we built it
    assert [a["filename"] for a in sent["attachments"]] == ["q1.csv"]

    (event,) = world.events("message.sent")
    assert event["data"]["id"] == data["message_id"] and event["data"]["bcc"] == ["hidden@example.org"]
    box = world.mailbox(world.alice["id"])
    assert (box["fc_sent_total"], box.get("fc_sent_unread", 0)) == (1, 0)
    today = datetime.now(UTC).date().isoformat()
    (day,) = domain_metrics.days(
        world.table, world.org_id, world.alice["domain_id"], first_day=today, last_day=today
    )
    assert day["outbound_total"] == 3  # per recipient, like bounces and complaints


def test_a_replayed_request_sends_once(world: World) -> None:
    before = len(sent_messages())
    headers = key()
    body = {"to": "bob@example.net", "subject": "Once", "text": "only once"}
    first = call(
        "send", "POST", "/api/v1/messages/send", token=world.alice_token, json_body=body, headers=headers
    )
    again = call(
        "send", "POST", "/api/v1/messages/send", token=world.alice_token, json_body=body, headers=headers
    )
    assert (first.status, again.status) == (201, 201)
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert len(sent_messages()) == before + 1
    assert len(world.events("message.sent")) == 1


def test_a_bcc_only_send_and_a_send_without_recipients(world: World) -> None:
    ok(send(world.alice_token, {"bcc": ["quiet@example.org"], "subject": "bcc only", "text": "x"}), 201)
    nobody = send(world.alice_token, {"subject": "to nobody", "text": "x"})
    assert nobody.status == 422 and nobody.json()["error"]["fields"][0]["field"] == "to"


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch_body", "field", "code"),
    [
        ({"subject": "Hello\r\nBcc: victim@example.org"}, "subject", "validation_error"),
        ({"subject": "trailing newline\n"}, "subject", "validation_error"),
        ({"to": "bob@example.net\r\nBcc: victim@example.org"}, "to", "validation_error"),
        ({"cc": ["ok@example.org", "bad\n@example.org"]}, "cc", "validation_error"),
        ({"reply_to": "r@example.org\x00"}, "reply_to", "validation_error"),
        ({"headers": {"X-Tag": "a\r\nBcc: victim@example.org"}}, "headers.X-Tag", "validation_error"),
        ({"headers": {"X-Nul": "a\x00b"}}, "headers.X-Nul", "validation_error"),
        ({"headers": {"Bad Name": "x"}}, "headers", "validation_error"),
        ({"headers": {"From": "ceo@example.com"}}, "headers", "reserved_header"),
        ({"headers": {"message-id": "<mine@x>"}}, "headers", "reserved_header"),
        ({"headers": {"X-SES-Configuration-Set": "other"}}, "headers", "reserved_header"),
        ({"in_reply_to": "<a@b>\r\nBcc: victim@example.org"}, "in_reply_to", "validation_error"),
        (
            {"to": [f"r{i}@example.org" for i in range(26)], "cc": [f"c{i}@example.org" for i in range(25)]},
            "to",
            "too_many_recipients",
        ),
        ({"to": "not-an-address"}, "to", "validation_error"),
        ({"from": "Alice <alice@example.com>\r\nBcc: x@example.org"}, "from", "validation_error"),
        (
            {"attachments": [{"filename": "a.bin", "content": "***not base64***"}]},
            "attachments.0.content",
            "validation_error",
        ),
        (
            {"attachments": [{"content": base64.b64encode(b"x").decode()}]},
            "attachments.0.filename",
            "validation_error",
        ),
        (
            {"attachments": [{"filename": "a\r\n.txt", "content": base64.b64encode(b"x").decode()}]},
            "attachments.0.filename",
            "validation_error",
        ),
        (
            {"attachments": [{"filename": "x", "url": "https://example.org/x"}]},
            "attachments.0.url",
            "validation_error",
        ),
        ({"labels": ["ok", "bad\tlabel"]}, "labels.1", "validation_error"),
        ({"unknown_field": 1}, "unknown_field", "validation_error"),
    ],
)
def test_invalid_sends_are_422_naming_the_field(
    world: World, patch_body: dict[str, Any], field: str, code: str
) -> None:
    before = len(sent_messages())
    body = {"to": "bob@example.net", "subject": "Hello", "text": "hi", **patch_body}
    result = send(world.alice_token, body)
    assert result.status == 422, result.body
    error = result.json()["error"]
    assert error["code"] == code, error
    assert field in [f["field"] for f in error["fields"]], error
    assert len(sent_messages()) == before  # nothing left


def test_the_size_limit_is_stated_in_the_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import mailroom.mail.compose as compose

    monkeypatch.setattr(compose, "MAX_MESSAGE_BYTES", 4000)
    content = base64.b64encode(b"z" * 5000).decode()
    result = send(
        world.alice_token, {"to": "bob@example.net", "attachments": [{"filename": "z", "content": content}]}
    )
    assert result.status == 422 and result.error_code == "message_too_large"
    assert "4000 bytes" in result.json()["error"]["message"]
    assert result.json()["error"]["fields"][0]["field"] == "attachments"


# --- refusals: suppression, pause, identities, scopes ---------------------------------------------


def test_suppressed_recipients_are_refused_by_name(world: World) -> None:
    for address, reason in (("gone@example.org", "hard_bounce"), ("angry@example.org", "complaint")):
        assert suppressions.add(
            world.table, world.org_id, {"address": address, "reason": reason, "created_at": "x"}
        )
    before = len(sent_messages())
    result = send(
        world.alice_token,
        {"to": "bob@example.net", "cc": "Gone <GONE@example.org>", "bcc": ["angry@example.org"], "text": "x"},
    )
    assert result.status == 422 and result.error_code == "recipient_suppressed"
    error = result.json()["error"]
    assert "angry@example.org" in error["message"] and "gone@example.org" in error["message"]
    assert {(f["field"], f["message"].split()[0]) for f in error["fields"]} == {
        ("cc", "gone@example.org"),
        ("bcc", "angry@example.org"),
    }
    assert len(sent_messages()) == before
    ok(send(world.alice_token, {"to": "bob@example.net", "text": "fine"}), 201)


def test_paused_and_inactive_mailboxes_cannot_send(world: World) -> None:
    ok(post("mailboxes", world.org.admin_token, f"/api/v1/mailboxes/{world.alice['id']}:pause"))
    paused = send(world.alice_token, {"to": "bob@example.net", "text": "x"})
    assert (paused.status, paused.error_code) == (403, "mailbox_paused")
    ok(post("mailboxes", world.org.admin_token, f"/api/v1/mailboxes/{world.alice['id']}:resume"))
    ok(send(world.alice_token, {"to": "bob@example.net", "text": "x"}), 201)
    ok(patch("mailboxes", world.org.admin_token, f"/api/v1/mailboxes/{world.alice['id']}", {"active": False}))
    inactive = send(world.alice_token, {"to": "bob@example.net", "text": "x"})
    assert (inactive.status, inactive.error_code) == (403, "mailbox_inactive")


def test_from_may_be_the_mailbox_or_an_alias_that_delivers_to_it(world: World) -> None:
    admin = world.org.admin_token
    ok(
        post(
            "aliases",
            admin,
            "/api/v1/aliases",
            {"address": "sales@example.com", "goto": ["alice@example.com"]},
        ),
        201,
    )
    ok(
        post(
            "aliases", admin, "/api/v1/aliases", {"address": "ops@example.com", "goto": ["bob@example.com"]}
        ),
        201,
    )
    paused_alias = ok(
        post(
            "aliases", admin, "/api/v1/aliases", {"address": "old@example.com", "goto": ["alice@example.com"]}
        ),
        201,
    )
    ok(patch("aliases", admin, f"/api/v1/aliases/{paused_alias['id']}", {"active": False}))

    as_alias = ok(
        send(world.alice_token, {"from": "Sales Team <Sales@Example.com>", "to": "x@example.org"}), 201
    )
    as_alias_default_name = ok(
        send(world.alice_token, {"from": "sales@example.com", "to": "x@example.org"}), 201
    )
    as_self = ok(send(world.alice_token, {"from": "alice@example.com", "to": "x@example.org"}), 201)
    by_id = {m.id: raw_of(m)["From"] for m in sent_messages()}
    assert by_id[as_alias["ses_message_id"]] == "Sales Team <sales@example.com>"
    assert by_id[as_alias_default_name["ses_message_id"]] == "Alice Example <sales@example.com>"
    assert by_id[as_self["ses_message_id"]] == "Alice Example <alice@example.com>"
    for refused in ("ops@example.com", "old@example.com", "bob@example.com", "someone@example.org"):
        result = send(world.alice_token, {"from": refused, "to": "x@example.org"})
        assert (result.status, result.error_code) == (422, "invalid_from"), refused
        assert result.json()["error"]["fields"][0]["field"] == "from"


def test_scopes_and_token_types(world: World) -> None:
    reader = message_token(world.org, world.alice["id"], ["messages:read"])
    refused = send(reader, {"to": "bob@example.net", "text": "x"})
    assert (refused.status, refused.error_code) == (403, "insufficient_scope")
    ops = send(world.org.admin_token, {"to": "bob@example.net", "text": "x"})
    assert (ops.status, ops.error_code) == (403, "wrong_token_type")
    writer = message_token(world.org, world.alice["id"], ["messages:send"])
    sent = ok(send(writer, {"to": "bob@example.net", "text": "x"}), 201)
    prefill = get("send", writer, f"/api/v1/messages/{sent['message_id']}/reply")
    assert (prefill.status, prefill.error_code) == (403, "insufficient_scope")


# --- reply, reply-all, forward ------------------------------------------------------------------------


def test_reply_prefill_posted_back_joins_the_thread_and_marks_the_original_answered(world: World) -> None:
    original = world.deliver_inbound(
        world.alice["id"],
        inbound(
            "Plans",
            message_id="<plans-2@example.net>",
            References="<plans-1@example.net>",
            Reply_To="Carol's list <list@example.net>",
        ),
        "ses-in-1",
    )
    prefill = get("send", world.alice_token, f"/api/v1/messages/{original['id']}/reply")
    assert prefill.status == 200, prefill.body
    data, meta = prefill.json()["data"], prefill.json()["meta"]
    assert data["from"] == "Alice Example <alice@example.com>"
    assert data["to"] == ["Carol's list <list@example.net>"] and data["cc"] == []  # Reply-To wins
    assert data["subject"] == "Re: Plans"
    assert data["in_reply_to"] == "<plans-2@example.net>"
    assert data["references"] == ["<plans-1@example.net>", "<plans-2@example.net>"]
    assert (
        "> First line\n> Second line" in data["text"] and "Carol <carol@example.net> wrote:" in data["text"]
    )
    assert data["attachments"] == [] and meta["original"]["id"] == original["id"]

    reply = ok(send(world.alice_token, {**data, "text": "Sounds good.\n" + data["text"]}), 201)
    assert reply["thread_id"] == original["thread_id"]
    (ses,) = [m for m in sent_messages() if m.id == reply["ses_message_id"]]
    mime = raw_of(ses)
    assert mime["In-Reply-To"] == "<plans-2@example.net>"
    assert mime["References"] == "<plans-1@example.net> <plans-2@example.net>"
    assert world.message(world.alice["id"], original["id"])["flags"]["answered"] is True
    thread = store.get_thread(world.table, world.org_id, world.alice["id"], original["thread_id"])
    assert thread is not None and thread["message_count"] == 2


def test_reply_all_keeps_everyone_but_the_mailbox(world: World) -> None:
    original = world.deliver_inbound(
        world.alice["id"], inbound("Team", message_id="<team@example.net>"), "ses-in-2"
    )
    data = ok(get("send", world.alice_token, f"/api/v1/messages/{original['id']}/reply-all"))
    assert data["to"] == ["Carol <carol@example.net>", "dave@example.org"]
    assert data["cc"] == ["erin@example.org"]
    assert ok(get("send", world.alice_token, f"/api/v1/messages/{original['id']}/reply"))["to"] == [
        "Carol <carol@example.net>"
    ]


def test_replying_to_a_sent_message_goes_to_its_recipients(world: World) -> None:
    sent = ok(
        send(world.alice_token, {"to": "bob@example.net", "cc": "carol@example.org", "subject": "Hi"}), 201
    )
    data = ok(get("send", world.alice_token, f"/api/v1/messages/{sent['message_id']}/reply-all"))
    assert (data["to"], data["cc"]) == (["bob@example.net"], ["carol@example.org"])
    assert data["in_reply_to"] == sent["rfc_message_id"] and data["subject"] == "Re: Hi"
    follow_up = ok(send(world.alice_token, data), 201)
    assert follow_up["thread_id"] == sent["thread_id"]


def test_forward_prefill_carries_the_attachments_by_reference(world: World) -> None:
    original = world.deliver_inbound(
        world.alice["id"], with_attachment("Report", message_id="<report@example.net>"), "ses-in-3"
    )
    prefill = ok_prefill = get("send", world.alice_token, f"/api/v1/messages/{original['id']}/forward")
    assert ok_prefill.status == 200, prefill.body
    data, meta = prefill.json()["data"], prefill.json()["meta"]
    assert data["subject"] == "Fwd: Report" and data["to"] == [] and data["in_reply_to"] is None
    assert "---------- Forwarded message ---------" in data["text"]
    assert "See the attached report." in data["text"] and "<b>attached</b>" in data["html"]
    assert data["attachments"] == [
        {
            "message_id": original["id"],
            "index": 0,
            "filename": "r.pdf",
            "content_type": "application/pdf",
            "content_id": None,
            "inline": False,
        }
    ]
    assert meta["attachments"][0]["size"] == len(b"%PDF-1.4 report bytes")

    forwarded = ok(
        send(world.alice_token, {**data, "to": "frank@example.org", "text": "FYI\n" + data["text"]}), 201
    )
    # No In-Reply-To, but a "Fwd:" subject: the mail core's subject fallback files it with the original.
    assert forwarded["thread_id"] == original["thread_id"]
    (ses,) = [m for m in sent_messages() if m.id == forwarded["ses_message_id"]]
    (attached,) = list(raw_of(ses).iter_attachments())
    assert (
        attached.get_filename() == "r.pdf" and attached.get_payload(decode=True) == b"%PDF-1.4 report bytes"
    )
    assert raw_of(ses)["Subject"] == "Fwd: Report"


def test_a_mailbox_reaches_only_its_own_messages(world: World, other_org: NewOrganization) -> None:
    original = world.deliver_inbound(
        world.alice["id"], with_attachment("Mine", message_id="<mine@x>"), "ses-in-4"
    )
    for path in ("reply", "reply-all", "forward"):
        other = get("send", world.bob_token, f"/api/v1/messages/{original['id']}/{path}")
        assert (other.status, other.error_code) == (404, "not_found")
    assert get("send", world.alice_token, "/api/v1/messages/not-an-id/reply").status == 404
    stolen = send(
        world.bob_token,
        {"to": "bob@example.net", "attachments": [{"message_id": original["id"], "index": 0}]},
    )
    assert (stolen.status, stolen.error_code) == (422, "unknown_attachment")
    assert stolen.json()["error"]["fields"][0]["field"] == "attachments.0"
    missing = send(
        world.alice_token,
        {"to": "bob@example.net", "attachments": [{"message_id": original["id"], "index": 7}]},
    )
    assert (missing.status, missing.error_code) == (422, "unknown_attachment")


def test_the_service_can_start_a_new_thread_for_a_forward(world: World) -> None:
    """What v0's forward ("creates a new thread") asks of the service: no subject fallback."""
    from mailroom.services import sending

    original = world.deliver_inbound(
        world.alice["id"], inbound("Budget", message_id="<budget@x>"), "ses-in-5"
    )
    request = sending.SendRequest(
        to=["frank@example.org"], subject="Fwd: Budget", text="FYI", new_thread=True
    )
    forwarded = sending.send(world.table, world.mailbox(world.alice["id"]), request)
    assert forwarded.thread_id != original["thread_id"]
    joined = sending.send(
        world.table,
        world.mailbox(world.alice["id"]),
        sending.SendRequest(to=["frank@example.org"], subject="Re: Budget"),
    )
    assert joined.thread_id == forwarded.thread_id  # without new_thread: the latest same-subject thread


def test_a_failed_store_after_sending_is_tried_again_not_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailroom.services.mail_delivery as mail_delivery

    real, calls = mail_delivery.deliver, {"n": 0}

    def flaky(table: Table, incoming: Incoming) -> mail_delivery.Outcome:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("DynamoDB hiccup")
        return real(table, incoming)

    monkeypatch.setattr(mail_delivery, "deliver", flaky)
    before = len(sent_messages())
    sent = ok(send(world.alice_token, {"to": "bob@example.net", "text": "once"}), 201)
    assert calls["n"] == 2 and len(sent_messages()) == before + 1
    assert world.message(world.alice["id"], sent["message_id"])["folder_key"] == "sent"


def test_an_aws_outage_after_sending_is_waited_out_not_answered_with_a_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mail is out: a 503 would make the client send it again. Storing its Sent copy is tried
    through a few retryable AWS failures, and the send answers 201 once."""
    import mailroom.services.mail_delivery as mail_delivery
    from mailroom.store.errors import ServiceUnavailable, Throttled

    real, failures = mail_delivery.deliver, [Throttled("slow"), ServiceUnavailable("down"), Throttled("slow")]

    def outage(table: Table, incoming: Incoming) -> mail_delivery.Outcome:
        if failures:
            raise failures.pop(0)
        return real(table, incoming)

    monkeypatch.setattr(mail_delivery, "deliver", outage)
    before = len(sent_messages())
    sent = ok(send(world.alice_token, {"to": "bob@example.net", "text": "once"}), 201)
    assert failures == [] and len(sent_messages()) == before + 1
    assert world.message(world.alice["id"], sent["message_id"])["folder_key"] == "sent"


def test_a_prefill_sends_through_the_service_in_one_call(world: World) -> None:
    """What v0's POST /reply and /forward do: prefill, edit, send, without the client round trip."""
    from mailroom.services import prefill, sending

    original = world.deliver_inbound(
        world.alice["id"], with_attachment("Deck", message_id="<deck@x>"), "ses-6"
    )
    box = world.mailbox(world.alice["id"])
    draft = prefill.reply(world.table, box, original["id"], reply_all=False)["data"]
    reply = sending.send(world.table, box, prefill.as_send_request({**draft, "text": "Thanks!"}))
    assert reply.thread_id == original["thread_id"]
    forward = prefill.forward(world.table, box, original["id"])["data"]
    request = prefill.as_send_request({**forward, "to": "frank@example.org"}, new_thread=True)
    forwarded = sending.send(world.table, box, request)
    assert forwarded.thread_id != original["thread_id"]
    assert [a["filename"] for a in forwarded.message["attachments"]] == ["r.pdf"]
