"""DynamoDB requests per inbound message, counted through the inbound function's real entry point, and
the route hints that make them few: a hint only chooses which keys to read, so a stale one (an
address now another mailbox's, a domain now another organization's) never misroutes a message."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services.inbound_routing import RouteHint, route_hints
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, blocked_senders
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox


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


@pytest.fixture
def dynamodb_calls(bucket: str) -> Iterator[Counter[str]]:
    """DynamoDB operations the function makes, by name (botocore's ``before-call`` event)."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **kwargs: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb.*", count)
    yield calls
    events.unregister("before-call.dynamodb.*", count)


def stored_in(table: Table, org: NewOrganization, mailbox: dict[str, Any]) -> list[str]:
    page = store.list_messages(table, str(org.organization["id"]), mailbox["id"], per_page=100, cursor=None)
    return [str(m["subject"]) for m in page.items]


def test_a_plain_message_costs_at_most_four_dynamodb_requests(
    bucket: str, inbox: dict[str, Any], dynamodb_calls: Counter[str]
) -> None:
    sim.receive(bucket, sim.message("first", message_id="<m1@example.net>"), ["inbox@example.com"])
    first = sum(dynamodb_calls.values())
    dynamodb_calls.clear()

    # The From address is not the envelope sender: its blocked-sender keys are read once parsed.
    _, report = sim.receive(
        bucket,
        sim.message("second", sender="Bob <bob@example.org>", message_id="<m2@example.net>"),
        ["inbox@example.com"],
    )
    assert report["stored"] == 1
    assert dynamodb_calls == {"BatchGetItem": 2, "TransactWriteItems": 2}
    dynamodb_calls.clear()

    # From and envelope sender the same address: everything read in one request.
    _, report = sim.receive(
        bucket, sim.message("third", message_id="<m3@example.net>"), ["inbox@example.com"]
    )
    assert report["stored"] == 1
    assert dynamodb_calls == {"BatchGetItem": 1, "TransactWriteItems": 2}
    # The first message to an address in this process reads its claim, then its mailbox.
    assert first <= 5


def test_a_redelivered_event_costs_one_request(
    bucket: str, inbox: dict[str, Any], dynamodb_calls: Counter[str]
) -> None:
    ses_id, _ = sim.receive(bucket, sim.message(), ["inbox@example.com"])
    dynamodb_calls.clear()

    result = sim.invoke(sim.ses_event(ses_id, ["inbox@example.com"]))

    assert result["messages"][0]["already_done"] == 1
    assert dynamodb_calls == {"BatchGetItem": 1}


def test_a_hint_naming_another_mailbox_does_not_misroute(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    bob = new_mailbox(org, "bob")
    route_hints(table).put(
        "inbox@example.com", RouteHint(str(org.organization["id"]), str(domain["id"]), bob["id"])
    )

    _, report = sim.receive(bucket, sim.message("for inbox"), ["inbox@example.com"])

    assert report["stored"] == 1
    assert stored_in(table, org, inbox) == ["for inbox"] and stored_in(table, org, bob) == []


def test_a_hint_naming_another_organization_does_not_misroute(
    org: NewOrganization,
    other_org: NewOrganization,
    table: Table,
    bucket: str,
    inbox: dict[str, Any],
) -> None:
    """The domain is ``org``'s now; the hint still names a mailbox of ``other_org`` (where the domain
    was before, say)."""
    add_domain(other_org, "example.net")
    theirs = new_mailbox(other_org, "inbox", domain="example.net")
    hint = RouteHint(str(other_org.organization["id"]), "dom_stale", theirs["id"])
    route_hints(table).put("inbox@example.com", hint)

    _, report = sim.receive(bucket, sim.message("for org"), ["inbox@example.com"])

    assert report["stored"] == 1
    assert stored_in(table, org, inbox) == ["for org"] and stored_in(table, other_org, theirs) == []


def test_a_blocked_from_address_is_dropped_with_a_hint(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    """The hinted read covers the envelope sender; the From address, known once the message is
    parsed, is checked too."""
    sim.receive(bucket, sim.message("hinted"), ["inbox@example.com"])  # leaves a hint
    blocked_senders.add(table, str(org.organization["id"]), inbox["id"], "mallory@example.org")

    _, report = sim.receive(
        bucket,
        sim.message("blocked", sender="mallory@example.org", message_id="<m9@example.net>"),
        ["inbox@example.com"],
    )

    assert report["stored"] == 0 and report["dropped"] == {"blocked_sender": 1}
    assert stored_in(table, org, inbox) == ["hinted"]
