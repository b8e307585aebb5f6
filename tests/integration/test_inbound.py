"""The inbound function under moto: SES receipt events (and S3 events) for messages stored the way the
receipt rule stores them → mailboxes, aliases, forwarding, catch-all, verdicts, quarantine, counters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from mailroom.mail.parse import parse
from mailroom.services import inbound as service
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, domain_metrics, events, keys, mailboxes, organizations
from mailroom.store import mail as store
from mailroom.store.errors import StoreError, translate
from mailroom.store.table import Item, Table
from tests.support import inbound as sim
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    new_mailbox,
    ok,
    patch,
    post,
    put,
)

DAY = sim.WHEN.date().isoformat()


def aws_error(code: str, message: str, service: str, operation: str = "") -> StoreError:
    """What the store raises when AWS answers ``code`` (classified by the one table, as in production)."""
    error = ClientError({"Error": {"Code": code, "Message": message}}, operation or "Call")
    return translate(error, service=service, operation=operation)


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def domain(org: NewOrganization, bucket: str) -> dict[str, Any]:
    return add_domain(org, "example.com")


@pytest.fixture
def inbox(org: NewOrganization, domain: dict[str, Any]) -> dict[str, Any]:
    return new_mailbox(org, "inbox")


def org_id(org: NewOrganization) -> str:
    return str(org.organization["id"])


def state(table: Table, org: NewOrganization, mailbox: dict[str, Any]) -> Item:
    item = mailboxes.get(table, org_id(org), mailbox["id"])
    assert item is not None
    return item


def messages(
    table: Table, org: NewOrganization, mailbox: dict[str, Any], folder: str | None = None
) -> list[Item]:
    return store.list_messages(
        table, org_id(org), mailbox["id"], per_page=100, cursor=None, folder_key=folder
    ).items


def quarantined(table: Table, org: NewOrganization, mailbox_id: str | None) -> list[Item]:
    return table.query_page(
        partition=keys.mailbox_pk(org_id(org), mailbox_id or "_"), sk_prefix="QUAR#", per_page=100
    ).items


def metrics(table: Table, org: NewOrganization, domain: dict[str, Any]) -> dict[str, int]:
    days = domain_metrics.days(table, org_id(org), domain["id"], first_day=DAY, last_day=DAY)
    return {k: v for k, v in days[0].items() if k != "date" and v} if days else {}


def s3_bytes(bucket: str, key: str) -> bytes:
    return bytes(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def sent_mail() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def set_forwarding(
    org: NewOrganization, mailbox: dict[str, Any], targets: list[str], keep_copy: bool
) -> None:
    path = f"/api/v1/mailboxes/{mailbox['id']}/forwarding"
    ok(put("mailboxes", org.admin_token, path, {"targets": targets, "keep_copy": keep_copy}))


def create_alias(org: NewOrganization, address: str, goto: list[str]) -> dict[str, Any]:
    return ok(post("aliases", org.admin_token, "/api/v1/aliases", {"address": address, "goto": goto}), 201)  # type: ignore[no-any-return]


# --- delivery, idempotency, counters ------------------------------------------------------------------


def test_a_message_is_stored_once_with_counters_bytes_and_one_event(
    org: NewOrganization, table: Table, bucket: str, domain: dict[str, Any], inbox: dict[str, Any]
) -> None:
    raw = sim.message("Hello", message_id="<hello@example.net>")
    ses_id, stored = sim.store_inbound(bucket, raw, recipients=["Inbox@Example.com"])
    event = sim.ses_event(ses_id, ["Inbox@Example.com"])

    first = sim.invoke(event)
    again = sim.invoke(event)  # SES (or Lambda's retry) delivers the same event twice

    assert first["messages"][0]["stored"] == 1
    assert again["messages"][0]["already_done"] == 1 and again["messages"][0]["stored"] == 0
    (message,) = messages(table, org, inbox)
    assert message["folder_key"] == "inbox" and message["subject"] == "Hello"
    assert message["verdicts"] == {
        "spam": "PASS",
        "virus": "PASS",
        "spf": "PASS",
        "dkim": "PASS",
        "dmarc": "PASS",
    }
    assert message["ses_message_id"] == ses_id and message["delivered_to"] == "inbox@example.com"
    assert s3_bytes(bucket, message["raw_key"]) == stored  # byte for byte what SES stored
    assert message["body"]["text"].strip() == "hello there"  # small: inline in the item
    mailbox = state(table, org, inbox)
    assert (mailbox["fc_inbox_total"], mailbox["fc_inbox_unread"], mailbox["used_bytes"]) == (
        1,
        1,
        len(stored),
    )
    org_item = organizations.get(table, org_id(org))
    assert org_item is not None and org_item["storage_used_bytes"] == len(stored)
    received = [
        e
        for e in events.list_page(table, org_id(org), per_page=20).items
        if e["event_type"] == "message.received"
    ]
    assert len(received) == 1 and received[0]["data"]["id"] == message["id"]
    assert metrics(table, org, domain) == {"inbound_total": 1}


def test_a_retry_after_a_failure_stores_nothing_twice_and_counts_once(
    org: NewOrganization,
    table: Table,
    bucket: str,
    domain: dict[str, Any],
    inbox: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure after the message was stored (here: recording the receipt) raises, so Lambda
    retries the event: the retry finds the message stored (same deterministic id) and counts once."""
    ses_id, _ = sim.store_inbound(bucket, sim.message(), recipients=["inbox@example.com"])
    event = sim.ses_event(ses_id, ["inbox@example.com"])
    real_record = service._record

    def failing(*args: Any, **kwargs: Any) -> None:
        raise aws_error("InternalServerError", "boom", "dynamodb")

    monkeypatch.setattr(service, "_record", failing)
    with pytest.raises(StoreError):
        sim.invoke(event)
    monkeypatch.setattr(service, "_record", real_record)
    (report,) = sim.invoke(event)["messages"]

    assert (report["stored"], report["duplicates"]) == (0, 1)
    assert len(messages(table, org, inbox)) == 1
    assert state(table, org, inbox)["fc_inbox_total"] == 1
    assert metrics(table, org, domain) == {"inbound_total": 1}


def test_a_transient_aws_failure_is_retried_within_the_invocation(
    org: NewOrganization,
    table: Table,
    bucket: str,
    domain: dict[str, Any],
    inbox: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda's own retry would come a minute later: a brief outage is waited out in place."""
    ses_id, _ = sim.store_inbound(bucket, sim.message(), recipients=["inbox@example.com"])
    real_record, failures = service._record, [aws_error("ThrottlingException", "slow", "dynamodb")] * 2

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_record(*args, **kwargs)

    monkeypatch.setattr(service, "_record", flaky)
    (report,) = sim.invoke(sim.ses_event(ses_id, ["inbox@example.com"]))["messages"]
    assert failures == []
    assert (report["stored"], report["duplicates"]) == (0, 1)  # the first try had stored it
    assert len(messages(table, org, inbox)) == 1
    assert metrics(table, org, domain) == {"inbound_total": 1}


def test_s3_events_of_the_same_object_deliver_once(
    org: NewOrganization, table: Table, bucket: str, domain: dict[str, Any], inbox: dict[str, Any]
) -> None:
    # An S3 ObjectCreated event alone (redrive, or a bucket notification): everything it needs comes
    # from the headers SES prepended, verdicts included.
    ses_id, stored = sim.store_inbound(
        bucket, sim.message("Via S3"), recipients=["inbox@example.com"], verdicts={"spam": "FAIL"}
    )
    notification = sim.s3_event(bucket, f"inbound/{ses_id}")
    first = sim.invoke(notification)["messages"][0]
    second = sim.invoke(notification)["messages"][0]
    assert (first["stored"], second["already_done"]) == (1, 1)
    (message,) = messages(table, org, inbox)
    assert message["folder_key"] == "spam" and message["verdicts"]["spam"] == "FAIL"
    assert message["received_at"] == "2026-03-01T12:00:00.000Z"
    assert s3_bytes(bucket, message["raw_key"]) == stored

    # The SES event of a message an S3 event delivered, and the other way round: still one copy.
    assert sim.invoke(sim.ses_event(ses_id, ["inbox@example.com"]))["messages"][0]["already_done"] == 1
    other_id, _ = sim.store_inbound(
        bucket, sim.message("Both", message_id="<b@x>"), recipients=["inbox@example.com"]
    )
    sim.invoke(sim.ses_event(other_id, ["inbox@example.com"]))
    assert sim.invoke(sim.s3_event(bucket, f"inbound/{other_id}"))["messages"][0]["already_done"] == 1
    assert len(messages(table, org, inbox)) == 2

    # Objects that are not received messages are ignored.
    aws.client("s3").put_object(Bucket=bucket, Key="inbound/AMAZON_SES_SETUP_NOTIFICATION", Body=b"x")
    assert sim.invoke(sim.s3_event(bucket, "inbound/AMAZON_SES_SETUP_NOTIFICATION"))["messages"] == []
    assert sim.invoke(sim.s3_event(bucket, "orgs/other/thing"))["messages"] == []


def test_a_missing_object_raises_for_a_retry(
    org: NewOrganization, bucket: str, inbox: dict[str, Any]
) -> None:
    with pytest.raises(service.InboundObjectMissing):
        sim.invoke(sim.ses_event(sim.new_ses_id(), ["inbox@example.com"]))


def test_threads_and_attachments(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    first = sim.message("Plan", message_id="<p1@example.net>")
    payload = bytes(range(256)) * 40
    from email.message import EmailMessage

    reply = EmailMessage()
    reply["From"] = "Ann <ann@example.net>"
    reply["To"] = "inbox@example.com"
    reply["Subject"] = "Re: Plan"
    reply["Message-ID"] = "<p2@example.net>"
    reply["In-Reply-To"] = "<p1@example.net>"
    reply["References"] = "<p1@example.net>"
    reply.set_content("see attached")
    reply.add_attachment(payload, maintype="application", subtype="octet-stream", filename="data.bin")
    sim.receive(bucket, first, ["inbox@example.com"])
    sim.receive(bucket, reply.as_bytes(), ["inbox@example.com"], at=sim.WHEN + timedelta(minutes=3))

    stored = sorted(messages(table, org, inbox), key=lambda m: m["received_at"])
    assert [m["subject"] for m in stored] == ["Plan", "Re: Plan"]
    assert stored[0]["thread_id"] == stored[1]["thread_id"]
    (attachment,) = stored[1]["attachments"]
    assert (attachment["filename"], attachment["size"]) == ("data.bin", len(payload))
    assert s3_bytes(bucket, attachment["key"]) == payload
    thread = store.get_thread(table, org_id(org), inbox["id"], stored[0]["thread_id"])
    assert thread is not None and (thread["message_count"], thread["unread_count"]) == (2, 2)


# --- resolution -------------------------------------------------------------------------------------


def test_alias_fan_out_reaches_each_mailbox_once_and_forwards_externally(
    org: NewOrganization, table: Table, bucket: str, domain: dict[str, Any], inbox: dict[str, Any]
) -> None:
    bob = new_mailbox(org, "bob")
    create_alias(org, "team@example.com", ["inbox@example.com", "bob@example.com", "partner@elsewhere.net"])
    create_alias(org, "all@example.com", ["team@example.com", "bob@example.com"])
    raw = sim.message("Team news", to="team@example.com, inbox@example.com", message_id="<news@example.net>")
    before = len(sent_mail())

    _, report = sim.receive(bucket, raw, ["team@example.com", "inbox@example.com", "all@example.com"])

    assert (report["stored"], report["forwarded"], report["dropped"]) == (2, 1, {})
    assert len(messages(table, org, inbox)) == 1 and len(messages(table, org, bob)) == 1
    (forward,) = sent_mail()[before:]
    assert forward.source == "team@example.com"
    assert "partner@elsewhere.net" in forward.destinations
    sent = parse(forward.raw_data.encode())
    assert sent.from_address == "team@example.com" and "via Mailroom" in (sent.from_ or "")
    assert sent.reply_to == ["Ann Example <ann@example.net>"]
    assert "<news@example.net>" in sent.references
    assert metrics(table, org, domain) == {"inbound_total": 1}


def test_catch_all_takes_unknown_recipients_and_without_it_they_are_dropped_and_counted(
    org: NewOrganization, table: Table, bucket: str, domain: dict[str, Any], inbox: dict[str, Any]
) -> None:
    _, report = sim.receive(bucket, sim.message(), ["nobody@example.com", "someone@unhosted.org"])
    assert report["stored"] == 0
    assert report["dropped"] == {"unknown_recipient": 1, "unknown_domain": 1}
    assert metrics(table, org, domain) == {"inbound_total": 1, "inbound_dropped": 1}

    path = f"/api/v1/domains/{domain['id']}/catch-all"
    ok(patch("domains", org.admin_token, path, {"catch_all": "inbox@example.com"}))
    _, report = sim.receive(bucket, sim.message("Caught", message_id="<c@x>"), ["nobody@example.com"])
    assert report["stored"] == 1
    (caught,) = messages(table, org, inbox)
    assert caught["subject"] == "Caught" and caught["delivered_to"] == "nobody@example.com"


def test_blocked_senders_are_dropped_for_that_mailbox_only(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    from mailroom.store import blocked_senders

    bob = new_mailbox(org, "bob")
    blocked_senders.add(table, org_id(org), inbox["id"], "@example.net")

    _, report = sim.receive(bucket, sim.message(), ["inbox@example.com", "bob@example.com"])

    assert report["stored"] == 1 and report["dropped"] == {"blocked_sender": 1}
    assert messages(table, org, inbox) == [] and len(messages(table, org, bob)) == 1
    assert metrics(table, org, domain) == {"inbound_total": 1, "inbound_dropped": 1}


def test_spam_goes_to_spam_and_a_virus_to_quarantine(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    set_forwarding(org, inbox, ["me@elsewhere.net"], keep_copy=False)
    before = len(sent_mail())
    _, spam = sim.receive(
        bucket, sim.message("Win!", message_id="<s@x>"), ["inbox@example.com"], verdicts={"spam": "FAIL"}
    )
    _, virus = sim.receive(
        bucket, sim.message("Invoice", message_id="<v@x>"), ["inbox@example.com"], verdicts={"virus": "FAIL"}
    )
    sim.receive(
        bucket,
        sim.message("Bank", message_id="<d@x>"),
        ["inbox@example.com"],
        verdicts={"dmarc": "FAIL", "dmarcPolicy": "reject"},
    )

    assert len(sent_mail()) == before  # neither is forwarded; the mailbox keeps them instead
    assert (spam["stored"], spam["held"]) == (1, {"spam": 1})
    assert (virus["stored"], virus["quarantined"], virus["problem"]) == (0, 1, "virus")
    assert [m["subject"] for m in messages(table, org, inbox, "spam")] == ["Bank", "Win!"] or [
        m["subject"] for m in messages(table, org, inbox, "spam")
    ] == ["Win!", "Bank"]
    assert messages(table, org, inbox, "inbox") == []
    (record,) = quarantined(table, org, inbox["id"])
    assert (record["reason"], record["subject"]) == ("virus", "Invoice")
    assert s3_bytes(bucket, record["raw_key"]).endswith(sim.message("Invoice", message_id="<v@x>"))
    mailbox = state(table, org, inbox)
    assert (mailbox["fc_spam_total"], mailbox["fc_spam_unread"], mailbox.get("fc_inbox_total", 0)) == (
        2,
        2,
        0,
    )
    assert metrics(table, org, domain) == {"inbound_total": 3, "inbound_spam": 2, "inbound_virus": 1}


def test_paused_mailbox_still_receives_but_holds_external_forwards(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    set_forwarding(org, inbox, ["me@elsewhere.net"], keep_copy=False)
    ok(post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}:pause", {"reason": "abuse"}))
    before = len(sent_mail())

    _, report = sim.receive(bucket, sim.message(), ["inbox@example.com"])

    assert (report["stored"], report["held"], len(sent_mail())) == (1, {"mailbox_paused": 1}, before)
    assert len(messages(table, org, inbox, "inbox")) == 1


def test_inactive_mailbox_drops_and_counts(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    ok(patch("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}", {"active": False}))
    _, report = sim.receive(bucket, sim.message(), ["inbox@example.com"])
    assert (report["stored"], report["dropped"]) == (0, {"mailbox_inactive": 1})
    assert messages(table, org, inbox) == []
    assert metrics(table, org, domain) == {"inbound_total": 1, "inbound_dropped": 1}


def test_forwarding_without_a_copy_internal_loops_and_external(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    bob = new_mailbox(org, "bob")
    # inbox → bob (no copy) and bob → inbox (a copy): a loop that must end with one copy each.
    set_forwarding(org, inbox, ["bob@example.com", "ext@elsewhere.net"], keep_copy=False)
    set_forwarding(org, bob, ["inbox@example.com"], keep_copy=True)
    before = len(sent_mail())

    _, report = sim.receive(bucket, sim.message(), ["inbox@example.com"])

    assert (report["stored"], report["forwarded"]) == (1, 1)
    assert messages(table, org, inbox) == [] and len(messages(table, org, bob)) == 1
    (forward,) = sent_mail()[before:]
    assert forward.source == "inbox@example.com" and "ext@elsewhere.net" in forward.destinations


def test_a_forward_is_sent_once_even_when_the_message_is_retried(
    org: NewOrganization,
    table: Table,
    bucket: str,
    inbox: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_forwarding(org, inbox, ["ext@elsewhere.net"], keep_copy=True)
    ses_id, _ = sim.store_inbound(bucket, sim.message(), recipients=["inbox@example.com"])
    event = sim.ses_event(ses_id, ["inbox@example.com"])
    real_record = service._record
    before = len(sent_mail())

    def failing(*args: Any, **kwargs: Any) -> None:
        raise aws_error("ProvisionedThroughputExceededException", "x", "dynamodb")

    monkeypatch.setattr(service, "_record", failing)
    with pytest.raises(StoreError):
        sim.invoke(event)
    monkeypatch.setattr(service, "_record", real_record)
    (report,) = sim.invoke(event)["messages"]

    assert len(sent_mail()) == before + 1
    assert (report["duplicates"], report["forwarded"]) == (1, 0)


def test_a_forward_ses_refuses_is_dropped_and_counted_not_retried(
    org: NewOrganization,
    table: Table,
    bucket: str,
    inbox: dict[str, Any],
    domain: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.store import ses_outbound

    create_alias(org, "out@example.com", ["ext@elsewhere.net"])

    def refused(*args: Any, **kwargs: Any) -> str:
        raise aws_error("MessageRejected", "no", "sesv2", "send_email")

    monkeypatch.setattr(ses_outbound, "send_raw", refused)
    _, report = sim.receive(bucket, sim.message(), ["out@example.com", "inbox@example.com"])
    assert (report["stored"], report["dropped"]) == (1, {"forward_rejected": 1})
    assert metrics(table, org, domain) == {"inbound_total": 1, "inbound_dropped": 1}

    def throttled(*args: Any, **kwargs: Any) -> str:
        raise aws_error("TooManyRequestsException", "slow", "sesv2", "send_email")

    monkeypatch.setattr(ses_outbound, "send_raw", throttled)
    with pytest.raises(StoreError):  # transient: Lambda retries the event
        sim.receive(bucket, sim.message("Again", message_id="<again@x>"), ["out@example.com"])


def test_over_quota_is_quarantined_with_counters_untouched(
    org: NewOrganization, table: Table, bucket: str, domain: dict[str, Any]
) -> None:
    small = new_mailbox(org, "small", quota=1)
    big = sim.message("Big", body="x" * (1024 * 1024 + 10))
    _, report = sim.receive(bucket, big, ["small@example.com"])
    assert (report["stored"], report["quarantined"]) == (0, 1)
    (record,) = quarantined(table, org, small["id"])
    assert record["reason"] == "over_quota"
    mailbox = state(table, org, small)
    assert mailbox.get("used_bytes", 0) == 0 and mailbox.get("fc_inbox_total", 0) == 0


def test_unparseable_mail_is_quarantined_per_mailbox_or_under_the_organization(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    from tests.support.mail_corpus import nested

    deep = nested(101)
    _, report = sim.receive(bucket, deep, ["inbox@example.com"])
    assert (report["quarantined"], report["problem"]) == (1, "too_deep")
    (record,) = quarantined(table, org, inbox["id"])
    assert record["reason"] == "too_deep" and s3_bytes(bucket, record["raw_key"]).endswith(deep)

    _, report = sim.receive(bucket, deep, ["nobody@example.com"])  # reaches no mailbox: kept under the org
    assert report["quarantined"] == 1
    (kept,) = quarantined(table, org, None)
    assert kept["reason"] == "too_deep" and kept.get("mailbox_id") is None


def test_suppressed_addresses_are_not_forwarded_to(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    from mailroom.store import suppressions

    suppressions.add(table, org_id(org), {"address": "gone@elsewhere.net", "reason": "hard_bounce"})
    create_alias(org, "out@example.com", ["gone@elsewhere.net", "here@elsewhere.net"])
    before = len(sent_mail())

    _, report = sim.receive(bucket, sim.message(), ["out@example.com"])

    assert (report["forwarded"], report["dropped"]) == (1, {"forward_suppressed": 1})
    (forward,) = sent_mail()[before:]
    assert "here@elsewhere.net" in forward.destinations and "gone@elsewhere.net" not in forward.destinations
