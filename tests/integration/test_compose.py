"""Drafts, sending identities and message templates through ComposeFunction's handler (and sends
through SendFunction's) under moto: what SES receives, what Drafts holds, and every refusal."""

from __future__ import annotations

import base64
import email
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import drafts as draft_store
from mailroom.store import keys, mailboxes
from mailroom.store import mail as store
from mailroom.store.table import Table
from mailroom.store.txn import Update
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    delete,
    get,
    new_mailbox,
    ok,
    patch,
    post,
    put,
)
from tests.support.sending import message_token, send, sent_messages

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"


@dataclass
class World:
    org: NewOrganization
    table: Table
    alice: dict[str, Any]
    bob: dict[str, Any]
    token: str

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def mailbox(self) -> dict[str, Any]:
        item = mailboxes.get(self.table, self.org_id, self.alice["id"])
        assert item is not None
        return item


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", CONFIGURATION_SET)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice", name="Alice Example")
    bob = new_mailbox(org, "bob", name="Bob")
    yield World(org=org, table=table, alice=alice, bob=bob, token=message_token(org, alice["id"]))
    get_settings.cache_clear()


def last_sent() -> EmailMessage:
    raw = sent_messages()[-1].raw_data
    return email.message_from_bytes(raw.encode() if isinstance(raw, str) else raw, policy=policy.default)  # type: ignore[return-value]


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))

    def content(part: Any) -> str:
        return str(part.get_content()).replace("\r\n", "\n") if part is not None else ""

    return content(text), content(html)


def verify(world: World, name: str) -> dict[str, Any]:
    domain = add_domain(world.org, name)
    Update(keys.org_pk(world.org_id), keys.domain_sk(domain["id"])).set(status="verified").apply(world.table)
    return domain


def identity(world: World, body: dict[str, Any], status: int = 201) -> Any:
    result = post("compose", world.token, "/api/v1/messages/identities", body)
    if status != 201:
        assert result.status == status, result.body
        return result.json()["error"]
    return ok(result, 201)


# --- identities ------------------------------------------------------------------------------------


def test_an_identity_is_an_address_the_mailbox_may_send_as(world: World) -> None:
    admin = world.org.admin_token
    ok(
        post(
            "aliases",
            admin,
            "/api/v1/aliases",
            {"address": "sales@example.com", "goto": ["alice@example.com"]},
        ),
        201,
    )
    ok(
        post(
            "aliases", admin, "/api/v1/aliases", {"address": "ops@example.com", "goto": ["bob@example.com"]}
        ),
        201,
    )
    verify(world, "news.example.org")
    add_domain(world.org, "pending.example.org")

    own = identity(world, {"address": "Alice@Example.com", "name": "Alice", "default": True})
    assert own["address"] == "alice@example.com" and own["default"] is True
    assert own["from"] == "Alice <alice@example.com>"
    alias = identity(world, {"address": "sales@example.com", "name": "Sales"})
    free = identity(world, {"address": "hello@news.example.org", "reply_to": ["support@example.com"]})
    assert free["reply_to"] == ["support@example.com"]

    for refused in ("bob@example.com", "ops@example.com", "x@pending.example.org", "x@gmail.com"):
        error = identity(world, {"address": refused}, 422)
        assert error["code"] == "identity_not_allowed", refused

    listed = get("compose", world.token, "/api/v1/messages/identities").json()
    assert [i["id"] for i in listed["data"]] == [own["id"], alias["id"], free["id"]]
    assert listed["meta"]["total"] == 3
    assert [i["default"] for i in listed["data"]] == [True, False, False]

    changed = ok(
        patch("compose", world.token, f"/api/v1/messages/identities/{alias['id']}", {"default": True})
    )
    assert changed["default"] is True
    listed = get("compose", world.token, "/api/v1/messages/identities").json()["data"]
    assert [i["default"] for i in listed] == [False, True, False]
    refused = patch(
        "compose", world.token, f"/api/v1/messages/identities/{alias['id']}", {"address": "bob@example.com"}
    )
    assert refused.status == 422 and refused.json()["error"]["code"] == "identity_not_allowed"

    assert delete("compose", world.token, f"/api/v1/messages/identities/{alias['id']}").status == 204
    assert delete("compose", world.token, f"/api/v1/messages/identities/{alias['id']}").status == 404
    assert "default_identity_id" not in world.mailbox()
    assert get("compose", world.token, "/api/v1/messages/identities").json()["meta"]["total"] == 2


def test_a_send_with_an_identity_carries_its_from_reply_to_and_signature_once(world: World) -> None:
    verify(world, "news.example.org")
    chosen = identity(
        world,
        {
            "address": "hello@news.example.org",
            "name": "Newsroom",
            "reply_to": ["desk@news.example.org"],
            "signature_text": "Alice\nThe Newsroom",
            "signature_html": "<b>Alice</b>",
        },
    )
    sent = ok(
        send(
            world.token,
            {
                "to": "carol@example.net",
                "subject": "Hi",
                "text": "Hello",
                "html": "<p>Hello</p>",
                "identity_id": chosen["id"],
            },
        ),
        201,
    )
    message = last_sent()
    assert message["From"] == "Newsroom <hello@news.example.org>"
    assert message["Reply-To"] == "desk@news.example.org"
    text, html = bodies(message)
    assert text.count("-- \nAlice\nThe Newsroom") == 1 and text.startswith("Hello")
    assert html.count('<div class="mailroom-signature"><b>Alice</b></div>') == 1
    assert sent["message"]["from"] == "Newsroom <hello@news.example.org>"

    both = send(
        world.token, {"to": "carol@example.net", "from": "alice@example.com", "identity_id": chosen["id"]}
    )
    assert both.status == 422
    unknown = send(world.token, {"to": "carol@example.net", "identity_id": "idn_01J0000000000000000000000Z"})
    assert unknown.status == 422 and unknown.json()["error"]["code"] == "unknown_identity"


def test_the_default_identity_signs_sends_that_name_no_sender(world: World) -> None:
    identity(
        world,
        {"address": "alice@example.com", "name": "Alice Adams", "signature_text": "-A", "default": True},
    )
    ok(send(world.token, {"to": "carol@example.net", "subject": "Hi", "text": "Body"}), 201)
    message = last_sent()
    assert message["From"] == "Alice Adams <alice@example.com>"
    assert bodies(message)[0].rstrip("\n").endswith("-- \n-A")
    # An explicit from is sent as given: no identity applies.
    ok(send(world.token, {"to": "carol@example.net", "from": "alice@example.com", "text": "Plain"}), 201)
    assert "-A" not in bodies(last_sent())[0]


# --- templates -------------------------------------------------------------------------------------


def template(world: World, body: dict[str, Any]) -> Any:
    return post("compose", world.token, "/api/v1/messages/templates", body)


def test_templates_render_into_sends_with_strict_variables_and_escaped_html(world: World) -> None:
    created = ok(
        template(
            world,
            {
                "name": "Welcome",
                "subject": "Welcome, {{ user.name }}",
                "text": "Hi {{ user.name }},\n{% for item in items %}- {{ item }}\n{% endfor %}",
                "html": "<p>Hi {{ user.name }}</p>",
            },
        ),
        201,
    )
    assert created["variables"] == ["items", "user"]
    ok(
        send(
            world.token,
            {
                "to": "carol@example.net",
                "template_id": created["id"],
                "variables": {"user": {"name": "<Zoë>"}, "items": ["a", "b"]},
            },
        ),
        201,
    )
    message = last_sent()
    assert message["Subject"] == "Welcome, <Zoë>"
    text, html = bodies(message)
    assert text == "Hi <Zoë>,\n- a\n- b\n"
    assert "<p>Hi &lt;Zoë&gt;</p>" in html

    missing = send(
        world.token, {"to": "carol@example.net", "template_id": created["id"], "variables": {"user": {}}}
    )
    assert missing.status == 422
    error = missing.json()["error"]
    assert error["code"] == "template_variable_missing" and "items" in error["message"]
    nested = send(
        world.token,
        {"to": "carol@example.net", "template_id": created["id"], "variables": {"user": {}, "items": []}},
    )
    assert (
        nested.json()["error"]["code"] == "template_variable_missing"
        and "name" in nested.json()["error"]["message"]
    )
    mixed = send(
        world.token, {"to": "c@example.net", "template_id": created["id"], "subject": "x", "variables": {}}
    )
    assert mixed.status == 422


def test_templates_are_validated_and_cannot_reach_python_internals(world: World) -> None:
    broken = template(world, {"name": "Broken", "text": "{% for x in %}"})
    assert broken.status == 422 and broken.json()["error"]["code"] == "template_syntax_error"
    unknown_filter = template(world, {"name": "F", "text": "{{ x|attr('__class__') }}"})
    assert unknown_filter.json()["error"]["code"] == "template_syntax_error"
    assert template(world, {"name": "Empty", "subject": "x"}).status == 422
    sneaky = ok(template(world, {"name": "Sneaky", "text": "{{ ''.__class__.__mro__ }}"}), 201)
    refused = send(world.token, {"to": "carol@example.net", "template_id": sneaky["id"], "variables": {}})
    assert refused.status == 422 and refused.json()["error"]["code"] == "template_refused"

    changed = ok(
        patch("compose", world.token, f"/api/v1/messages/templates/{sneaky['id']}", {"text": "{{ a }}"})
    )
    assert changed["variables"] == ["a"]
    listed = get("compose", world.token, "/api/v1/messages/templates").json()
    assert listed["meta"]["total"] == 1
    assert delete("compose", world.token, f"/api/v1/messages/templates/{sneaky['id']}").status == 204
    gone = send(world.token, {"to": "carol@example.net", "template_id": sneaky["id"], "variables": {"a": 1}})
    assert gone.json()["error"]["code"] == "unknown_template"


# --- drafts ----------------------------------------------------------------------------------------


def drafts_listed(world: World) -> list[str]:
    return [m["id"] for m in get("messages", world.token, "/api/v1/messages", folder="drafts").json()["data"]]


def test_a_draft_is_saved_replaced_and_sent_exactly_once(world: World) -> None:
    attachment = base64.b64encode(b"%PDF-1.4 report").decode()
    draft = ok(
        post(
            "compose",
            world.token,
            "/api/v1/messages/drafts",
            {
                "subject": "Plan",
                "text": "First take",
                "headers": {"X-Campaign": "q3"},
                "attachments": [
                    {"filename": "r.pdf", "content_type": "application/pdf", "content": attachment}
                ],
            },
        ),
        201,
    )
    assert draft["folder"] == "Drafts" and draft["flags"]["draft"] is True and draft["to"] == []
    assert drafts_listed(world) == [draft["id"]]
    raw = get("messages", world.token, f"/api/v1/messages/{draft['id']}/raw")
    assert raw.status == 200 and b"First take" in raw.body

    no_recipient = send(world.token, {"draft_uid": draft["id"]})
    assert no_recipient.status == 422
    replaced = ok(
        put(
            "compose",
            world.token,
            f"/api/v1/messages/drafts/{draft['id']}",
            {
                "to": "carol@example.net",
                "subject": "Plan v2",
                "text": "Second take",
                "bcc": ["boss@example.net"],
                "headers": {"X-Campaign": "q3"},
                "attachments": [{"message_id": draft["id"], "index": draft["attachments"][0]["index"]}],
            },
        )
    )
    assert replaced["id"] == draft["id"] and replaced["subject"] == "Plan v2"
    assert drafts_listed(world) == [draft["id"]]
    assert world.mailbox()["fc_drafts_total"] == 1

    mixed = send(world.token, {"draft_uid": draft["id"], "subject": "other"})
    assert mixed.status == 422
    sent = ok(send(world.token, {"draft_uid": draft["id"]}), 201)
    message = last_sent()
    assert message["Subject"] == "Plan v2" and message["X-Campaign"] == "q3"
    assert sent_messages()[-1].destinations == ["carol@example.net", "boss@example.net"] or set(
        sent_messages()[-1].destinations
    ) == {"carol@example.net", "boss@example.net"}
    assert [p.get_filename() for p in message.iter_attachments()] == ["r.pdf"]
    assert bodies(message)[0].startswith("Second take")
    in_sent = get("messages", world.token, "/api/v1/messages", folder="sent").json()["data"]
    assert [m["id"] for m in in_sent] == [sent["message_id"]]
    assert drafts_listed(world) == []
    again = send(world.token, {"draft_uid": draft["id"]})
    assert again.status == 409 and again.json()["error"]["code"] == "draft_already_sent"
    assert sent["message_id"] in again.json()["error"]["message"]
    assert world.mailbox()["fc_drafts_total"] == 0


def test_a_claimed_draft_is_neither_sent_nor_replaced_twice(world: World) -> None:
    draft = ok(
        post("compose", world.token, "/api/v1/messages/drafts", {"to": "c@example.net", "text": "x"}), 201
    )
    item = store.get_message(world.table, world.org_id, world.alice["id"], draft["id"])
    assert item is not None
    token = draft_store.claim(world.table, item)
    assert token is not None and draft_store.claim(world.table, item) is None
    busy = send(world.token, {"draft_uid": draft["id"]})
    assert busy.status == 409 and busy.json()["error"]["code"] == "draft_busy"
    replacing = put("compose", world.token, f"/api/v1/messages/drafts/{draft['id']}", {"text": "y"})
    assert replacing.status == 409
    draft_store.release(world.table, item, token)
    ok(send(world.token, {"draft_uid": draft["id"]}), 201)


def test_a_reply_draft_takes_the_reply_defaults_and_joins_the_thread(world: World) -> None:
    raw = (
        b"From: Carol <carol@example.net>\r\nTo: alice@example.com\r\nSubject: Lunch?\r\n"
        b"Message-ID: <lunch-1@example.net>\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\n\r\nTomorrow?\r\n"
    )
    original = deliver(
        world.table,
        Incoming(
            org_id=world.org_id,
            mailbox=world.mailbox(),
            raw=raw,
            parsed=parse(raw),
            folder_key="inbox",
            direction="inbound",
            received_at=datetime.now(UTC),
            source_id="lunch",
            event_type=None,
        ),
    ).message
    draft = ok(
        post(
            "compose", world.token, "/api/v1/messages/drafts", {"in_reply_to": original["id"], "text": "Yes!"}
        ),
        201,
    )
    assert draft["to"] == ["Carol <carol@example.net>"] and draft["subject"] == "Re: Lunch?"
    assert draft["thread_id"] == original["thread_id"]
    ok(send(world.token, {"draft_uid": draft["id"]}), 201)
    message = last_sent()
    assert message["In-Reply-To"] == "<lunch-1@example.net>"
    refreshed = store.get_message(world.table, world.org_id, world.alice["id"], original["id"])
    assert refreshed is not None and refreshed["flags"]["answered"] is True
    unknown = post(
        "compose", world.token, "/api/v1/messages/drafts", {"in_reply_to": "msg_01J0000000000000000000000Z"}
    )
    assert unknown.status == 422


def test_a_draft_with_an_identity_and_a_template_is_signed_once_even_when_saved_again(world: World) -> None:
    signer = identity(world, {"address": "alice@example.com", "signature_text": "Cheers, A"})
    tpl = ok(template(world, {"name": "T", "subject": "Hello {{ who }}", "text": "Dear {{ who }}"}), 201)
    draft = ok(
        post(
            "compose",
            world.token,
            "/api/v1/messages/drafts",
            {
                "to": "c@example.net",
                "identity_id": signer["id"],
                "template_id": tpl["id"],
                "variables": {"who": "C"},
            },
        ),
        201,
    )
    assert draft["subject"] == "Hello C" and draft["text"].count("Cheers, A") == 1
    # A client that posts the draft's text back with the same identity does not sign it twice.
    again = ok(
        put(
            "compose",
            world.token,
            f"/api/v1/messages/drafts/{draft['id']}",
            {
                "to": "c@example.net",
                "identity_id": signer["id"],
                "text": draft["text"],
                "subject": draft["subject"],
            },
        )
    )
    assert again["text"].count("Cheers, A") == 1
    ok(send(world.token, {"draft_uid": draft["id"]}), 201)
    assert bodies(last_sent())[0].count("Cheers, A") == 1
