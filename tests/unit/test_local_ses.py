"""SES inbound: receipt rule matching, the receipt event, rule actions, and the SMTP listener."""

import smtplib
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto import mock_aws

from local import ses
from local.aws import Clients, provision
from local.runtime import FunctionRuntime
from local.smtp import InboundProcessor, SmtpServer, moto_identities, moto_rules
from local.smtp import is_identity as ses_is_identity
from local.stack import Stack
from tests.support.local_records import read_records

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"
MESSAGE = (
    b"From: Jane Doe <jane@sender.test>\r\nTo: bob@example.com, Carl <carl@example.com>\r\n"
    b"Cc: dee@other.test\r\n"
    b"Subject: Hello\r\nDate: Wed, 15 Jan 2025 10:00:00 +0000\r\nMessage-ID: <m1@sender.test>\r\n"
    b"X-Mailroom-Test-Spam-Verdict: FAIL\r\nX-Mailroom-Test-Dmarc-Verdict: FAIL\r\n"
    b"X-Mailroom-Test-Dmarc-Policy: reject\r\n\r\nHi Bob\r\n"
)


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("bob@example.com", "bob@example.com", True),
        ("bob@example.com", "BOB@Example.COM", True),
        ("bob@example.com", "alice@example.com", False),
        ("example.com", "anyone@example.com", True),
        ("example.com", "anyone@sub.example.com", False),
        (".example.com", "anyone@sub.example.com", True),
        (".example.com", "anyone@deep.sub.example.com", True),
        (".example.com", "anyone@example.com", False),
        (".example.com", "anyone@notexample.com", False),
    ],
)
def test_recipient_matching(pattern, address, matches):
    assert ses.recipient_matches(pattern, address) is matches


def test_rules_without_recipients_match_everyone_and_disabled_rules_nobody():
    everyone = ses.ReceiptRule.from_api({"Name": "all", "Enabled": True})
    disabled = ses.ReceiptRule.from_api({"Name": "off", "Enabled": False, "Recipients": ["x.test"]})
    assert everyone.matches("anyone@anywhere.test")
    assert not disabled.matches("a@x.test")
    assert ses.matching_rules([disabled, everyone], "a@x.test") == [everyone]


def test_verdicts_come_from_test_headers():
    verdicts = ses.verdicts_of(MESSAGE)
    assert verdicts == {
        "spam": "FAIL",
        "virus": "PASS",
        "spf": "PASS",
        "dkim": "PASS",
        "dmarc": "FAIL",
        "dmarcPolicy": "reject",
    }
    assert ses.verdicts_of(b"X-Mailroom-Test-Virus-Verdict: maybe\r\n\r\n")["virus"] == "PASS"


def test_receipt_event_shape():
    at = datetime(2025, 1, 15, 10, 0, 1, 234000, tzinfo=UTC)
    mail = ses.mail_object(
        MESSAGE, source="bounce@sender.test", destination=["bob@example.com"], message_id="abc", timestamp=at
    )
    receipt = ses.receipt_object(
        recipients=["bob@example.com"],
        verdicts=ses.verdicts_of(MESSAGE),
        timestamp=at,
        processing_ms=12,
        action={"type": "Lambda", "functionArn": "arn:f", "invocationType": "Event"},
    )
    event = ses.lambda_event(mail, receipt)
    (record,) = event["Records"]
    assert (record["eventSource"], record["eventVersion"]) == ("aws:ses", "1.0")
    assert record["ses"]["mail"]["timestamp"] == "2025-01-15T10:00:01.234Z"
    assert mail["source"] == "bounce@sender.test"
    assert mail["messageId"] == "abc"
    assert mail["headersTruncated"] is False
    assert mail["headers"][0] == {"name": "From", "value": "Jane Doe <jane@sender.test>"}
    assert mail["commonHeaders"] == {
        "from": ["Jane Doe <jane@sender.test>"],
        "to": ["bob@example.com", "Carl <carl@example.com>"],
        "cc": ["dee@other.test"],
        "subject": "Hello",
        "date": "Wed, 15 Jan 2025 10:00:00 +0000",
        "messageId": "<m1@sender.test>",
    }
    assert receipt["spamVerdict"] == {"status": "FAIL"}
    assert receipt["virusVerdict"] == {"status": "PASS"}
    assert receipt["dmarcVerdict"] == {"status": "FAIL"}
    assert receipt["dmarcPolicy"] == "reject"
    assert receipt["processingTimeMillis"] == 12
    assert receipt["action"] == {"type": "Lambda", "functionArn": "arn:f", "invocationType": "Event"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Stack, Clients, FunctionRuntime]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region="us-east-1")
        provision(stack, clients)
        runtime = FunctionRuntime(stack.functions, concurrency=4)
        yield stack, clients, runtime
        runtime.shutdown(wait_seconds=5)


def recorded(folder: Path, count: int, timeout: float = 10.0) -> list[dict]:
    """The Recorder's events, once there are ``count`` of them (Event invocations finish later)."""
    path = folder / "Recorder.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        events = read_records(path)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


def test_rules_come_from_the_template_in_order(aws):
    _, clients, _ = aws
    rules = moto_rules(clients("ses"))()
    assert [(r.name, r.enabled) for r in rules] == [
        ("inbound", True),
        ("subdomains", True),
        ("disabled", False),
    ]


def test_s3_and_lambda_actions(aws, tmp_path):
    stack, clients, runtime = aws
    processor = InboundProcessor(moto_rules(clients("ses")), runtime, clients("s3"), region="us-east-1")
    received = processor.receive(
        MESSAGE,
        source="bounce@sender.test",
        recipients=["bob@example.com"],
        helo="mx.sender.test",
        peer="192.0.2.1",
    )
    message_id = received.message_id
    assert received.rules == ["inbound"]

    stored = (
        clients("s3").get_object(Bucket=stack.buckets[0].name, Key=f"inbound/{message_id}")["Body"].read()
    )
    assert stored.endswith(MESSAGE)  # the raw message, after the headers SES adds
    assert stored.startswith(
        b"Return-Path: <bounce@sender.test>\r\nReceived: from mx.sender.test (192.0.2.1)"
    )
    assert b"X-SES-Spam-Verdict: FAIL\r\n" in stored
    assert b"dmarc=fail header.from=sender.test" in stored

    (event,) = recorded(tmp_path, 1)
    record = event["Records"][0]["ses"]
    assert record["mail"]["messageId"] == message_id
    assert record["mail"]["destination"] == ["bob@example.com"]
    assert record["mail"]["commonHeaders"]["returnPath"] == "bounce@sender.test"
    assert record["receipt"]["recipients"] == ["bob@example.com"]
    assert record["receipt"]["action"] == {
        "type": "Lambda",
        "functionArn": stack.functions["Recorder"].arn,
        "invocationType": "RequestResponse",
    }
    assert record["receipt"]["spamVerdict"] == {"status": "FAIL"}


def test_each_matching_rule_runs_until_a_stop(aws, tmp_path):
    _, clients, runtime = aws
    processor = InboundProcessor(moto_rules(clients("ses")), runtime, clients("s3"), region="us-east-1")
    both = ["bob@example.com", "x@a.example.org"]
    assert processor.receive(MESSAGE, source="s@sender.test", recipients=both).rules == [
        "inbound",
        "subdomains",
    ]
    events = recorded(tmp_path, 2)
    assert sorted(e["Records"][0]["ses"]["receipt"]["recipients"] for e in events) == [
        ["bob@example.com"],
        ["x@a.example.org"],
    ]
    assert all(e["Records"][0]["ses"]["mail"]["destination"] == both for e in events)

    # The first rule's function answers STOP_RULE_SET for subject "stop": the second rule does not run.
    stop = MESSAGE.replace(b"Subject: Hello", b"Subject: stop")
    assert processor.receive(stop, source="s@sender.test", recipients=both).rules == ["inbound"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_smtp_listener_accepts_matching_recipients_only(aws, tmp_path):
    stack, clients, runtime = aws
    processor = InboundProcessor(moto_rules(clients("ses")), runtime, clients("s3"), region="us-east-1")
    server = SmtpServer(processor, port=free_port(), region="us-east-1")
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            code, _ = smtp.ehlo("client.test")
            assert code == 250
            smtp.mail("sender@sender.test")
            assert smtp.rcpt("nobody@unknown.test")[0] == 550
            assert smtp.rcpt("someone@disabled.test")[0] == 550  # only a disabled rule matches
            assert smtp.rcpt("vip@other.test")[0] == 250
            code, reply = smtp.data(MESSAGE)
        assert code == 250
        message_id = reply.decode().split()[-1]
        (event,) = recorded(tmp_path, 1)
        assert event["Records"][0]["ses"]["mail"]["messageId"] == message_id
        assert event["Records"][0]["ses"]["mail"]["source"] == "sender@sender.test"
        keys = [o["Key"] for o in clients("s3").list_objects_v2(Bucket=stack.buckets[0].name)["Contents"]]
        assert keys == [f"inbound/{message_id}"]
    finally:
        server.stop()


def test_without_rules_every_recipient_is_refused(aws):
    _, _, runtime = aws
    processor = InboundProcessor(lambda: [], runtime, None, region="us-east-1")
    server = SmtpServer(processor, port=free_port(), region="us-east-1")
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.mail("sender@sender.test")
            code, reply = smtp.rcpt("anyone@example.com")
        assert code == 550
        assert b"5.1.1" in reply and b"no receipt rules" in reply
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("address", "receives"),
    [
        ("anyone@example.com", True),
        ("Anyone@EXAMPLE.com", True),
        ("anyone@mail.example.com", True),  # a subdomain of a verified domain
        ("vip@other.test", True),  # an address identity
        ("someone@other.test", False),
        ("anyone@notexample.com", False),
    ],
)
def test_ses_receives_only_for_its_identities(address, receives):
    assert ses_is_identity({"example.com", "vip@other.test"}, address) is receives


def test_smtp_listener_refuses_recipients_that_are_not_ses_identities(aws):
    """A rule without recipients means every verified identity, as on SES: not every address."""
    _stack, clients, runtime = aws
    clients("ses").verify_domain_identity(Domain="example.com")
    processor = InboundProcessor(
        moto_rules(clients("ses")),
        runtime,
        clients("s3"),
        region="us-east-1",
        identities=moto_identities(clients("ses")),
    )
    server = SmtpServer(processor, port=free_port(), region="us-east-1")
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.mail("sender@sender.test")
            assert smtp.rcpt("bob@example.com")[0] == 250
            code, reply = smtp.rcpt("vip@other.test")  # a rule matches, but it is no identity
        assert code == 550
        assert b"5.1.1" in reply and b"identity" in reply
    finally:
        server.stop()
