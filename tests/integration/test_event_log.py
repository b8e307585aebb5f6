"""/api/v1/events: the event log through the events function, under moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_ops_token
from mailroom.store import events, keys
from mailroom.store.table import Item, Table
from tests.support.lambda_api import Result, call


def get(token: str, path: str, **query: Any) -> Result:
    return call("events", "GET", path, token=token, query=query or None)


def record(table: Table, org: NewOrganization, event_type: str, data: dict[str, Any]) -> Item:
    event = events.new_event(org.organization["id"], event_type, data)
    table.put(event, condition="attribute_not_exists(PK)")
    return event


@pytest.fixture
def history(table: Table, org: NewOrganization) -> list[Item]:
    """Five events, oldest first: two mailboxes' mail, a domain, a migration of mailbox A."""
    return [
        record(table, org, "message.received", {"id": "msg_1", "mailbox_id": "mbx_A", "subject": "one"}),
        record(table, org, "message.received", {"id": "msg_2", "mailbox_id": "mbx_B", "subject": "two"}),
        record(table, org, "domain.verified", {"id": "dom_1", "name": "example.com"}),
        record(table, org, "message.sent", {"id": "msg_3", "mailbox_id": "mbx_A", "subject": "three"}),
        record(table, org, "migration.completed", {"id": "mig_1", "mailbox_id": "mbx_A"}),
    ]


def ids(result: Result) -> list[str]:
    assert result.status == 200, result.body
    return [e["id"] for e in result.json()["data"]]


def test_lists_newest_first_with_type_time_and_ids(org: NewOrganization, history: list[Item]):
    listing = get(org.admin_token, "/api/v1/events")
    assert ids(listing) == [e["event_id"] for e in reversed(history)]
    first = listing.json()["data"][0]
    assert first == {
        "id": history[-1]["event_id"],
        "event_type": "migration.completed",
        "created_at": history[-1]["created_at"],
        "mailbox_id": "mbx_A",
        "resource_id": "mig_1",
    }
    assert listing.json()["meta"]["total"] is None
    domain = next(e for e in listing.json()["data"] if e["event_type"] == "domain.verified")
    assert domain["mailbox_id"] is None and domain["resource_id"] == "dom_1"


def test_filters_by_type_mailbox_both_and_time(org: NewOrganization, history: list[Item]):
    token = org.admin_token
    by_type = get(token, "/api/v1/events", event_type="message.received")
    assert ids(by_type) == [history[1]["event_id"], history[0]["event_id"]]
    by_mailbox = get(token, "/api/v1/events", mailbox_id="mbx_A")
    assert ids(by_mailbox) == [history[4]["event_id"], history[3]["event_id"], history[0]["event_id"]]
    both = get(token, "/api/v1/events", mailbox_id="mbx_A", event_type="message.received")
    assert ids(both) == [history[0]["event_id"]]
    assert ids(get(token, "/api/v1/events", mailbox_id="mbx_nobody")) == []

    # The bound is by ULID time, which is taken a moment before created_at: bound at the event's own
    # ULID millisecond (created_at could fall a millisecond after it and leave the event out).
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    ulid_ms = 0
    for char in str(history[3]["SK"])[:10]:
        ulid_ms = ulid_ms * 32 + crockford.index(char)
    since = datetime.fromtimestamp(ulid_ms / 1000, UTC).isoformat(timespec="milliseconds")
    later = ids(get(token, "/api/v1/events", since=since))
    assert set(later) >= {history[3]["event_id"], history[4]["event_id"]}
    assert history[0]["event_id"] not in later or str(history[0]["SK"])[:10] == str(history[3]["SK"])[:10]
    until = ids(get(token, "/api/v1/events", until="2000-01-01T00:00:00Z"))
    assert until == []


def test_filters_read_their_index_not_the_whole_log(org: NewOrganization, history: list[Item], table: Table):
    item = table.get(keys.events_pk(org.organization["id"]), history[0]["SK"])
    assert item is not None
    assert item["GSI1PK"] == keys.events_by_type_pk(org.organization["id"], "message.received")
    assert item["GSI2PK"] == keys.events_by_mailbox_pk(org.organization["id"], "mbx_A")
    domain = table.get(keys.events_pk(org.organization["id"]), history[2]["SK"])
    assert domain is not None and "GSI2PK" not in domain  # no mailbox: not in any mailbox's log


def test_pages_follow_the_cursor(org: NewOrganization, history: list[Item]):
    seen: list[str] = []
    page = get(org.admin_token, "/api/v1/events", per_page=2)
    while True:
        seen += ids(page)
        link = page.json()["links"]["next"]
        if link is None:
            break
        cursor = link.split("cursor=")[1].split("&")[0]
        from urllib.parse import unquote

        page = get(org.admin_token, "/api/v1/events", per_page=2, cursor=unquote(cursor))
    assert seen == [e["event_id"] for e in reversed(history)]

    filtered = get(
        org.admin_token, "/api/v1/events", per_page=1, mailbox_id="mbx_A", event_type="message.sent"
    )
    assert ids(filtered) == [history[3]["event_id"]]


def test_one_event_carries_the_webhook_payload_data(org: NewOrganization, history: list[Item]):
    event = history[0]
    got = get(org.admin_token, f"/api/v1/events/{event['event_id']}")
    assert got.status == 200, got.body
    assert got.json()["data"]["data"] == {"id": "msg_1", "mailbox_id": "mbx_A", "subject": "one"}
    assert got.json()["data"]["id"] == event["event_id"]


def test_large_bodies_are_left_out_as_in_webhooks(org: NewOrganization, table: Table):
    event = record(
        table, org, "message.received", {"id": "msg_9", "mailbox_id": "mbx_A", "text": "x" * 70_000}
    )
    got = get(org.admin_token, f"/api/v1/events/{event['event_id']}").json()["data"]["data"]
    assert got["body_omitted"] is True and "text" not in got


@pytest.mark.parametrize("event_id", ["evt_01JZZZZZZZZZZZZZZZZZZZZZZZ", "msg_01J", "evt_", "nothing"])
def test_unknown_ids_are_404(org: NewOrganization, history: list[Item], event_id: str):
    got = get(org.admin_token, f"/api/v1/events/{event_id}")
    assert got.status == 404 and got.error_code == "not_found"


def test_another_organizations_events_are_invisible(
    org: NewOrganization, other_org: NewOrganization, history: list[Item]
):
    assert ids(get(other_org.admin_token, "/api/v1/events")) == []
    got = get(other_org.admin_token, f"/api/v1/events/{history[0]['event_id']}")
    assert got.status == 404


def test_bad_filters_are_422(org: NewOrganization, history: list[Item]):
    token = org.admin_token
    assert get(token, "/api/v1/events", event_type="message.eaten").status == 422
    assert get(token, "/api/v1/events", since="2026-01-01T00:00:00").status == 422  # no time zone
    reversed_range = get(token, "/api/v1/events", since="2026-02-01T00:00:00Z", until="2026-01-01T00:00:00Z")
    assert reversed_range.status == 422 and reversed_range.error_code == "validation_error"
    assert get(token, "/api/v1/events", cursor="garbage").status == 422


def test_needs_webhooks_read(org: NewOrganization, table: Table, history: list[Item]):
    token = issue_ops_token(
        table, org_id=org.organization["id"], name="mail only", scopes=["mailboxes:read"], created_by=None
    ).plaintext
    assert get(token, "/api/v1/events").status == 403
    assert get(token, f"/api/v1/events/{history[0]['event_id']}").status == 403
    assert call("events", "GET", "/api/v1/events").status == 401
