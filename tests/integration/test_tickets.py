"""Support tickets under moto: the organization's API (tickets function), the emails SES sends the
operator, the operator's answers by email through the real inbound path (the receipt rule's S3
object, then the SES event or the S3 event), by ``mailroom admin tickets`` and by the HMAC-signed
support API (support function); the ticket.* events; another organization's view."""

from __future__ import annotations

import base64
import email
import email.utils
import json
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from mailroom.cli import main
from mailroom.domain import tickets as rules
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import create_mail_infrastructure, get, ok, post
from tests.support.sending import sent_messages

SUPPORT = "help@operator.example"
SECRET = "kq3N8vT2xL9pR4mW7yB1cF6hJ0sD5gZa"  # 32 characters: the shortest the template accepts
PLATFORM = "mailroom.localhost"


@pytest.fixture
def desk(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack with a support address and secret, its mail bucket, and the platform domain
    verified in SES (``mailroom admin platform-domain`` does it in a deployed stack)."""
    bucket, _queue = create_mail_infrastructure()
    for name, value in {
        "MAILROOM_MAIL_BUCKET": bucket,
        "MAILROOM_SUPPORT_ADDRESS": SUPPORT,
        "MAILROOM_SUPPORT_HMAC_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws.client("ses").verify_domain_identity(Domain=PLATFORM)
    yield bucket
    get_settings.cache_clear()


def open_ticket(token: str, subject: str = "DKIM fails", body: str = "Our DKIM check fails.") -> Result:
    return post("tickets", token, "/api/v1/tickets", {"subject": subject, "body": body})


def thread(token: str, ticket_id: str) -> list[dict[str, Any]]:
    return list(ok(get("tickets", token, f"/api/v1/tickets/{ticket_id}/messages", per_page=100)))


def ticket(token: str, ticket_id: str) -> dict[str, Any]:
    return dict(ok(get("tickets", token, f"/api/v1/tickets/{ticket_id}")))


def emails_to_support() -> list[Message]:
    return [
        email.message_from_bytes(m.raw_data.encode() if isinstance(m.raw_data, str) else m.raw_data)
        for m in sent_messages()
        if SUPPORT in m.destinations
    ]


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def event_types(token: str) -> list[str]:
    listing = ok(call("events", "GET", "/api/v1/events", token=token, query={"per_page": 100}))
    return sorted(e["event_type"] for e in listing if e["event_type"].startswith("ticket."))


def operator_answer(
    reply_to: str,
    text: str,
    *,
    quoted: str,
    sender: str = f"Pat Operator <{SUPPORT}>",
    in_reply_to: str = "<x@example>",
) -> bytes:
    """An answer as Gmail writes it: multipart/alternative, the new text above an attribution line
    that wraps, the whole message quoted below with ``> ``."""
    quote = "\n".join(f"> {line}" if line else ">" for line in quoted.splitlines())
    plain = (
        f"{text}\n\nOn Mon, Dec 7, 2026 at 3:10 PM Acme (Mailroom ticket) <\n{reply_to}> wrote:\n\n{quote}\n"
    )
    html = f'<div dir="ltr">{text}</div><br><div class="gmail_quote">...</div>'
    boundary = "000000000000a1b2c3d4e5f6"
    return (
        f"From: {sender}\r\nTo: {reply_to}\r\nSubject: Re: ticket\r\n"
        f"Message-ID: <CAop{time.monotonic_ns()}@mail.gmail.com>\r\nIn-Reply-To: {in_reply_to}\r\n"
        "Date: Mon, 07 Dec 2026 15:12:00 +0000\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f'--{boundary}\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n{plain}\r\n'
        f'--{boundary}\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n{html}\r\n--{boundary}--\r\n'
    ).encode()


def deliver(bucket: str, raw: bytes, recipient: str, **options: Any) -> tuple[str, dict[str, Any]]:
    """The receipt rule: the object in S3, then the SES event to the inbound function."""
    source = options.pop("source", SUPPORT)
    ses_id, _stored = sim.store_inbound(bucket, raw, recipients=[recipient], source=source, **options)
    result = sim.invoke(sim.ses_event(ses_id, [recipient], source=source, **options))
    return ses_id, result


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what the API functions logged before (Powertools logs to stdout)
    status = main(["admin", "tickets", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ----------------------------------------------------------------------------- by API and CLI


def test_a_ticket_round_trip_by_api_and_the_operator_cli(
    desk: str, org: NewOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    token = org.admin_token
    created = ok(open_ticket(token), 201)
    ticket_id = created["id"]
    assert created["status"] == "open" and created["message_count"] == 1
    assert created["created_by"]["name"] and created["closed_at"] is None

    # The operator got it by email, from the ticket's reply address, in a thread of its own.
    (first,) = emails_to_support()
    reply_to = email.utils.parseaddr(first["Reply-To"])[1]
    assert rules.parse_reply_address(reply_to, PLATFORM) is not None
    assert email.utils.parseaddr(first["From"])[1] == reply_to
    assert first["Subject"] == f"[{ticket_id}] DKIM fails"
    assert first["X-Mailroom-Ticket"] == ticket_id
    text = text_of(first)
    assert text.startswith(rules.REPLY_MARKER) and "Our DKIM check fails." in text
    assert org.organization["id"] in text

    listed = ok(get("tickets", token, "/api/v1/tickets"))
    assert [t["id"] for t in listed] == [ticket_id]
    (message,) = thread(token, ticket_id)
    assert (message["author"], message["via"], message["emailed"]) == ("organization", "api", True)

    status, out, err = run_cli(capsys, "reply", ticket_id, "--body", "Publish the new selector.", "--json")
    assert status == 0, err
    assert json.loads(out)["ticket_status"] == "answered"
    assert ticket(token, ticket_id)["status"] == "answered"

    answer = ok(post("tickets", token, f"/api/v1/tickets/{ticket_id}/reply", {"body": "Done, thanks."}), 201)
    assert answer["author"] == "organization"
    second = emails_to_support()[1]
    # In the same thread: SES's Message-ID of the first email (SES replaces ours on sending).
    first_id = f"<{sent_messages()[0].id}@email.amazonses.com>"
    assert second["In-Reply-To"] == first_id and first_id in second["References"]
    assert second["Subject"] == f"Re: [{ticket_id}] DKIM fails"

    assert [(m["author"], m["via"]) for m in thread(token, ticket_id)] == [
        ("organization", "api"),
        ("operator", "cli"),
        ("organization", "api"),
    ]
    assert ticket(token, ticket_id)["status"] == "open"

    closed = ok(post("tickets", token, f"/api/v1/tickets/{ticket_id}:close"))
    assert (closed["status"], closed["closed_by"]) == ("closed", "organization")
    late = post("tickets", token, f"/api/v1/tickets/{ticket_id}/reply", {"body": "One more thing"})
    assert (late.status, late.error_code) == (409, "ticket_closed")
    again = post("tickets", token, f"/api/v1/tickets/{ticket_id}:close")
    assert (again.status, again.error_code) == (409, "ticket_closed")
    assert len(emails_to_support()) == 2  # nothing sent for a refused reply

    assert event_types(token) == ["ticket.closed", "ticket.created", "ticket.replied", "ticket.replied"]
    assert [t["id"] for t in ok(get("tickets", token, "/api/v1/tickets", status="closed"))] == [ticket_id]
    assert ok(get("tickets", token, "/api/v1/tickets", status="open")) == []

    status, out, _ = run_cli(capsys, "show", ticket_id)
    assert status == 0 and "Publish the new selector." in out and "(closed)" in out


def test_without_a_support_address_tickets_are_kept_and_not_emailed(
    moto_env: None, org: NewOrganization
) -> None:
    created = ok(open_ticket(org.admin_token), 201)
    assert sent_messages() == []
    (message,) = thread(org.admin_token, created["id"])
    assert message["emailed"] is False


def test_bad_input_is_a_clear_422(desk: str, org: NewOrganization) -> None:
    for body in (
        {"subject": "", "body": "x"},
        {"subject": "a\nb", "body": "x"},
        {"subject": "a\u2028b", "body": "x"},  # a line separator cannot be in a header
        {"subject": "s", "body": "\ud800"},  # an unpaired surrogate is not text
        {"subject": "s"},
    ):
        refused = post("tickets", org.admin_token, "/api/v1/tickets", body)
        assert (refused.status, refused.error_code) == (422, "validation_error"), body
    too_long = post("tickets", org.admin_token, "/api/v1/tickets", {"subject": "s", "body": "x" * 20_001})
    assert too_long.status == 422
    assert get("tickets", org.admin_token, "/api/v1/tickets", status="pending").status == 422
    assert emails_to_support() == []


# ----------------------------------------------------------------------------- by email


def test_the_operator_answers_by_email_through_the_inbound_path(desk: str, org: NewOrganization) -> None:
    token = org.admin_token
    ticket_id = ok(open_ticket(token), 201)["id"]
    (sent,) = emails_to_support()
    reply_to = email.utils.parseaddr(sent["Reply-To"])[1]
    quoted = text_of(sent)
    raw = operator_answer(reply_to, "Your selector is missing.\nPublish it and tell me.", quoted=quoted)

    ses_id, result = deliver(desk, raw, reply_to)
    assert result["messages"][0]["ticket_replies"] == 1
    messages = thread(token, ticket_id)
    assert [(m["author"], m["via"]) for m in messages] == [("organization", "api"), ("operator", "email")]
    assert messages[1]["body"] == "Your selector is missing.\nPublish it and tell me."
    assert messages[1]["author_name"] == f"Pat Operator <{SUPPORT}>"
    assert ticket(token, ticket_id)["status"] == "answered"

    # The same message again, by the SES event and by the S3 event of its object: stored once.
    sim.invoke(sim.ses_event(ses_id, [reply_to], source=SUPPORT))
    sim.invoke(sim.s3_event(desk, f"inbound/{ses_id}"))
    assert len(thread(token, ticket_id)) == 2
    assert event_types(token) == ["ticket.created", "ticket.replied"]

    # The organization's next message answers the operator's email in its thread.
    ok(post("tickets", token, f"/api/v1/tickets/{ticket_id}/reply", {"body": "Published."}), 201)
    follow_up = emails_to_support()[1]
    assert follow_up["In-Reply-To"].startswith("<CAop")


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("another sender", {"sender": "Mallory <mallory@evil.example>", "source": "mallory@evil.example"}),
        ("the operator's address, forged", {"verdicts": {"dmarc": "FAIL", "dmarcPolicy": "reject"}}),
        ("spam", {"verdicts": {"spam": "FAIL"}}),
        ("nothing above the quote", {"text": ""}),
    ],
)
def test_an_answer_that_is_not_the_operators_is_dropped(
    desk: str, org: NewOrganization, case: str, options: dict[str, Any]
) -> None:
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    reply_to = email.utils.parseaddr(emails_to_support()[0]["Reply-To"])[1]
    sender = options.get("sender", f"Pat <{SUPPORT}>")
    raw = operator_answer(reply_to, options.get("text", "Hello"), quoted="x", sender=sender)
    delivered = {k: v for k, v in options.items() if k in ("source", "verdicts")}
    _ses_id, result = deliver(desk, raw, reply_to, **delivered)
    assert result["messages"][0]["ticket_replies"] == 0, case
    assert len(thread(org.admin_token, ticket_id)) == 1, case


def test_a_reply_address_with_a_wrong_token_reaches_no_ticket(desk: str, org: NewOrganization) -> None:
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    forged = rules.reply_address(ticket_id, "a" * 16, PLATFORM)
    _ses_id, result = deliver(desk, operator_answer(forged, "Hi", quoted="x"), forged)
    assert result["messages"][0]["ticket_replies"] == 0
    # It went on to mailbox routing like any address: no inbox of the platform domain has it.
    assert result["messages"][0]["dropped"] == {"unknown_domain": 1}
    assert len(thread(org.admin_token, ticket_id)) == 1


# ----------------------------------------------------------------------------- tenancy


def test_another_organization_cannot_see_or_touch_a_ticket(
    desk: str, org: NewOrganization, other_org: NewOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    theirs = ok(open_ticket(other_org.admin_token, subject="Theirs"), 201)["id"]
    other = other_org.admin_token
    assert [t["id"] for t in ok(get("tickets", other, "/api/v1/tickets"))] == [theirs]
    for method, path, body in [
        ("GET", f"/api/v1/tickets/{ticket_id}", None),
        ("GET", f"/api/v1/tickets/{ticket_id}/messages", None),
        ("POST", f"/api/v1/tickets/{ticket_id}/reply", {"body": "hijack"}),
        ("POST", f"/api/v1/tickets/{ticket_id}:close", None),
    ]:
        headers = {"Idempotency-Key": f"k-{method}-{path}"} if method == "POST" else None
        answer = call("tickets", method, path, token=other, json_body=body, headers=headers)
        assert (answer.status, answer.error_code) == (404, "not_found"), path
    assert ticket(org.admin_token, ticket_id)["message_count"] == 1

    # The operator sees every organization's.
    status, out, err = run_cli(capsys, "list", "--json")
    assert status == 0, err
    assert {(t["id"], t["org_id"]) for t in json.loads(out)} == {
        (ticket_id, org.organization["id"]),
        (theirs, other_org.organization["id"]),
    }
    status, out, _ = run_cli(capsys, "list", "--org", other_org.organization["id"], "--json")
    assert [t["id"] for t in json.loads(out)] == [theirs]


def test_tickets_need_their_scopes(desk: str, org: NewOrganization) -> None:
    from mailroom.services.tokens import issue_ops_token

    reader = issue_ops_token(
        Table(), org_id=org.organization["id"], name="r", scopes=["tickets:read"], created_by=None
    ).plaintext
    refused = open_ticket(reader)
    assert (refused.status, refused.error_code) == (403, "insufficient_scope")
    assert ok(get("tickets", reader, "/api/v1/tickets")) == []


# ----------------------------------------------------------------------------- the support API


def signed(
    method: str,
    path: str,
    body: Any = None,
    *,
    secret: str = SECRET,
    at: float | None = None,
    signed_body: bytes | None = None,
    signed_path: str | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    timestamp = str(int(time.time() if at is None else at))
    signature = rules.sign(
        secret, timestamp, method, signed_path or path, raw if signed_body is None else signed_body
    )
    sent = {"X-Mailroom-Timestamp": timestamp, "X-Mailroom-Signature": signature, **(headers or {})}
    if body is not None:
        sent["content-type"] = "application/json"
    from tests.support.lambda_api import LambdaContext, function_module, http_event

    event = http_event(method, path, headers=sent, body=raw if body is not None else None)
    response = function_module("support").handler(event, LambdaContext(function_name="support"))
    payload = response.get("body") or ""
    result = Result(
        status=response["statusCode"],
        headers={k.lower(): v for k, v in response["headers"].items()},
        body=base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode(),
    )
    from tests.support.lambda_api import _check_conformance

    _check_conformance(method, path, result)
    return result


def test_the_support_api_answers_edits_and_withdraws(desk: str, org: NewOrganization) -> None:
    token = org.admin_token
    ticket_id = ok(open_ticket(token), 201)["id"]
    body = {"ticket_id": ticket_id, "body": "Looking into it.", "author_name": "Support bot"}
    answer = ok(signed("POST", "/api/v1/support/reply", body), 201)
    assert (answer["author"], answer["via"], answer["author_name"]) == (
        "operator",
        "support_api",
        "Support bot",
    )
    assert ticket(token, ticket_id)["status"] == "answered"

    path = f"/api/v1/support/messages/{answer['id']}"
    edited = ok(signed("PUT", path, {"body": "Fixed on our side."}))
    assert edited["body"] == "Fixed on our side." and edited["edited_at"]
    assert thread(token, ticket_id)[1]["body"] == "Fixed on our side."

    # The organization's own message is not the operator's to edit.
    own = thread(token, ticket_id)[0]["id"]
    refused = signed("PUT", f"/api/v1/support/messages/{own}", {"body": "rewritten"})
    assert (refused.status, refused.error_code) == (404, "not_found")

    assert signed("DELETE", path).status == 204
    assert [m["author"] for m in thread(token, ticket_id)] == ["organization"]
    assert ticket(token, ticket_id)["message_count"] == 1
    # Signed anew (the same request in the same second is the same signature: a replay, 401).
    assert signed("DELETE", path, at=time.time() + 1).status == 404

    closing = {"ticket_id": ticket_id, "body": "Closing this.", "close": True}
    ok(signed("POST", "/api/v1/support/reply", closing), 201)
    assert ticket(token, ticket_id)["status"] == "closed"
    assert event_types(token) == ["ticket.closed", "ticket.created", "ticket.replied", "ticket.replied"]
    unknown = signed(
        "POST", "/api/v1/support/reply", {"ticket_id": "tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "body": "x"}
    )
    assert (unknown.status, unknown.error_code) == (404, "not_found")


def test_support_signatures_good_stale_tampered_missing_and_replayed(desk: str, org: NewOrganization) -> None:
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    body = {"ticket_id": ticket_id, "body": "Hello"}
    reply = "/api/v1/support/reply"
    now = time.time()

    def refused(result: Result) -> None:
        assert (result.status, result.error_code) == (401, "unauthenticated"), result.body

    refused(signed("POST", reply, body, at=now - rules.REPLAY_WINDOW_SECONDS - 2))  # stale
    refused(signed("POST", reply, body, at=now + rules.REPLAY_WINDOW_SECONDS + 2))  # from the future
    refused(signed("POST", reply, body, signed_body=b'{"ticket_id": "other", "body": "Hello"}'))  # tampered
    refused(signed("POST", reply, body, secret=SECRET[::-1]))  # another secret
    refused(signed("POST", reply, body, headers={"X-Mailroom-Signature": "v1=" + "0" * 64}))
    refused(signed("POST", reply, body, headers={"X-Mailroom-Signature": "sha256=abc"}))  # malformed
    refused(signed("POST", reply, body, headers={"X-Mailroom-Timestamp": "yesterday"}))
    refused(call("support", "POST", reply, json_body=body))  # no signature at all
    refused(call("support", "POST", reply, json_body=body, token=org.admin_token))  # a token is not one
    # Unsigned, malformed JSON is 401 too (not 422): nothing is read before the signature.
    refused(signed("POST", reply, b"{not json", signed_body=b"{}"))
    # A DELETE signed for one message does not delete another (the path is signed).
    refused(signed("DELETE", "/api/v1/support/messages/tkm_B", signed_path="/api/v1/support/messages/tkm_A"))
    assert len(thread(org.admin_token, ticket_id)) == 1

    # Good, within the window (a little skew either way is fine): accepted once, replays refused.
    good = signed("POST", reply, body, at=now - 60)
    assert good.status == 201
    timestamp = str(int(now - 60))
    replay_headers = {
        "X-Mailroom-Timestamp": timestamp,
        "X-Mailroom-Signature": rules.sign(SECRET, timestamp, "POST", reply, json.dumps(body).encode()),
    }
    refused(call("support", "POST", reply, json_body=body, headers=replay_headers))
    assert len(thread(org.admin_token, ticket_id)) == 2

    # Signed and malformed: now it is the body's turn, 422.
    assert signed("POST", reply, b"{not json").status == 422
    assert signed("POST", reply, {"ticket_id": ticket_id}).status == 422


def test_without_a_secret_every_support_request_is_refused(
    moto_env: None, org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILROOM_SUPPORT_HMAC_SECRET", raising=False)
    get_settings.cache_clear()
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    for secret in ("", "short"):
        answer = signed("POST", "/api/v1/support/reply", {"ticket_id": ticket_id, "body": "x"}, secret=secret)
        assert answer.status == 401


# ----------------------------------------------------------------------------- events


def test_ticket_events_reach_a_subscribed_webhook_signed(
    desk: str, org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the events machinery: the event item the transaction wrote, the table's stream to the
    fan-out function, the queue to the delivery function, a signed request to the endpoint."""
    import boto3
    from standardwebhooks import Webhook

    from local.pollers import succeeded
    from mailroom.store import events
    from tests.support.lambda_api import LambdaContext, function_module
    from tests.support.webhooks import provision_webhook_aws, receiver, sqs_event, stream_event

    wh_aws = provision_webhook_aws(monkeypatch, schedule="0,0,0")
    with receiver() as hook:
        subscribed = {"url": hook.url, "event_types": ["ticket.created", "ticket.replied", "ticket.closed"]}
        created = ok(post("webhooks", org.admin_token, "/api/v1/webhooks", subscribed), 201)
        ticket_id = ok(open_ticket(org.admin_token), 201)["id"]

        recorded = events.list_page(Table(), org.organization["id"], per_page=10, event_type="ticket.created")
        (event,) = recorded.items
        fanned = function_module("event_fanout").handler(stream_event([event]), LambdaContext())
        assert fanned == {"batchItemFailures": []}
        sqs = boto3.client("sqs", region_name="us-east-1")
        messages = sqs.receive_message(
            QueueUrl=wh_aws.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        )["Messages"]
        result = function_module("webhook_delivery").handler(
            sqs_event([dict(m) for m in messages], queue_arn=wh_aws.queue_arn), LambdaContext()
        )
        assert succeeded([m["MessageId"] for m in messages], result, report_batch_item_failures=True)

    (request,) = hook.received
    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload["event_type"] == "ticket.created" and payload["event_id"] == event["event_id"]
    assert payload["data"]["ticket"]["id"] == ticket_id
    assert payload["data"]["message"]["body"] == "Our DKIM check fails."


def test_the_operator_closes_and_the_cli_refuses_what_it_cannot_do(
    desk: str, org: NewOrganization, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    ticket_id = ok(open_ticket(org.admin_token), 201)["id"]
    answer = tmp_path / "answer.txt"
    answer.write_text("Fixed: the selector is published.\n", encoding="utf-8")
    status, out, err = run_cli(capsys, "reply", ticket_id, "--body-file", str(answer), "--name", "Pat")
    assert status == 0, err
    assert f"ticket        {ticket_id} (answered)" in out

    status, out, err = run_cli(capsys, "close", ticket_id, "--json")
    assert status == 0, err
    assert (json.loads(out)["status"], json.loads(out)["closed_by"]) == ("closed", "operator")
    assert ticket(org.admin_token, ticket_id)["closed_by"] == "operator"

    for argv, message in [
        (("close", ticket_id), "is closed"),
        (("show", "tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV"), "ticket not found"),
        (("reply", "not-a-ticket", "--body", "x"), "ticket not found"),
        (("reply", ticket_id, "--body", "   "), "1 to 20000 characters"),
        (("list", "--limit", "0"), "--limit"),
    ]:
        status, out, err = run_cli(capsys, *argv)
        assert (status, out) == (2, ""), argv
        assert message in err, (argv, err)
    (listed,) = json.loads(run_cli(capsys, "list", "--status", "closed", "--json")[1])
    assert listed["id"] == ticket_id
    assert json.loads(run_cli(capsys, "list", "--status", "open", "--json")[1]) == []


def test_open_tickets_are_limited_and_the_operator_may_always_reopen(
    desk: str, org: NewOrganization, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailroom.store import organizations

    monkeypatch.setattr(rules, "MAX_OPEN_TICKETS", 2)
    token, org_id = org.admin_token, org.organization["id"]

    def open_count() -> int:
        item = organizations.get(Table(), org_id)
        assert item is not None
        return int(item.get("open_ticket_count") or 0)

    first, second = (ok(open_ticket(token, subject=f"T{n}"), 201)["id"] for n in (1, 2))
    refused = open_ticket(token, subject="T3")
    assert (refused.status, refused.error_code) == (422, "ticket_limit_reached")
    assert len(emails_to_support()) == 2  # the refused one was not emailed
    assert open_count() == 2

    ok(post("tickets", token, f"/api/v1/tickets/{first}:close"))
    assert open_count() == 1
    third = ok(open_ticket(token, subject="T3"), 201)["id"]
    assert open_count() == 2

    # The operator reopens the closed one by answering it: over the limit, which only stops the
    # organization from opening more.
    assert run_cli(capsys, "reply", first, "--body", "One more thing.")[0] == 0
    assert ticket(token, first)["status"] == "answered" and open_count() == 3
    assert open_ticket(token, subject="T4").error_code == "ticket_limit_reached"
    for ticket_id in (first, second, third):
        ok(post("tickets", token, f"/api/v1/tickets/{ticket_id}:close"))
    assert open_count() == 0
