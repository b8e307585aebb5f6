"""Issue 22 through the real API (v1 and v0): a display name can never become another mailbox, and
text no header can carry is a 422 naming the field, never a 500.

1. Names holding ``<``, ``,``, ``@``, quotes or encoded words — in a send's ``from``/``to``/``cc``,
   a stored mailbox ``name`` (v1) or inbox ``display_name`` (v0), the sender of a received message
   that is replied to, replied to all or forwarded — come out as exactly the intended mailboxes:
   in the MIME SES is given, in its envelope, in the Sent copy and in the reply-all prefill of it.
   Stored names holding ``< > @`` or controls are refused (422 naming the field); one stored before
   that rule still composes safely.
2. Other line breaks (VT, FF, U+001C-U+001E, NEL, U+2028, U+2029) and unpaired surrogates in every
   free-text field of send, reply, reply-all and forward.
"""

from __future__ import annotations

import base64
import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest

from mailroom.mail.addresses import Address
from mailroom.services import mailboxes as mailbox_service
from mailroom.services.organizations import NewOrganization
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support.agent_mail import World, make_world, ok0, ses_recipients, v0, v0_error
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import create_mailbox, get, ok, patch, post
from tests.support.sending import message_token, send, sent_messages

# What splits a line for str.splitlines() and the email package, besides CR and LF.
LINE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
SURROGATE = "\ud800"
HOSTILE = ["\x00", "\r\n", *LINE_BREAKS, SURROGATE]
# Names that held address syntax once re-parsed by the email package.
FORGING_NAMES = [
    "Bób <ceo@bank.example>, x",
    "Bob <ceo@bank.example>, x",
    "ceo@bank.example",
    'Smith, "Jo" \\ Ann; Team: <ops@bank.example>',
    "Ünïcode, <cfo@bank.example>" + " long" * 30,
    "x" * 200 + ",y <evil@bank.example>",
]
CEO = "bank.example"


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(org, table, monkeypatch)


def quoted(name: str, address: str) -> str:
    """``"name" <address>`` as RFC 5322 writes a quoted display name (independent of Mailroom's own)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{address}>'


def mailboxes_of(mime: EmailMessage, header: str) -> list[tuple[str, str]]:
    """(name, address) of each mailbox, as the email package reads them."""
    value = mime[header]
    return [(a.display_name, a.addr_spec) for a in value.addresses] if value is not None else []


def same(found: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> bool:
    """The same mailboxes, the names compared without their whitespace: the email package's address
    parser keeps the space between two encoded words, which RFC 2047 says to drop (Mailroom's own
    parser does), so a long encoded name reads with extra spaces there."""

    def key(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [("".join(name.split()), address) for name, address in pairs]

    return key(found) == key(wanted)


def last_mime() -> tuple[Any, EmailMessage]:
    ses = sent_messages()[-1]
    parsed = email.message_from_string(ses.raw_data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return ses, parsed


def no_bank_address(ses: Any) -> None:
    """Nothing at bank.example is a mailbox of the message, in its headers or its envelope."""
    _, mime = last_mime()
    for header in ("From", "To", "Cc", "Reply-To"):
        assert all(not a.endswith(CEO) for _, a in mailboxes_of(mime, header)), (header, mime[header])
    assert all(not r.endswith(CEO) for r in ses_recipients(ses))


def v1_token(world: World) -> str:
    return message_token(world.org, world.alice.id)


def receive_hostile(world: World, *, message_id: str) -> dict[str, Any]:
    """A received message whose names hold address syntax, some of it in RFC 2047 encoded words."""
    raw = (
        "From: =?utf-8?q?Carol_=3Cceo=40bank=2Eexample=3E=2C_x?= <carol@example.net>\r\n"
        'To: "Agent, <cfo@bank.example>" <agent-1@example.com>, "dave@bank.example" <dave@example.org>\r\n'
        "Cc: =?utf-8?b?" + base64.b64encode("Érin <ops@bank.example>, y".encode()).decode() + "?= "
        "<erin@example.org>\r\n"
        "Subject: Plans\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
        "\r\nHello\r\n"
    ).encode()
    return world.alice.receive(raw)  # type: ignore[no-any-return]


# --- 1. display names never become mailboxes ----------------------------------------------------------


def test_v1_send_names_in_from_and_recipients_stay_names(world: World) -> None:
    token = v1_token(world)
    for name in FORGING_NAMES:
        to = [quoted(name, "bob@example.net"), quoted(name, "carol@example.net")]
        sent = ok(
            send(
                token,
                {
                    "from": quoted(name, "agent-1@example.com"),
                    "to": to,
                    "cc": quoted(name, "dave@example.org"),
                    "reply_to": quoted(name, "reply@example.org"),
                    "subject": name,
                    "text": "x",
                },
            ),
            201,
        )
        ses, mime = last_mime()
        assert same(mailboxes_of(mime, "From"), [(name, "agent-1@example.com")]), mime["From"]
        assert same(mailboxes_of(mime, "To"), [(name, "bob@example.net"), (name, "carol@example.net")])
        assert same(mailboxes_of(mime, "Cc"), [(name, "dave@example.org")])
        assert same(mailboxes_of(mime, "Reply-To"), [(name, "reply@example.org")])
        assert mime["Subject"] == name
        assert ses_recipients(ses) == {"bob@example.net", "carol@example.net", "dave@example.org"}
        assert ses.source == "agent-1@example.com"
        no_bank_address(ses)

        # The Sent copy, and what reply-all of it offers: exactly the intended recipients.
        copy = store.get_message(world.table, world.alice.org_id, world.alice.id, sent["message_id"])
        assert copy is not None and copy["from"] == str(Address(name, "agent-1@example.com"))
        assert [a for _, a in getaddresses(copy["to"])] == ["bob@example.net", "carol@example.net"]
        prefill = get("send", token, f"/api/v1/messages/{sent['message_id']}/reply-all")
        data = prefill.json()["data"]
        assert [a for _, a in getaddresses(data["to"] + data["cc"])] == [
            "bob@example.net",
            "carol@example.net",
            "dave@example.org",
        ]
        ok(send(token, data), 201)  # posted back as is: the same recipients again
        ses, _ = last_mime()
        assert ses_recipients(ses) == {"bob@example.net", "carol@example.net", "dave@example.org"}
        no_bank_address(ses)


def test_v1_reply_reply_all_and_forward_of_mail_with_forging_names(world: World) -> None:
    token = v1_token(world)
    original = receive_hostile(world, message_id="<hostile-1@example.net>")
    intended = {
        "reply": {"carol@example.net"},
        "reply-all": {"carol@example.net", "dave@example.org", "erin@example.org"},
    }
    for mode, recipients in intended.items():
        data = ok(get("send", token, f"/api/v1/messages/{original['id']}/{mode}"))
        ok(send(token, data), 201)
        ses, mime = last_mime()
        assert ses_recipients(ses) == recipients, mode
        assert {a for header in ("To", "Cc") for _, a in mailboxes_of(mime, header)} == recipients
        assert mailboxes_of(mime, "To")[0] == ("Carol <ceo@bank.example>, x", "carol@example.net")
        no_bank_address(ses)
    # A Message-ID given without its brackets is written with them: the reply threads and answers.
    other = receive_hostile(world, message_id="<hostile-5@example.net>")
    bare = ok(
        send(token, {"to": "carol@example.net", "in_reply_to": "hostile-5@example.net", "text": "x"}), 201
    )
    _, mime = last_mime()
    assert mime["In-Reply-To"] == "<hostile-5@example.net>" and bare["thread_id"] == other["thread_id"]
    answered = store.get_message(world.table, world.alice.org_id, world.alice.id, other["id"])
    assert answered is not None and answered["flags"]["answered"] is True
    forward = ok(get("send", token, f"/api/v1/messages/{original['id']}/forward"))
    ok(send(token, {**forward, "to": quoted("Fwd <ceo@bank.example>", "fwd@example.org")}), 201)
    ses, mime = last_mime()
    assert ses_recipients(ses) == {"fwd@example.org"}
    assert mailboxes_of(mime, "To") == [("Fwd <ceo@bank.example>", "fwd@example.org")]
    no_bank_address(ses)


def test_v0_send_reply_reply_all_and_forward_with_forging_names(world: World) -> None:
    alice = world.alice
    messages = f"/inboxes/{alice.id}/messages"
    for name in FORGING_NAMES[:3]:
        ok0(v0(world.token, "POST", f"{messages}/send", {"to": quoted(name, "bob@example.net"), "text": "x"}))
        ses, mime = last_mime()
        assert mailboxes_of(mime, "To") == [(name, "bob@example.net")]
        assert mailboxes_of(mime, "From") == [("Agent One", "agent-1@example.com")]
        no_bank_address(ses)
    original = receive_hostile(world, message_id="<hostile-2@example.net>")
    for mode, body, recipients in (
        (
            "reply",
            {"cc": quoted("Boss, <ceo@bank.example>", "boss@example.org")},
            {"carol@example.net", "boss@example.org"},
        ),
        ("reply-all", {}, {"carol@example.net", "dave@example.org", "erin@example.org"}),
        ("forward", {"to": quoted("ceo@bank.example", "fwd@example.org")}, {"fwd@example.org"}),
    ):
        ok0(v0(world.token, "POST", f"{messages}/{original['id']}/{mode}", body))
        ses, mime = last_mime()
        assert ses_recipients(ses) == recipients, mode
        assert {a for header in ("To", "Cc") for _, a in mailboxes_of(mime, header)} == recipients, mode
        no_bank_address(ses)


def test_stored_names_holding_address_syntax_or_controls_are_refused(world: World) -> None:
    admin = world.org.admin_token
    for name in (
        "Support <support@bank.example>",
        "ceo@bank.example",
        "Ann\nBcc: x@y.z",
        "A\u202eB",
        SURROGATE,
    ):
        created = create_mailbox(world.org, "named", name=name)
        assert created.status == 422, (name, created.body)
        error = created.json()["error"]
        assert error["code"] == "validation_error" and [f["field"] for f in error["fields"]] == ["name"]
        updated = patch("mailboxes", admin, f"/api/v1/mailboxes/{world.alice.id}", {"name": name})
        assert updated.status == 422 and updated.json()["error"]["fields"][0]["field"] == "name"
        invited = post(
            "mailboxes",
            admin,
            "/api/v1/mailboxes/invites",
            {"local_part": "inv", "domain": "example.com", "name": name},
        )
        assert invited.status == 422 and invited.json()["error"]["fields"][0]["field"] == "name"
        v0_created = call(
            "agent_inboxes",
            "POST",
            "/api/v0/inboxes",
            token=admin,
            json_body={"username": "x", "display_name": name},
        )
        assert v0_error(v0_created, 422, "ValidationError")["errors"][0]["field"] == "display_name"
        v0_updated = call(
            "agent_inboxes",
            "PATCH",
            f"/api/v0/inboxes/{world.alice.id}",
            token=admin,
            json_body={"display_name": name},
        )
        assert v0_error(v0_updated, 422, "ValidationError")["errors"][0]["field"] == "display_name"
    assert "ceo" not in str(mailbox_service.load(world.table, world.alice.org_id, world.alice.id).get("name"))


def test_stored_names_with_specials_compose_as_one_mailbox(world: World) -> None:
    admin, token = world.org.admin_token, v1_token(world)
    name = 'Smith, "Jo" \\ Ann; Team: Ops'
    ok(patch("mailboxes", admin, f"/api/v1/mailboxes/{world.alice.id}", {"name": name}))
    ok(send(token, {"to": "bob@example.net", "text": "x"}), 201)
    _, mime = last_mime()
    assert mailboxes_of(mime, "From") == [(name, "agent-1@example.com")]
    unicode_name = "Zoë, Ops"
    ok0(
        call(
            "agent_inboxes",
            "PATCH",
            f"/api/v0/inboxes/{world.alice.id}",
            token=admin,
            json_body={"display_name": unicode_name},
        )
    )
    ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{world.alice.id}/messages/send",
            {"to": "bob@example.net", "text": "x"},
        )
    )
    _, mime = last_mime()
    assert mailboxes_of(mime, "From") == [(unicode_name, "agent-1@example.com")]
    prefill = ok(
        get(
            "send",
            token,
            f"/api/v1/messages/{ok(send(token, {'to': 'b@example.net'}), 201)['message_id']}/reply",
        )
    )
    assert prefill["from"] == '"Zoë, Ops" <agent-1@example.com>'


def test_a_name_stored_before_the_rule_still_composes_safely(world: World) -> None:
    legacy = "Evil <ceo@bank.example>, x\r\nBcc: spy@bank.example\u2028"
    mailbox_service.set_fields(world.table, world.alice.item(), {"name": legacy})
    token = v1_token(world)
    ok(send(token, {"to": "bob@example.net", "text": "x"}), 201)
    ses, mime = last_mime()
    ((name, address),) = mailboxes_of(mime, "From")
    assert address == "agent-1@example.com" and "\n" not in name and "<ceo@bank.example>" in name
    no_bank_address(ses)
    ok0(
        v0(
            world.token,
            "POST",
            f"/inboxes/{world.alice.id}/messages/send",
            {"to": "bob@example.net", "text": "x"},
        )
    )
    ses, mime = last_mime()
    assert [a for _, a in mailboxes_of(mime, "From")] == ["agent-1@example.com"]
    no_bank_address(ses)
    prefill = ok(
        get(
            "send",
            token,
            f"/api/v1/messages/{ok(send(token, {'to': 'b@example.net'}), 201)['message_id']}/forward",
        )
    )
    ok(send(token, {**prefill, "to": "fwd@example.org"}), 201)  # the prefill's from, posted back
    ses, mime = last_mime()
    assert [a for _, a in mailboxes_of(mime, "From")] == ["agent-1@example.com"]
    no_bank_address(ses)


# --- 2. text no header can carry: 422 naming the field ------------------------------------------------


def attachment(**fields: str) -> dict[str, Any]:
    return {"filename": "a.txt", "content": base64.b64encode(b"x").decode(), **fields}


def v1_cases(bad: str) -> list[tuple[dict[str, Any], str]]:
    """(what the send body gets, the field the 422 names) for one refused character."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"subject": f"a{bad}b"}, "subject"),
        ({"headers": {"X-Note": f"a{bad}b"}}, "headers.X-Note"),
        ({"in_reply_to": f"<a{bad}b@example.net>"}, "in_reply_to"),
        ({"references": ["<ok@example.net>", f"<a{bad}b@example.net>"]}, "references"),
        ({"attachments": [attachment(filename=f"a{bad}b.txt")]}, "attachments.0.filename"),
        ({"attachments": [attachment(content_type=f"text/pl{bad}ain")]}, "attachments.0.content_type"),
        ({"attachments": [attachment(content_id=f"a{bad}b@x")]}, "attachments.0.content_id"),
        ({"labels": ["fine", f"a{bad}b"]}, "labels.1"),
        ({"from": quoted(f"A{bad}B", "agent-1@example.com")}, "from"),
        ({"to": quoted(f"A{bad}B", "bob@example.net")}, "to"),
        ({"cc": [quoted(f"A{bad}B", "c@example.net")]}, "cc"),
        ({"bcc": [f"b{bad}@example.net"]}, "bcc"),
        ({"reply_to": quoted(f"A{bad}B", "r@example.net")}, "reply_to"),
    ]
    if bad == SURROGATE:
        cases += [({"text": f"a{bad}b"}, "text"), ({"html": f"<p>{bad}</p>"}, "html")]
        # pydantic refuses it for a field with constraints (no 500 either way).
        cases += [({"attachments": [{"message_id": f"msg_{bad}", "index": 0}]}, "attachments.0.message_id")]
    return cases


def refused(result: Result, field: str) -> None:
    assert result.status == 422, (field, result.status, result.body[:500])
    payload = result.json()
    fields = [f["field"] for f in payload["error"]["fields"]] if "error" in payload else []
    if "error" in payload:
        assert payload["error"]["code"] == "validation_error" and payload["error"]["retryable"] is False
    else:
        assert payload["name"] == "ValidationError"
        fields = [e["field"] for e in payload.get("errors") or []]
    assert field in fields, (field, payload)


def test_v1_send_refuses_every_line_break_and_surrogate_by_field(world: World) -> None:
    token = v1_token(world)
    before = len(sent_messages())
    for bad in HOSTILE:
        for patch_body, field in v1_cases(bad):
            body = {"to": "bob@example.net", "subject": "s", "text": "t", **patch_body}
            refused(send(token, body), field)
    assert len(sent_messages()) == before
    ok(
        send(
            token,
            {"to": "bob@example.net", "subject": "tab\tand ünïcode", "text": "\u2028 in a body is text"},
        ),
        201,
    )


def test_v1_replies_and_forwards_posting_hostile_text_are_422(world: World) -> None:
    token = v1_token(world)
    original = receive_hostile(world, message_id="<hostile-3@example.net>")
    before = len(sent_messages())
    for mode in ("reply", "reply-all", "forward"):
        data = ok(get("send", token, f"/api/v1/messages/{original['id']}/{mode}"))
        data["to"] = data["to"] or ["fwd@example.org"]
        for bad in (SURROGATE, "\u2028", "\x85"):
            refused(send(token, {**data, "subject": data["subject"] + bad}), "subject")
            refused(send(token, {**data, "labels": [bad]}), "labels.0")
        refused(send(token, {**data, "text": SURROGATE}), "text")
    assert len(sent_messages()) == before


def v0_cases(bad: str) -> list[tuple[str, dict[str, Any], str]]:
    """(the endpoint, its body, the field the 422 names) for one refused character."""
    send_cases: list[tuple[dict[str, Any], str]] = [
        ({"subject": f"a{bad}b"}, "subject"),
        ({"headers": {"X-Note": f"a{bad}b"}}, "headers.X-Note"),
        ({"labels": [f"a{bad}b"]}, "labels.0"),
        ({"attachments": [attachment(filename=f"a{bad}b.txt")]}, "attachments.0.filename"),
        ({"attachments": [attachment(content_type=f"text/{bad}")]}, "attachments.0.content_type"),
        ({"to": quoted(f"A{bad}B", "bob@example.net")}, "to"),
        ({"cc": quoted(f"A{bad}B", "c@example.net")}, "cc"),
        ({"reply_to": quoted(f"A{bad}B", "r@example.net")}, "reply_to"),
    ]
    cases = [("send", {"to": "bob@example.net", "text": "t", **body}, field) for body, field in send_cases]
    for mode in ("reply", "reply-all"):
        cases += [
            (mode, {"cc": quoted(f"A{bad}B", "c@example.net")}, "cc"),
            (mode, {"labels": [f"a{bad}"]}, "labels.0"),
            (mode, {"attachments": [attachment(filename=f"a{bad}.txt")]}, "attachments.0.filename"),
        ]
    cases += [
        ("forward", {"to": quoted(f"A{bad}B", "fwd@example.org")}, "to"),
        ("forward", {"to": "fwd@example.org", "labels": [bad]}, "labels.0"),
    ]
    if bad == SURROGATE:
        cases += [("send", {"to": "bob@example.net", "html": bad}, "html")]
        cases += [
            (
                "send",
                {"to": "bob@example.net", "attachments": [{"url": f"https://{bad}.example/a"}]},
                "attachments.0.url",
            )
        ]
        cases += [(mode, {"text": bad}, "text") for mode in ("reply", "reply-all")]
        cases += [("forward", {"to": "fwd@example.org", "html": bad}, "html")]
    return cases


def test_v0_send_reply_and_forward_refuse_every_line_break_and_surrogate_by_field(world: World) -> None:
    alice = world.alice
    original = receive_hostile(world, message_id="<hostile-4@example.net>")
    before = len(sent_messages())
    for bad in HOSTILE:
        for mode, body, field in v0_cases(bad):
            path = f"/inboxes/{alice.id}/messages/" + (
                "send" if mode == "send" else f"{original['id']}/{mode}"
            )
            refused(v0(world.token, "POST", path, body), field)
    assert len(sent_messages()) == before
