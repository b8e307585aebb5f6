"""Outbound SMTP relays through the API (moto for AWS) against a real SMTP relay: aiosmtpd with
STARTTLS (a test CA) and AUTH. Relay tests run through the worker's handler with the SQS event of
the message the API queued; sends go through SendFunction's handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, call, function_module
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    delete,
    get,
    new_mailbox,
    ok,
    post,
    put,
)
from tests.support.sending import message_token, send, sent_messages
from tests.support.smtp_target import RelayServer, smtp_relay
from tests.support.webhooks import sqs_event

PASSWORD = "Relay-Secret-9f2c"


@dataclass
class World:
    org: NewOrganization
    relay: RelayServer
    queue_url: str
    queue_arn: str
    alice_token: str

    def put_relay(self, **fields: Any) -> Any:
        body = {
            "host": "localhost",
            "port": self.relay.port,
            "security": "starttls",
            "username": "mailer@example.com",
            "password": PASSWORD,
            "sender_domains": ["example.com"],
            **fields,
        }
        return put("smtp", self.org.admin_token, "/api/v1/smtp", body)

    def run_tests(self) -> None:
        """What the SQS event source would do: hand the queued jobs to the worker."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert messages
        result = function_module("smtp_relay_test").handler(
            sqs_event(messages, queue_arn=self.queue_arn), LambdaContext(function_name="smtp_relay_test")
        )
        assert result == {"batchItemFailures": []}


@pytest.fixture
def world(
    org: NewOrganization,
    table: Table,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    bucket, _purge = create_mail_infrastructure()
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="relay passwords")["KeyMetadata"]["KeyId"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="mailroom-test-SmtpTestQueue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with smtp_relay(
        tmp_path_factory.mktemp("relay"), username="mailer@example.com", password=PASSWORD
    ) as relay:
        for name, value in {
            "MAILROOM_MAIL_BUCKET": bucket,
            "MAILROOM_KMS_KEY_ID": key_id,
            "MAILROOM_SMTP_TEST_QUEUE_URL": queue_url,
            "MAILROOM_SMTP_RELAY_ALLOW_PRIVATE": "1",
            "MAILROOM_SMTP_RELAY_CA_FILE": str(relay.ca_file),
            "MAILROOM_SMTP_RELAY_TIMEOUT_SECONDS": "5",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        add_domain(org, "example.com")
        add_domain(org, "example.org")
        alice = new_mailbox(org, "alice", name="Alice Example")
        yield World(org, relay, queue_url, queue_arn, message_token(org, alice["id"]))
    get_settings.cache_clear()


def test_relay_crud(world: World, table: Table, other_org: NewOrganization) -> None:
    created = ok(world.put_relay())
    assert created["id"].startswith("rly_") and created["password_set"] is True
    assert (created["host"], created["security"], created["sender_domains"]) == (
        "localhost",
        "starttls",
        ["example.com"],
    )
    assert "password" not in created and PASSWORD not in json.dumps(created)
    stored = table.get(f"ORG#{world.org.organization['id']}", f"SMTPRELAY#{created['id']}")
    assert stored is not None and PASSWORD.encode() not in json.dumps(stored, default=repr).encode()
    assert PASSWORD.encode() not in bytes(stored["password_ciphertext"])

    listed = get("smtp", world.org.admin_token, "/api/v1/smtp").json()
    assert [r["id"] for r in listed["data"]] == [created["id"]]

    # Update without a password: the same username keeps the stored one.
    updated = ok(
        world.put_relay(id=created["id"], password=None, sender_domains=["example.com", "Example.ORG"])
    )
    assert updated["sender_domains"] == ["example.com", "example.org"] and updated["password_set"] is True
    assert updated["created_at"] == created["created_at"]

    second = world.put_relay(sender_domains=["example.org"])
    assert (second.status, second.error_code) == (409, "domain_has_relay")
    for fields, code in [
        ({"sender_domains": ["not-ours.example.net"]}, "unknown_domain"),
        ({"security": "none"}, "insecure_auth"),
        ({"host": "127.0.0.1", "sender_domains": ["example.com"], "id": created["id"]}, None),
        ({"password": None}, "password_required"),
        ({"id": "rly_missing"}, "not_found"),
        ({"port": 0}, "validation_error"),
        ({"security": "tls"}, "validation_error"),
    ]:
        refused = world.put_relay(**fields)
        if code is None:
            assert refused.status == 200  # loopback allowed here (MAILROOM_SMTP_RELAY_ALLOW_PRIVATE)
            continue
        assert refused.error_code == code, (fields, refused.body)

    # Another organization sees none of it.
    assert get("smtp", other_org.admin_token, "/api/v1/smtp").json()["data"] == []
    assert delete("smtp", other_org.admin_token, f"/api/v1/smtp/{created['id']}").status == 404

    assert delete("smtp", world.org.admin_token, f"/api/v1/smtp/{created['id']}").status == 204
    assert delete("smtp", world.org.admin_token, f"/api/v1/smtp/{created['id']}").status == 404
    # Its domains are free again.
    assert world.put_relay(sender_domains=["example.org", "example.com"]).status == 200


def test_private_hosts_are_refused_in_deployments(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    relay = ok(world.put_relay(host="localhost"))  # while private relays are allowed
    monkeypatch.delenv("MAILROOM_SMTP_RELAY_ALLOW_PRIVATE")
    get_settings.cache_clear()
    for host in ("127.0.0.1", "169.254.169.254", "10.1.2.3", "[::1]", "localhost"):
        refused = world.put_relay(host=host)
        assert refused.error_code == "invalid_host", (host, refused.body)
    # A name is checked again when it is resolved, at connect time (it may point elsewhere now).
    job = ok(post("smtp", world.org.admin_token, "/api/v1/smtp:test", {"relay_id": relay["id"]}), 202)
    world.run_tests()
    done = ok(get("smtp", world.org.admin_token, f"/api/v1/smtp:test-status/{job['id']}"))
    assert done["status"] == "failed" and done["steps"][-1]["step"] == "resolve"
    assert "not a public address (loopback)" in done["steps"][-1]["detail"]
    assert world.relay.received == []


def test_relay_test_job(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    relay = ok(world.put_relay())
    job = ok(
        post(
            "smtp",
            world.org.admin_token,
            "/api/v1/smtp:test",
            {"relay_id": relay["id"], "send_to": "ops@example.net"},
        ),
        202,
    )
    assert (job["status"], job["steps"], job["send_to"]) == ("queued", [], "ops@example.net")
    world.run_tests()
    done = ok(get("smtp", world.org.admin_token, f"/api/v1/smtp:test-status/{job['id']}"))
    assert done["status"] == "succeeded", done
    assert [(s["step"], s["ok"]) for s in done["steps"]] == [
        ("resolve", True),
        ("connect", True),
        ("tls", True),
        ("auth", True),
        ("send", True),
    ]
    assert done["steps"][1]["reply"].startswith("220 ") and done["steps"][3]["reply"].startswith("235 ")
    assert "queued as 4Bq2kX1Zz9z9" in done["steps"][4]["reply"]
    (received,) = world.relay.received
    assert (received.mail_from, received.rcpt_tos) == ("mailer@example.com", ["ops@example.net"])
    assert b"Subject: Mailroom SMTP relay test" in received.content

    wrong = ok(world.put_relay(id=relay["id"], password="not-the-password"))
    job = ok(post("smtp", world.org.admin_token, "/api/v1/smtp:test", {"relay_id": wrong["id"]}), 202)
    world.run_tests()
    failed = ok(get("smtp", world.org.admin_token, f"/api/v1/smtp:test-status/{job['id']}"))
    assert failed["status"] == "failed"
    assert [(s["step"], s["ok"]) for s in failed["steps"]][-2:] == [("tls", True), ("auth", False)]
    assert failed["steps"][-1]["reply"] == "535 5.7.8 Authentication credentials invalid"
    assert "not-the-password" not in json.dumps(failed) and PASSWORD not in json.dumps(failed)
    assert get("smtp", world.org.admin_token, "/api/v1/smtp:test-status/smt_missing").status == 404

    # Certificates are verified: without the test CA, the relay's certificate is not trusted.
    monkeypatch.delenv("MAILROOM_SMTP_RELAY_CA_FILE")
    get_settings.cache_clear()
    job = ok(post("smtp", world.org.admin_token, "/api/v1/smtp:test", {"relay_id": relay["id"]}), 202)
    world.run_tests()
    untrusted = ok(get("smtp", world.org.admin_token, f"/api/v1/smtp:test-status/{job['id']}"))
    assert [(s["step"], s["ok"]) for s in untrusted["steps"]][-1] == ("tls", False)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted["steps"][-1]["detail"]


def test_sending_through_the_relay(world: World) -> None:
    ok(world.put_relay())
    before = len(sent_messages())
    body = {
        "to": ["bob@example.net"],
        "cc": ["nobody@refused.example.net"],
        "subject": "Through our own server",
        "text": "Hello from the relay.\n.\nA line with only a dot, above.",
    }
    sent = ok(send(world.alice_token, body), 201)
    assert len(sent_messages()) == before  # SES sent nothing
    (received,) = world.relay.received
    assert received.mail_from == "alice@example.com" and received.rcpt_tos == ["bob@example.net"]
    assert sent["ses_message_id"].startswith("relay:rly_")

    raw = call("messages", "GET", f"/api/v1/messages/{sent['message_id']}/raw", token=world.alice_token)
    assert raw.status == 200
    assert received.content == raw.body  # byte for byte: the Sent copy is what the relay got
    assert f"Message-ID: {sent['rfc_message_id']}".encode() in received.content
    delivery = sent["delivery"]["recipients"]
    assert delivery["bob@example.net"]["status"] == "sending"
    assert delivery["nobody@refused.example.net"]["status"] == "rejected"
    assert "550 5.1.1" in delivery["nobody@refused.example.net"]["smtp_response"]

    # Every recipient refused: a permanent failure, with the relay's reply; nothing stored.
    refused = send(world.alice_token, {**body, "to": ["x@refused.example.net"], "cc": []})
    assert (refused.status, refused.error_code) == (422, "relay_rejected")
    assert "550 5.1.1 <x@refused.example.net>" in refused.json()["error"]["message"]


def test_relay_unreachable_is_retryable(world: World) -> None:
    relay = ok(world.put_relay())
    ok(world.put_relay(id=relay["id"], port=1))  # nothing listens on port 1
    failed = send(world.alice_token, {"to": ["bob@example.net"], "subject": "s", "text": "t"})
    assert (failed.status, failed.error_code) == (503, "relay_unavailable")
    assert failed.json()["error"]["retryable"] is True and failed.headers.get("retry-after") == "5"
    assert len(sent_messages()) == 0
