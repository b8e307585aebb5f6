"""``/api/v0/inboxes/{inboxId}/drafts...`` through ComposeFunction's handler under moto: create (a
reply draft too), list with numbered pages and totals, read, patch (fields kept, attachments kept or
replaced), delete, send exactly once, and v0 errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.store.table import Table
from tests.support.agent_mail import World, inbound, last_sent_mime, make_world, ok0, v0_error
from tests.support.lambda_api import Result, call


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(org, table, monkeypatch)


def v0(token: str, method: str, path: str, body: Any = None, **query: Any) -> Result:
    return call("compose", method, f"/api/v0{path}", token=token, json_body=body, query=query or None)


def test_a_draft_is_created_listed_changed_and_sent_once(world: World) -> None:
    inbox = f"/inboxes/{world.alice.id}/drafts"
    pdf = base64.b64encode(b"%PDF-1.4 x").decode()
    draft = ok0(
        v0(
            world.token,
            "POST",
            inbox,
            {
                "subject": "Proposal",
                "text": "v1",
                "labels": ["review"],
                "headers": {"X-Agent": "a1"},
                "attachments": [{"filename": "p.pdf", "content_type": "application/pdf", "content": pdf}],
            },
        )
    )
    assert draft["draft_id"].startswith("msg_") and draft["inbox_id"] == world.alice.id
    assert draft["to"] == [] and draft["labels"] == ["review"] and draft["headers"] == {"X-Agent": "a1"}
    assert [a["filename"] for a in draft["attachments"]] == ["p.pdf"]
    second = ok0(v0(world.token, "POST", inbox, {"subject": "Other"}))

    listed = ok0(v0(world.token, "GET", inbox, page_size=1))
    assert listed["total"] == 2 and [d["draft_id"] for d in listed["data"]] == [second["draft_id"]]
    page_two = ok0(v0(world.token, "GET", inbox, page_size=1, page=2))
    assert [d["draft_id"] for d in page_two["data"]] == [draft["draft_id"]]

    changed = ok0(
        v0(world.token, "PATCH", f"{inbox}/{draft['draft_id']}", {"to": "carol@example.net", "text": "v2"})
    )
    assert changed["draft_id"] == draft["draft_id"] and changed["subject"] == "Proposal"
    assert changed["to"] == ["carol@example.net"] and changed["text"] == "v2"
    assert [a["filename"] for a in changed["attachments"]] == ["p.pdf"]  # kept
    assert ok0(v0(world.token, "GET", f"{inbox}/{draft['draft_id']}")) == changed

    sent = ok0(v0(world.token, "POST", f"{inbox}/{draft['draft_id']}/send"))
    assert set(sent) == {"message_id", "thread_id"}
    _ses, mime = last_sent_mime()
    assert mime["Subject"] == "Proposal" and mime["X-Agent"] == "a1"
    assert [p.get_filename() for p in mime.iter_attachments()] == ["p.pdf"]
    v0_error(v0(world.token, "POST", f"{inbox}/{draft['draft_id']}/send"), 409, "ConflictError")
    assert ok0(v0(world.token, "GET", inbox))["total"] == 1

    assert v0(world.token, "DELETE", f"{inbox}/{second['draft_id']}").status == 204
    v0_error(v0(world.token, "GET", f"{inbox}/{second['draft_id']}"), 404, "NotFoundError")
    assert ok0(v0(world.token, "GET", inbox))["total"] == 0


def test_a_reply_draft_and_what_is_not_a_draft(world: World) -> None:
    original = world.alice.receive(inbound("Quote?", message_id="<q-1@example.net>"))
    inbox = f"/inboxes/{world.alice.id}/drafts"
    draft = ok0(v0(world.token, "POST", inbox, {"in_reply_to": original["id"], "text": "Sure"}))
    assert draft["subject"] == "Re: Quote?" and draft["thread_id"] == original["thread_id"]
    assert draft["in_reply_to"] == "<q-1@example.net>"
    # A received message is not a draft; another inbox's draft is not found.
    v0_error(v0(world.token, "GET", f"{inbox}/{original['id']}"), 404, "NotFoundError")
    v0_error(
        v0(world.token, "GET", f"/inboxes/{world.bob.id}/drafts/{draft['draft_id']}"), 404, "NotFoundError"
    )
    refused = v0(world.token, "POST", inbox, {"headers": {"From": "x@example.com"}})
    assert refused.status == 422
    empty = ok0(v0(world.token, "POST", inbox, {"subject": "no one"}))
    v0_error(v0(world.token, "POST", f"{inbox}/{empty['draft_id']}/send"), 422, "ValidationError")
