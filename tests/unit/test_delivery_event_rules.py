"""Reading SES's sending events (events/ses_delivery_*.json, as EventBridge delivers them, or
wrapped in SNS) and the rules for a recipient's state and a message's overall status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.services import delivery_events as rules
from tests.support.lambda_api import load_event


def parsed(name: str) -> rules.DeliveryEvent:
    (record,) = list(rules.records(load_event(name)))
    event = rules.parse_record(record)
    assert event is not None
    return event


def test_a_delivery_names_its_recipients_and_routing_tags() -> None:
    event = parsed("ses_delivery_delivered.json")
    assert (event.ses_type, event.org_id, event.mailbox_id, event.message_id) == (
        "Delivery",
        "org_01JQ0000000000000000000000",
        "mbx_01JQ0000000000000000000000",
        "msg_01JQ0000000000000000000000",
    )
    assert event.ses_message_id.startswith("0100018e1f2a3b4c")
    (result,) = event.results
    assert (result.address, result.status, result.at, result.suppress) == (
        "bob@example.net",
        "delivered",
        "2026-03-01T12:00:04.512Z",
        None,
    )
    assert result.detail == {
        "smtp_response": "250 2.6.0 Message received",
        "reporting_mta": "a8-70.smtp-out.amazonses.com",
        "remote_mta_ip": "198.51.100.25",
    }


def test_bounces_complaints_rejections_and_delays() -> None:
    (bounce,) = parsed("ses_delivery_bounced.json").results
    assert (bounce.status, bounce.suppress) == ("bounced", "hard_bounce")
    assert bounce.detail == {
        "bounce_type": "Permanent",
        "bounce_sub_type": "General",
        "action": "failed",
        "smtp_status": "5.1.1",
        "diagnostic_code": "smtp; 550 5.1.1 user unknown",
    }
    (complaint,) = parsed("ses_delivery_complaint.json").results
    assert (complaint.status, complaint.suppress, complaint.at) == (
        "complained",
        "complaint",
        "2026-03-01T13:10:00.000Z",
    )
    assert complaint.detail["complaint_feedback_type"] == "abuse"
    (rejected,) = parsed("ses_delivery_rejected.json").results
    assert (rejected.address, rejected.status, rejected.detail) == (
        "bob@example.net",
        "rejected",
        {"reason": "Bad content"},
    )
    assert rejected.at == "2026-03-01T12:00:00.000Z"  # a rejection has no time of its own: the send's
    (delayed,) = parsed("ses_delivery_delayed.json").results
    assert (delayed.status, delayed.suppress) == ("delayed", None)
    assert delayed.detail["delay_type"] == "TransientCommunicationFailure"


def test_only_permanent_bounces_suppress() -> None:
    event = load_event("ses_delivery_bounced.json")
    for bounce_type, suppress in (("Transient", None), ("Undetermined", None), ("Permanent", "hard_bounce")):
        event["detail"]["bounce"]["bounceType"] = bounce_type
        (record,) = list(rules.records(event))
        parsed_event = rules.parse_record(record)
        assert parsed_event is not None and parsed_event.results[0].suppress == suppress


def test_sns_notifications_and_unknown_types() -> None:
    detail = load_event("ses_delivery_delivered.json")["detail"]
    sns = {"Records": [{"Sns": {"Message": json.dumps(detail)}}, {"Sns": {"Message": "not json"}}]}
    assert [r["eventType"] for r in rules.records(sns)] == ["Delivery"]
    assert rules.parse_record({**detail, "eventType": "Open"}) is None
    assert rules.parse_record({"eventType": "Delivery", "mail": {}}) is None


@pytest.mark.parametrize(
    ("statuses", "overall"),
    [
        ([], "sending"),
        (["sending", "sending"], "sending"),
        (["delivered", "sending"], "sending"),
        (["delivered", "delayed"], "delayed"),
        (["delivered", "delivered"], "delivered"),
        (["bounced", "bounced"], "bounced"),
        (["bounced", "rejected"], "bounced"),
        (["rejected", "rejected"], "rejected"),
        (["delivered", "bounced"], "partially_delivered"),
        (["delivered", "complained", "sending"], "complained"),
    ],
)
def test_overall_status(statuses: list[str], overall: str) -> None:
    recipients: dict[str, Any] = {f"r{i}@x.org": {"status": s} for i, s in enumerate(statuses)}
    status, counts = rules.overall(recipients)
    assert status == overall
    assert sum(counts.values()) == len(statuses)


def test_a_recipient_only_moves_forward() -> None:
    allowed = rules.ALLOWED_FROM
    for status in allowed:
        assert status not in allowed[status], f"{status} twice would record it twice"
    assert "delivered" not in allowed["delivered"] and "complained" not in allowed["delivered"]
    assert "delivered" in allowed["bounced"] and "delivered" in allowed["complained"]
    assert "delivered" not in allowed["delayed"]


def test_event_ids_are_deterministic_per_message_recipient_and_status() -> None:
    one = rules.event_ulid("msg_1", "bob@x.org", "delivered", "2026-03-01T12:00:04.512Z")
    assert one == rules.event_ulid("msg_1", "bob@x.org", "delivered", "2026-03-01T12:00:04.512Z")
    assert one != rules.event_ulid("msg_1", "bob@x.org", "bounced", "2026-03-01T12:00:04.512Z")
    assert one != rules.event_ulid("msg_1", "carol@x.org", "delivered", "2026-03-01T12:00:04.512Z")
    assert one < rules.event_ulid("msg_1", "bob@x.org", "delivered", "2026-03-01T12:00:05.000Z")
