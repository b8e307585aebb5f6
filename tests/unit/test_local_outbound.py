"""The local stack's SES outbound: what moto accepts is reported (with the configuration set and tags
moto drops), delivered the way SES would (local inbound, the mailbox simulator, the outbox), and
its configuration set's events published to the template's EventBridge rules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_patches
from local.eventbridge import EventBus
from local.moto_patches import ses_sends
from local.moto_patches.ses_sends import SentEmail
from local.outbound import (
    LocalOutbound,
    amazon_message_id,
    domain_claims,
    simulator_behaviour,
    with_message_id,
)
from local.ses import ReceiptRule
from local.smtp import Received
from local.stack import SesEventDestinationSpec, Stack
from local.template import Naming
from tests.support.aws import create_table_from_template

RAW = (
    b"From: Alice <alice@sender.test>\r\nTo: Bob <bob@hosted.test>\r\nSubject: Hi\r\n"
    b"Message-ID: <ours@sender.test>\r\nMIME-Version: 1.0\r\n\r\nHello Bob\r\n"
)
TAGS = {"org_id": "org_1", "mailbox_id": "mbx_1", "message_id": "msg_1"}
TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Sending:
    Type: AWS::SES::ConfigurationSet
  ToBus:
    Type: AWS::SES::ConfigurationSetEventDestination
    Properties:
      ConfigurationSetName: !Ref Sending
      EventDestination:
        Name: to-bus
        Enabled: true
        MatchingEventTypes: [delivery, bounce, complaint]
        EventBridgeDestination:
          EventBusArn: !Sub arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/default
  Events:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: events/
      Handler: app.handler
      Events:
        Ses:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.ses]
              detail-type: [Email Delivered, Email Bounced, Email Complaint Received]
              detail:
                mail:
                  tags:
                    ses:configuration-set: [!Ref Sending]
        Off:
          Type: EventBridgeRule
          Properties:
            State: DISABLED
            Pattern:
              source: [aws.ses]
"""


class FakeInbound:
    def __init__(self, rules: list[ReceiptRule], gate: threading.Event | None = None) -> None:
        self._rules = rules
        self.gate = gate
        self.received: list[tuple[bytes, str, list[str]]] = []

    def rules(self) -> list[ReceiptRule]:
        return self._rules

    def receives_for(self, address: str) -> bool:
        return True

    def receive(
        self, raw: bytes, *, source: str, recipients: list[str], helo: str = "", peer: str = ""
    ) -> Received:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.received.append((raw, source, recipients))
        return Received("inbound-1", ["hosted"])


class FakeRuntime:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, dict[str, Any]]] = []

    def submit(self, ref: str, event: Any) -> Any:
        self.submitted.append((ref, event))
        return None


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return Stack.load(path, naming=Naming(stack_name="t", region="us-east-1"))


def outbound(
    stack: Stack, tmp_path: Path, runtime: FakeRuntime, inbound: FakeInbound, region: str = "us-east-1"
) -> LocalOutbound:
    return LocalOutbound(
        inbound=inbound,
        hosted=lambda domain: domain in ("hosted.test", "norule.test"),
        publish=EventBus(stack.event_rules, runtime).publish,
        destinations=stack.ses_event_destinations,
        outbox=tmp_path / "outbox",
        region=region,
        account_id="123456789012",
        now=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )


def sent(recipients: list[str], configuration_set: str | None = "t-Sending") -> SentEmail:
    return SentEmail(
        message_id="0100-ses-id",
        from_address="alice@sender.test",
        recipients=recipients,
        raw=RAW,
        configuration_set=configuration_set,
        tags=dict(TAGS),
    )


def hosted_rules() -> list[ReceiptRule]:
    return [ReceiptRule.from_api({"Name": "hosted", "Enabled": True, "Recipients": ["hosted.test"]})]


def test_the_template_declares_rules_and_destinations(stack: Stack) -> None:
    (destination,) = stack.ses_event_destinations
    assert destination == SesEventDestinationSpec(
        configuration_set="t-Sending",
        name="to-bus",
        enabled=True,
        event_types=frozenset({"delivery", "bounce", "complaint"}),
        kind="eventbridge",
    )
    enabled, disabled = stack.event_rules
    assert (enabled.function, enabled.event, enabled.enabled, enabled.bus) == (
        "Events",
        "Ses",
        True,
        "default",
    )
    assert enabled.pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == ["t-Sending"]
    assert disabled.enabled is False


def test_message_ids_as_ses_gives_them() -> None:
    assert amazon_message_id("abc", "us-east-1") == "<abc@email.amazonses.com>"
    assert amazon_message_id("abc", "eu-west-1") == "<abc@eu-west-1.amazonses.com>"
    folded = b"From: a@x\nMessage-ID:\n  <old@x>\nSubject: s\n\nbody Message-ID: <keep@x>\n"
    assert (
        with_message_id(folded, "<new@y>")
        == b"From: a@x\nMessage-ID: <new@y>\nSubject: s\n\nbody Message-ID: <keep@x>\n"
    )
    assert with_message_id(b"From: a@x\r\n\r\nb", "<n@y>") == b"Message-ID: <n@y>\r\nFrom: a@x\r\n\r\nb"


def test_simulator_addresses() -> None:
    assert simulator_behaviour("bounce@simulator.amazonses.com") == "bounce"
    assert simulator_behaviour("Complaint+label@Simulator.AmazonSES.com") == "complaint"
    assert simulator_behaviour("whatever@simulator.amazonses.com") == "success"
    assert simulator_behaviour("bounce@example.com") is None


def test_each_recipient_goes_where_ses_would_send_it(stack: Stack, tmp_path: Path) -> None:
    runtime, inbound = FakeRuntime(), FakeInbound(hosted_rules())
    outcome = outbound(stack, tmp_path, runtime, inbound).process(
        sent(
            [
                "Bob <Bob@Hosted.test>",
                "nobody@norule.test",
                "ext@elsewhere.test",
                "bounce+x@simulator.amazonses.com",
                "complaint@simulator.amazonses.com",
                "success@simulator.amazonses.com",
            ]
        )
    )
    assert outcome is not None
    ((raw, source, recipients),) = inbound.received
    assert b"Message-ID: <0100-ses-id@email.amazonses.com>\r\n" in raw and b"<ours@sender.test>" not in raw
    assert (source, recipients) == ("alice@sender.test", ["bob@hosted.test"])
    assert outcome.refused == ["nobody@norule.test"] and outcome.outbox == ["ext@elsewhere.test"]
    assert outcome.outbox_file == tmp_path / "outbox" / "0100-ses-id.eml"
    written = outcome.outbox_file.read_bytes()
    assert written.startswith(
        b"Return-Path: <alice@sender.test>\r\nX-Mailroom-Outbox-To: ext@elsewhere.test\r\n"
    )
    assert written.endswith(raw)

    summary = [
        (e["detail-type"], tuple(_recipients(e["detail"]))) for e in outcome.events
    ]  # no Send: the destination does not list it
    assert summary == [
        ("Email Delivered", ("bob@hosted.test",)),
        ("Email Delivered", ("ext@elsewhere.test",)),
        ("Email Bounced", ("bounce+x@simulator.amazonses.com",)),
        ("Email Delivered", ("complaint@simulator.amazonses.com",)),
        ("Email Complaint Received", ("complaint@simulator.amazonses.com",)),
        ("Email Delivered", ("success@simulator.amazonses.com",)),
        ("Email Bounced", ("nobody@norule.test",)),
    ]
    first = outcome.events[0]
    assert (first["source"], first["account"], first["region"]) == ("aws.ses", "123456789012", "us-east-1")
    mail = first["detail"]["mail"]
    assert mail["messageId"] == "0100-ses-id" and mail["sendingAccountId"] == "123456789012"
    assert mail["tags"]["org_id"] == ["org_1"] and mail["tags"]["message_id"] == ["msg_1"]
    assert mail["tags"]["ses:configuration-set"] == ["t-Sending"]
    assert mail["commonHeaders"]["subject"] == "Hi"
    assert first["detail"]["delivery"]["smtpResponse"].startswith("250")
    bounce = outcome.events[-1]["detail"]["bounce"]
    assert (
        bounce["bounceType"] == "Permanent"
        and "no SES receipt rule" in bounce["bouncedRecipients"][0]["diagnosticCode"]
    )
    # Every event went to the enabled rule's function, none to the disabled one.
    assert [ref for ref, _ in runtime.submitted] == ["Events"] * len(outcome.events)


def test_without_a_matching_destination_nothing_is_published(stack: Stack, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    local = outbound(stack, tmp_path, runtime, FakeInbound(hosted_rules()))
    for configuration_set in (None, "another-set"):
        outcome = local.process(sent(["ext@elsewhere.test"], configuration_set))
        assert outcome is not None and outcome.events == [] and outcome.outbox == ["ext@elsewhere.test"]
    assert runtime.submitted == []


def test_the_bus_matches_patterns(stack: Stack) -> None:
    bus = EventBus(stack.event_rules, FakeRuntime())
    ours = {
        "source": "aws.ses",
        "detail-type": "Email Bounced",
        "detail": {"mail": {"tags": {"ses:configuration-set": ["t-Sending"]}}},
    }
    assert bus.targets(ours) == ["Events"]
    assert bus.targets({**ours, "detail-type": "Email Opened"}) == []
    other_set = {**ours, "detail": {"mail": {"tags": {"ses:configuration-set": ["someone-else"]}}}}
    assert bus.targets(other_set) == []


def test_the_listener_never_waits_for_delivery(stack: Stack, tmp_path: Path) -> None:
    gate = threading.Event()
    runtime, inbound = FakeRuntime(), FakeInbound(hosted_rules(), gate)
    local = outbound(stack, tmp_path, runtime, inbound)
    try:
        future = local.on_send(sent(["bob@hosted.test"]))
        assert not future.done() and inbound.received == []  # still waiting on the gate
        gate.set()
        outcome = future.result(timeout=10)
        assert outcome is not None and outcome.received == ["bob@hosted.test"]
    finally:
        gate.set()
        local.stop()


def _recipients(detail: dict[str, Any]) -> list[str]:
    if "delivery" in detail:
        return list(detail["delivery"]["recipients"])
    if "bounce" in detail:
        return [r["emailAddress"] for r in detail["bounce"]["bouncedRecipients"]]
    return [r["emailAddress"] for r in detail["complaint"]["complainedRecipients"]]


# --- moto: what a send reports, and the domain claims ------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.install()
    with mock_aws():
        yield


def test_moto_keeps_the_configuration_set_and_tags_and_reports_the_send(aws: None) -> None:
    from moto.ses.models import ses_backends

    reported: list[SentEmail] = []
    client = boto3.client("sesv2", region_name="us-east-1")
    client.create_email_identity(EmailIdentity="sender.test")
    ses_sends.add_send_listener(reported.append)
    try:
        response = client.send_email(
            FromEmailAddress="alice@sender.test",
            Destination={"ToAddresses": ["bob@hosted.test"], "BccAddresses": ["hidden@x.test"]},
            Content={"Raw": {"Data": RAW}},
            ConfigurationSetName="t-Sending",
            EmailTags=[{"Name": k, "Value": v} for k, v in TAGS.items()],
        )
    finally:
        ses_sends.remove_send_listener(reported.append)
    (report,) = reported
    assert report.message_id == response["MessageId"]
    assert (report.from_address, report.recipients, report.raw) == (
        "alice@sender.test",
        ["bob@hosted.test", "hidden@x.test"],
        RAW,
    )
    assert (report.configuration_set, report.tags) == ("t-Sending", TAGS)
    stored = ses_backends["123456789012"]["us-east-1"].sent_messages[-1]
    assert (stored.configuration_set_name, stored.email_tags) == ("t-Sending", TAGS)


def test_a_failing_listener_does_not_fail_the_send(aws: None) -> None:
    def broken(_sent: SentEmail) -> None:
        raise RuntimeError("listener bug")

    client = boto3.client("sesv2", region_name="us-east-1")
    client.create_email_identity(EmailIdentity="sender.test")
    ses_sends.add_send_listener(broken)
    try:
        response = client.send_email(
            FromEmailAddress="alice@sender.test",
            Destination={"ToAddresses": ["bob@hosted.test"]},
            Content={"Raw": {"Data": RAW}},
        )
    finally:
        ses_sends.remove_send_listener(broken)
    assert response["MessageId"]


def test_hosted_domains_are_the_ones_with_a_claim(aws: None) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_table_from_template(dynamodb, "t-Table")
    dynamodb.put_item(
        TableName="t-Table",
        Item={"PK": {"S": "DOMAIN#hosted.test"}, "SK": {"S": "#CLAIM"}, "org_id": {"S": "org_1"}},
    )
    hosted = domain_claims(dynamodb, "t-Table")
    assert hosted("hosted.test") and hosted("Hosted.TEST")
    assert not hosted("elsewhere.test")
