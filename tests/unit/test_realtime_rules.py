"""Which events reach which WebSocket connection, and what an event bus ARN may be."""

from __future__ import annotations

import pytest

from mailroom.domain import event_buses, realtime


def connection(*subscriptions: dict[str, list[str]], mailbox_id: str | None = None) -> dict[str, object]:
    return {"mailbox_id": mailbox_id, "subscriptions": list(subscriptions)}


RECEIVED_A = ("message.received", {"id": "msg_1", "mailbox_id": "mbx_A"})
RECEIVED_B = ("message.received", {"id": "msg_2", "mailbox_id": "mbx_B"})
DOMAIN = ("domain.verified", {"id": "dom_1"})


@pytest.mark.parametrize(
    ("subscriptions", "mailbox_id", "event", "expected"),
    [
        ([], None, RECEIVED_A, False),  # no subscription: nothing
        ([{"event_types": ["message.received"], "inbox_ids": []}], None, RECEIVED_A, True),
        ([{"event_types": ["message.received"], "inbox_ids": ["mbx_A"]}], None, RECEIVED_B, False),
        ([{"event_types": ["message.sent"], "inbox_ids": []}], None, RECEIVED_A, False),
        (
            [
                {"event_types": ["message.sent"], "inbox_ids": []},
                {"event_types": ["message.received"], "inbox_ids": ["mbx_B"]},
            ],
            None,
            RECEIVED_B,
            True,
        ),
        # An organization event passes a mailbox filter, as for webhooks...
        ([{"event_types": ["domain.verified"], "inbox_ids": ["mbx_A"]}], None, DOMAIN, True),
        # ...but never reaches a message token's connection, nor another mailbox's mail.
        ([{"event_types": ["domain.verified"], "inbox_ids": []}], "mbx_A", DOMAIN, False),
        ([{"event_types": ["message.received"], "inbox_ids": []}], "mbx_A", RECEIVED_B, False),
        ([{"event_types": ["message.received"], "inbox_ids": ["mbx_A"]}], "mbx_A", RECEIVED_A, True),
        (
            [{"event_types": ["webhook.test"], "inbox_ids": []}],
            None,
            ("webhook.test", {"webhook_id": "wh_1"}),
            False,
        ),
    ],
)
def test_matches(subscriptions, mailbox_id, event, expected) -> None:
    assert realtime.matches(connection(*subscriptions, mailbox_id=mailbox_id), *event) is expected


def test_a_message_token_subscribes_to_mail_events_of_its_own_mailbox_only() -> None:
    assert all(t.startswith("message.") for t in realtime.allowed_types("mbx_A"))
    assert "domain.verified" in realtime.allowed_types(None)
    assert realtime.foreign_inboxes("mbx_A", ["mbx_A", "mbx_B"]) == ["mbx_B"]
    assert realtime.foreign_inboxes(None, ["mbx_A", "mbx_B"]) == []


@pytest.mark.parametrize(
    ("arn", "parts"),
    [
        (
            "arn:aws:events:us-east-1:123456789012:event-bus/default",
            ("aws", "us-east-1", "123456789012", "default"),
        ),
        (
            "arn:aws-us-gov:events:us-gov-west-1:123456789012:event-bus/a.b-c_d",
            ("aws-us-gov", "us-gov-west-1", "123456789012", "a.b-c_d"),
        ),
        (
            "arn:aws-cn:events:cn-north-1:123456789012:event-bus/aws.partner/acme/x",
            ("aws-cn", "cn-north-1", "123456789012", "aws.partner/acme/x"),
        ),
    ],
)
def test_event_bus_arns(arn: str, parts: tuple[str, str, str, str]) -> None:
    bus = event_buses.parse_arn(arn)
    assert (bus.partition, bus.region, bus.account, bus.name) == parts


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:events:us-east-1:12345678901:event-bus/short",
        "arn:aws:events:us-east-1:123456789012:rule/not-a-bus",
        "arn:aws:events:us-east-1:123456789012:event-bus/",
        "arn:aws:events:us-east-1:123456789012:event-bus/has space",
        "arn:aws:events:useast1:123456789012:event-bus/x",
        "arn:aws:events:us-east-1:123456789012:event-bus/x\n",
        "",
    ],
)
def test_not_event_bus_arns(arn: str) -> None:
    with pytest.raises(event_buses.InvalidEventBusArn):
        event_buses.parse_arn(arn)


def test_only_listed_accounts_are_destinations() -> None:
    bus = event_buses.parse_arn("arn:aws:events:eu-west-1:111122223333:event-bus/orders")
    assert event_buses.check_allowed(bus, {"111122223333"}) is bus
    with pytest.raises(event_buses.EventBusNotAllowed, match="111122223333"):
        event_buses.check_allowed(bus, {"444455556666"})
    with pytest.raises(event_buses.EventBusNotAllowed, match="not enabled"):
        event_buses.check_allowed(bus, set())
