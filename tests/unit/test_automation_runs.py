"""The automation worker's pure parts: queue messages, which actions of a log entry are pending, the
template context and default payload, and JSON body templates in the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import automation_runs as runs
from mailroom.mail import templates
from mailroom.store.action_runs import log_entry_of

ENTRY: dict[str, Any] = {
    "automation_pending": 2,
    "automation": {
        "routes": [{"id": "rte_1", "name": "orders", "matched": True}],
        "actions": [
            {
                "route_id": "rte_1",
                "action_id": "act_l",
                "action_type": "label",
                "mode": "inline",
                "status": "done",
            },
            {
                "route_id": "rte_1",
                "action_id": "act_w",
                "action_type": "webhook",
                "mode": "async",
                "status": "pending",
            },
            {
                "route_id": "rte_1",
                "action_id": "act_r",
                "action_type": "reply",
                "mode": "async",
                "status": "done",
            },
            {
                "route_id": "rte_1",
                "action_id": "act_f",
                "action_type": "forward",
                "mode": "async",
                "status": "pending",
            },
        ],
    },
}


def test_the_pending_async_actions_of_an_entry_keep_their_index() -> None:
    found = runs.pending_actions("org_1", "mbx_1", "01ULID", ENTRY)
    assert [(p.index, p.action_id, p.action_type) for p in found] == [
        (1, "act_w", "webhook"),
        (3, "act_f", "forward"),
    ]
    assert runs.pending_actions("org_1", "mbx_1", "01ULID", {"outcome": "delivered"}) == []
    assert runs.logged_action(ENTRY, found[0]) == ENTRY["automation"]["actions"][1]
    moved = runs.PendingAction("org_1", "mbx_1", "01ULID", 2, "rte_1", "act_w", "webhook")
    assert runs.logged_action(ENTRY, moved) is None  # index 2 is another action: not trusted
    assert runs.route_of(ENTRY, "rte_1") == {"id": "rte_1", "name": "orders"}


@settings(max_examples=40, derandomize=True)
@given(
    ids=st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=30),
        min_size=6,
        max_size=6,
    ),
    index=st.integers(min_value=0, max_value=10_000),
)
def test_a_queue_message_round_trips(ids: list[str], index: int) -> None:
    pending = runs.PendingAction(*ids[:3], index, *ids[3:])  # type: ignore[misc]
    assert runs.PendingAction.parse(pending.body()) == pending
    assert "." not in pending.run_id


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        '{"v": 2}',
        '{"v": 1, "org_id": "o", "mailbox_id": "m", "message_ulid": "u", "route_id": "r", "action_id": "a"}',
        '{"v": 1, "org_id": "o", "mailbox_id": "m", "message_ulid": "u", "route_id": "r", "action_id": "a",'
        ' "action_type": "webhook", "index": true}',
        '{"v": 1, "org_id": "", "mailbox_id": "m", "message_ulid": "u", "route_id": "r", "action_id": "a",'
        ' "action_type": "webhook", "index": 0}',
    ],
)
def test_a_foreign_queue_message_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        runs.PendingAction.parse(body)


def test_log_entry_keys_name_their_mailbox_and_message() -> None:
    assert log_entry_of("ORG#org_1#MBX#mbx_2", "RULELOG#01ULID") == ("org_1", "mbx_2", "01ULID")
    assert log_entry_of("ORG#org_1#EVENTS", "RULELOG#01ULID") is None
    assert log_entry_of("ORG#org_1#MBX#mbx_2", "MSG#01ULID") is None


MESSAGE = {
    "id": "msg_01ULID",
    "rfc_message_id": "<m1@example.net>",
    "from": "Ann Example <ann@example.net>",
    "from_address": "ann@example.net",
    "to": ["inbox@example.com"],
    "cc": [],
    "subject": "Order 42",
    "received_at": "2026-03-01T12:00:00Z",
    "has_attachments": False,
    "size": 1234,
    "body": {"text": "secret"},  # never copied whole: the context has what the CONTRACT lists
}


def test_the_template_context_is_the_contracts() -> None:
    context = runs.template_context(
        message=MESSAGE,
        text="x" * (runs.TEXT_CHARS + 10),
        mailbox={"id": "mbx_1", "address": "inbox@example.com", "password_hash": "no"},
        action={"id": "act_1", "name": "notify", "secret_ciphertext": b"no"},
        route={"id": "rte_1", "name": "orders"},
        data={"vips": ["ann@example.net"]},
    )
    assert set(context) == {"message", "mailbox", "route", "action", "data"}
    assert set(context["message"]) == {
        "id", "message_id", "from", "from_address", "to", "cc", "subject", "text", "received_at",
        "has_attachments", "size",
    }  # fmt: skip
    assert len(context["message"]["text"]) == runs.TEXT_CHARS
    assert context["mailbox"] == {"id": "mbx_1", "address": "inbox@example.com"}
    assert context["action"] == {"id": "act_1", "name": "notify"}
    tasks = runs.template_context(message=MESSAGE, text=None, mailbox={}, action={}, route=None)
    assert "route" not in tasks and tasks["message"]["text"] == ""
    payload = runs.default_payload("run_1", "2026-03-01T12:00:01Z", context, test=False)
    assert payload["type"] == "automation.action" and payload["message"]["subject"] == "Order 42"
    json.dumps(payload)  # JSON as it is


def test_data_documents_decode_and_absent_ones_are_null() -> None:
    items = [{"key": "vips", "value": '["a@b.c"]'}, {"key": "broken", "value": "{"}]
    assert runs.decode_documents(items, ["vips", "broken", "absent"]) == {
        "vips": ["a@b.c"],
        "broken": None,
        "absent": None,
    }


def test_a_json_body_template_quotes_every_value_through_tojson() -> None:
    context = {"message": {"subject": 'He said "hi"\n</script>', "to": ["a@b.c"], "size": 3}}
    body = templates.render_json(
        '{"subject": {{ message.subject | tojson }}, "to": {{ message.to | tojson }},'
        ' "n": {{ message.size }}}',
        context,
    )
    assert body == {"subject": 'He said "hi"\n</script>', "to": ["a@b.c"], "n": 3}


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{{ message.subject }}", "template_not_json"),  # not quoted: not a JSON document
        ("{{ message.nope | tojson }}", "template_variable_missing"),
        ("{{ message.subject | tojson(indent=1000) }}", "template_refused"),
        ("{{ ''.__class__ }}", "template_refused"),
        (
            "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
            "template_timeout",
        ),
        ("{{ x", "template_syntax_error"),
    ],
)
def test_a_json_body_template_that_cannot_make_a_body_is_refused(source: str, code: str) -> None:
    with pytest.raises(templates.TemplateError) as raised:
        templates.render_json(source, {"message": {"subject": "s"}})
    assert raised.value.code == code
    assert raised.value.part == "body_template"


def test_check_json_names_the_variables_a_template_reads() -> None:
    assert templates.check_json('{"s": {{ message.subject | tojson }}, "d": {{ data.k | tojson }}}') == [
        "data",
        "message",
    ]
    with pytest.raises(templates.TemplateError):
        templates.check_json("{{ message | nosuchfilter }}")
