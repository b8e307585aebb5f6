"""SES delivery events (EventBridge, shaped like events/ses_delivery_*.json) through
DeliveryEventsFunction's handler: each Sent copy's delivery status, the suppression list (and its
API), the domain's counters and the message.* events, each recorded once however often SES
delivers the event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import domain_metrics, events, organizations
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, function_module
from tests.support.mailboxes import add_domain, create_mail_infrastructure, delete, get, new_mailbox, ok
from tests.support.sending import message_token, send, ses_event


class Sender:
    def __init__(self, org: NewOrganization, table: Table) -> None:
        self.org, self.table = org, table
        add_domain(org, "example.com")
        self.mailbox = new_mailbox(org, "alice", name="Alice")
        self.token = message_token(org, self.mailbox["id"])

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def send(self, **body: Any) -> dict[str, Any]:
        data = ok(send(self.token, {"subject": "Numbers", "text": "hi", **body}), 201)
        return self.message(data["message_id"])

    def message(self, message_id: str) -> dict[str, Any]:
        item = store.get_message(self.table, self.org_id, self.mailbox["id"], message_id)
        assert item is not None
        return item

    def events(self, *types: str) -> list[dict[str, Any]]:
        page = events.list_page(self.table, self.org_id, per_page=100)
        return [e for e in page.items if e["event_type"] in types]

    def bounces_and_complaints(self) -> tuple[int, int]:
        today = datetime.now(UTC).date().isoformat()
        days = domain_metrics.days(
            self.table, self.org_id, self.mailbox["domain_id"], first_day="2000-01-01", last_day=today
        )
        return sum(d["outbound_bounces"] for d in days), sum(d["outbound_complaints"] for d in days)


@pytest.fixture
def sender(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sender]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    get_settings.cache_clear()
    yield Sender(org, table)
    get_settings.cache_clear()


def handle(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = function_module("delivery_events").handler(
        event, LambdaContext(function_name="delivery-events")
    )
    return result


def test_deliveries_update_each_recipient_once(sender: Sender) -> None:
    sent = sender.send(to=["bob@example.net", "carol@example.net"])
    first = ses_event("delivered", sent, ["bob@example.net"])
    assert handle(first)["changed"] == 1
    assert handle(first) == {"changed": 0, "duplicates": 1, "suppressed": 0, "ignored": []}
    partly = sender.message(sent["id"])["delivery"]
    assert partly["status"] == "sending" and partly["counts"] == {"delivered": 1, "sending": 1}
    assert partly["recipients"]["bob@example.net"]["status"] == "delivered"
    assert partly["recipients"]["bob@example.net"]["smtp_response"] == "250 2.6.0 Message received"
    assert partly["recipients"]["carol@example.net"] == {"status": "sending"}

    handle(ses_event("delivered", sent, ["carol@example.net"]))
    done = sender.message(sent["id"])["delivery"]
    assert done["status"] == "delivered" and done["counts"] == {"delivered": 2}
    delivered = sender.events("message.delivered")
    assert sorted(e["data"]["recipient"] for e in delivered) == ["bob@example.net", "carol@example.net"]
    assert {e["data"]["id"] for e in delivered} == {sent["id"]}
    handle(ses_event("delivered", sent, ["carol@example.net"]))
    assert len(sender.events("message.delivered")) == 2


def test_a_permanent_bounce_suppresses_the_address_and_counts_once(sender: Sender) -> None:
    sent = sender.send(to="Bob <Bob@Example.net>")
    bounce = ses_event("bounced", sent, ["Bob@Example.net"])
    assert handle(bounce)["suppressed"] == 1
    assert handle(bounce) == {"changed": 0, "duplicates": 1, "suppressed": 0, "ignored": []}
    delivery = sender.message(sent["id"])["delivery"]
    assert delivery["status"] == "bounced"
    result = delivery["recipients"]["bob@example.net"]
    assert (result["bounce_type"], result["status"], result["smtp_status"], result["diagnostic_code"]) == (
        "Permanent",
        "bounced",
        "5.1.1",
        "smtp; 550 5.1.1 user unknown",
    )
    (event,) = sender.events("message.bounced")
    assert event["data"]["delivery_event"]["bounce_type"] == "Permanent"
    assert event["data"]["delivery"]["status"] == "bounced"
    assert sender.bounces_and_complaints() == (1, 0)

    listed = get("suppressions", sender.org.admin_token, "/api/v1/suppressions")
    assert listed.status == 200
    (entry,) = listed.json()["data"]
    assert listed.json()["meta"]["total"] == 1
    assert (entry["address"], entry["reason"]) == ("bob@example.net", "hard_bounce")
    assert entry["source"]["message_id"] == sent["id"] and entry["source"]["smtp_status"] == "5.1.1"

    again = send(sender.token, {"to": "bob@example.net", "text": "still there?"})
    assert (again.status, again.error_code) == (422, "recipient_suppressed")


def test_a_transient_bounce_is_recorded_but_not_suppressed(sender: Sender) -> None:
    sent = sender.send(to="bob@example.net")
    handle(ses_event("delayed", sent, ["bob@example.net"]))
    assert sender.message(sent["id"])["delivery"]["status"] == "delayed"
    assert handle(ses_event("bounced", sent, ["bob@example.net"], bounce_type="Transient"))["suppressed"] == 0
    assert sender.message(sent["id"])["delivery"]["status"] == "bounced"
    assert get("suppressions", sender.org.admin_token, "/api/v1/suppressions").json()["data"] == []
    ok(send(sender.token, {"to": "bob@example.net", "text": "retry"}), 201)


def test_a_complaint_after_delivery_suppresses_and_counts(sender: Sender) -> None:
    sent = sender.send(to="bob@example.net")
    handle(ses_event("delivered", sent, ["bob@example.net"]))
    complaint = ses_event("complained", sent, ["bob@example.net"])
    handle(complaint)
    handle(complaint)
    delivery = sender.message(sent["id"])["delivery"]
    assert delivery["status"] == "complained"
    assert delivery["recipients"]["bob@example.net"]["complaint_feedback_type"] == "abuse"
    assert [len(sender.events(t)) for t in ("message.delivered", "message.complained")] == [1, 1]
    assert sender.bounces_and_complaints() == (0, 1)
    entry = ok(get("suppressions", sender.org.admin_token, "/api/v1/suppressions/bob@example.net"))
    assert entry["reason"] == "complaint"
    # A late delivery event cannot undo the complaint.
    handle(ses_event("delivered", sent, ["bob@example.net"]))
    assert sender.message(sent["id"])["delivery"]["status"] == "complained"


def test_a_rejection_covers_every_recipient(sender: Sender) -> None:
    sent = sender.send(to="bob@example.net", cc="Carol <carol@example.net>")
    handle(ses_event("rejected", sent, ["bob@example.net", "Carol <carol@example.net>"]))
    handle(ses_event("rejected", sent, ["bob@example.net", "Carol <carol@example.net>"]))
    delivery = sender.message(sent["id"])["delivery"]
    assert delivery["status"] == "rejected" and delivery["counts"] == {"rejected": 2}
    assert delivery["recipients"]["carol@example.net"]["reason"] == "Bad content"
    assert len(sender.events("message.rejected")) == 2  # one per recipient


def test_mixed_outcomes_are_partially_delivered(sender: Sender) -> None:
    sent = sender.send(to=["bob@example.net", "carol@example.net"])
    handle(ses_event("bounced", sent, ["carol@example.net"]))
    handle(ses_event("delivered", sent, ["bob@example.net"]))
    delivery = sender.message(sent["id"])["delivery"]
    assert delivery["status"] == "partially_delivered"
    assert delivery["counts"] == {"bounced": 1, "delivered": 1}


def test_events_for_unknown_or_foreign_messages_change_nothing(
    sender: Sender, other_org: NewOrganization, table: Table
) -> None:
    sent = sender.send(to="bob@example.net")
    spoofed = ses_event("bounced", {**sent, "ses_message_id": "someone-elses-id"}, ["bob@example.net"])
    assert handle(spoofed)["ignored"] == ["no such sent message (deleted, or the tags do not match)"]
    other = ses_event("bounced", {**sent, "org_id": other_org.organization["id"]}, ["bob@example.net"])
    assert handle(other)["ignored"]
    untagged = ses_event("delivered", sent, ["bob@example.net"])
    for name in ("org_id", "mailbox_id", "message_id"):
        del untagged["detail"]["mail"]["tags"][name]
    assert handle(untagged)["ignored"] == ["not sent by Mailroom (no routing tags)"]
    assert sender.message(sent["id"])["delivery"]["status"] == "sending"
    assert sender.events("message.bounced", "message.delivered") == []
    org = organizations.get(table, sender.org_id)
    assert org is not None and int(org.get("suppression_count", 0)) == 0


def test_sns_wrapped_records_are_read_too(sender: Sender) -> None:
    import json

    sent = sender.send(to="bob@example.net")
    detail = ses_event("delivered", sent, ["bob@example.net"])["detail"]
    handle({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(detail)}}]})
    assert sender.message(sent["id"])["delivery"]["status"] == "delivered"


def test_lifting_a_suppression(sender: Sender) -> None:
    sent = sender.send(to="bob@example.net")
    handle(ses_event("bounced", sent, ["bob@example.net"]))
    admin = sender.org.admin_token
    assert delete("suppressions", admin, "/api/v1/suppressions/Bob@Example.net").status == 204
    assert delete("suppressions", admin, "/api/v1/suppressions/bob@example.net").status == 404
    assert get("suppressions", admin, "/api/v1/suppressions/bob@example.net").status == 404
    assert get("suppressions", admin, "/api/v1/suppressions").json()["meta"]["total"] == 0
    ok(send(sender.token, {"to": "bob@example.net", "text": "welcome back"}), 201)
    reader = message_token(sender.org, sender.mailbox["id"])
    refused = get("suppressions", reader, "/api/v1/suppressions")
    assert (refused.status, refused.error_code) == (403, "wrong_token_type")


def test_suppressions_belong_to_one_organization(sender: Sender, other_org: NewOrganization) -> None:
    sent = sender.send(to="bob@example.net")
    handle(ses_event("bounced", sent, ["bob@example.net"]))
    assert get("suppressions", other_org.admin_token, "/api/v1/suppressions").json()["data"] == []
    assert get("suppressions", other_org.admin_token, "/api/v1/suppressions/bob@example.net").status == 404
    assert delete("suppressions", other_org.admin_token, "/api/v1/suppressions/bob@example.net").status == 404


def test_racing_events_for_two_recipients_both_count(sender: Sender) -> None:
    """Two recipients' events applied from the same stale read: the second retries on a fresh one."""
    from mailroom.services import delivery_events

    sent = sender.send(to=["bob@example.net", "carol@example.net"])
    stale = sender.message(sent["id"])
    for address in ("bob@example.net", "carol@example.net"):
        (record,) = list(delivery_events.records(ses_event("delivered", sent, [address])))
        event = delivery_events.parse_record(record)
        assert event is not None
        (result,) = event.results
        _message, changed = delivery_events._apply_one(
            sender.table, stale, result, "2026-03-01T12:00:09.000Z"
        )
        assert changed
    delivery = sender.message(sent["id"])["delivery"]
    assert delivery["status"] == "delivered" and delivery["counts"] == {"delivered": 2}
    assert sender.message(sent["id"])["delivery_version"] == 2
    assert len(sender.events("message.delivered")) == 2


def test_an_event_ahead_of_its_sent_copy_waits_then_is_retried(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom import clock
    from mailroom.services import delivery_events

    naps: list[float] = []
    monkeypatch.setattr(delivery_events.time, "sleep", naps.append)
    sent = sender.send(to="bob@example.net")
    just_sent = ses_event("delivered", {**sent, "id": "msg_01JQ00000000000000NOTYET00"}, ["bob@example.net"])
    just_sent["detail"]["mail"]["timestamp"] = clock.now_iso()
    with pytest.raises(delivery_events.NotStoredYet):
        handle(just_sent)  # Lambda retries the event later
    assert len(naps) == delivery_events.STORE_WAIT_ATTEMPTS and sum(naps) < 10

    # Stored while the handler waited: applied on the next read.
    reads = {"count": 0}
    real_get = delivery_events.mail_store.get_message

    def late(*args: Any) -> dict[str, Any] | None:
        reads["count"] += 1
        return None if reads["count"] == 1 else real_get(*args)

    monkeypatch.setattr(delivery_events.mail_store, "get_message", late)
    fresh = ses_event("delivered", sent, ["bob@example.net"])
    fresh["detail"]["mail"]["timestamp"] = clock.now_iso()
    assert handle(fresh)["changed"] == 1
    assert sender.message(sent["id"])["delivery"]["status"] == "delivered"
