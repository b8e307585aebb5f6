"""Mailbox rules, auto-reply and the processing log through the API (Lambda events, moto), and the
rules stage of the inbound function on SES receipt events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, mailboxes
from mailroom.store import mail as store
from mailroom.store.table import Item, Table
from tests.support import inbound as sim
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
from tests.support.sending import message_token, sent_messages

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", CONFIGURATION_SET)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def inbox(org: NewOrganization, bucket: str) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "inbox")


def rules_path(mailbox: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/mailboxes/{mailbox['id']}/rules{tail}"


def add_rule(org: NewOrganization, mailbox: dict[str, Any], rule: dict[str, Any], status: int = 201) -> Any:
    result = post("mailboxes", org.admin_token, rules_path(mailbox), rule)
    if status != 201:
        assert result.status == status, (result.status, result.body)
        return result.json()["error"]
    return ok(result, 201)


def create_folder(org: NewOrganization, mailbox: dict[str, Any], path: str) -> None:
    token = message_token(org, mailbox["id"])
    ok(post("messages", token, "/api/v1/messages/folders", {"path": path}), 201)


def stored(
    table: Table, org: NewOrganization, mailbox: dict[str, Any], folder: str | None = None
) -> list[Item]:
    org_id = str(org.organization["id"])
    return store.list_messages(
        table, org_id, mailbox["id"], per_page=100, cursor=None, folder_key=folder
    ).items


_minutes = iter(range(1, 10_000))


def receive(bucket: str, raw: bytes, address: str = "inbox@example.com", **options: Any) -> tuple[str, Any]:
    """As SES would, one minute after the previous message (the log lists newest first)."""
    return sim.receive(bucket, raw, [address], at=sim.WHEN + timedelta(minutes=next(_minutes)), **options)


def logs(org: NewOrganization, mailbox: dict[str, Any]) -> list[dict[str, Any]]:
    return ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}/logs"))  # type: ignore[no-any-return]


# --- the API ------------------------------------------------------------------------------------------


def test_rules_crud_positions_and_reorder(org: NewOrganization, inbox: dict[str, Any]) -> None:
    first = add_rule(org, inbox, {"name": "A", "actions": [{"type": "flag"}]})
    second = add_rule(org, inbox, {"name": "B", "actions": [{"type": "mark_read"}]})
    front = add_rule(org, inbox, {"name": "C", "actions": [{"type": "flag"}], "position": 0})
    assert (first["position"], second["position"], front["position"]) == (0, 1, 0)
    listed = get("mailboxes", org.admin_token, rules_path(inbox)).json()
    assert [r["name"] for r in listed["data"]] == ["C", "A", "B"] and listed["meta"]["total"] == 3

    order = [second["id"], front["id"], first["id"]]
    reordered = patch("mailboxes", org.admin_token, rules_path(inbox, "/reorder"), {"rule_ids": order})
    assert [r["id"] for r in reordered.json()["data"]] == order
    for partial in ([second["id"], front["id"]], [*order, order[0]], [*order[:2], "rul_nope"]):
        refused = patch("mailboxes", org.admin_token, rules_path(inbox, "/reorder"), {"rule_ids": partial})
        assert refused.status == 422 and refused.json()["error"]["code"] == "invalid_order"

    changed = {
        "name": "B2",
        "match": "any",
        "conditions": [{"field": "subject", "op": "contains", "value": "x"}],
        "actions": [{"type": "add_label", "label": "x"}],
        "stop": True,
    }
    replaced = ok(put("mailboxes", org.admin_token, rules_path(inbox, f"/{second['id']}"), changed))
    assert replaced["id"] == second["id"] and replaced["position"] == 0 and replaced["stop"] is True
    assert ok(get("mailboxes", org.admin_token, rules_path(inbox, f"/{second['id']}")))["name"] == "B2"
    assert delete("mailboxes", org.admin_token, rules_path(inbox, f"/{front['id']}")).status == 204
    assert get("mailboxes", org.admin_token, rules_path(inbox, f"/{front['id']}")).status == 404
    assert [r["id"] for r in get("mailboxes", org.admin_token, rules_path(inbox)).json()["data"]] == [
        second["id"],
        first["id"],
    ]


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (
            {
                "name": "r",
                "conditions": [{"field": "subject", "op": "regex", "value": "(a"}],
                "actions": [{"type": "flag"}],
            },
            "invalid_regex",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "subject", "op": "regex", "value": "(a)\\1"}],
                "actions": [{"type": "flag"}],
            },
            "invalid_regex",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "subject", "op": "regex", "value": "a" * 1001}],
                "actions": [{"type": "flag"}],
            },
            "pattern_too_long",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "size", "op": "contains", "value": "x"}],
                "actions": [{"type": "flag"}],
            },
            "invalid_condition",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "subject", "op": "is", "value": "x"}] * 51,
                "actions": [{"type": "flag"}],
            },
            "too_many_conditions",
        ),
        ({"name": "r", "actions": [{"type": "move", "folder": "Nowhere"}]}, "unknown_folder"),
        ({"name": "r", "actions": [{"type": "forward", "to": "inbox@example.com"}]}, "forwarding_loop"),
        ({"name": "r", "actions": [{"type": "forward", "to": "ghost@example.com"}]}, "unknown_target"),
        ({"name": "r", "actions": [{"type": "reject"}, {"type": "flag"}]}, "invalid_action"),
        ({"name": "r", "actions": [{"type": "move"}]}, "invalid_action"),
    ],
)
def test_invalid_rules_are_refused_with_their_code(
    org: NewOrganization, inbox: dict[str, Any], rule: dict[str, Any], code: str
) -> None:
    error = add_rule(org, inbox, rule, status=422)
    assert error["code"] == code, error
    assert get("mailboxes", org.admin_token, rules_path(inbox)).json()["meta"]["total"] == 0


def test_a_catastrophic_regex_runs_in_linear_time(org: NewOrganization, inbox: dict[str, Any]) -> None:
    # (a+)+$ backtracks exponentially on Python's engine; RE2 accepts it and runs it in linear time.
    rule = add_rule(
        org,
        inbox,
        {
            "name": "r",
            "conditions": [{"field": "subject", "op": "regex", "value": "(a+)+$"}],
            "actions": [{"type": "flag"}],
        },
    )
    assert rule["conditions"][0]["value"] == "(a+)+$"


def test_globs_are_stored_in_canonical_form(org: NewOrganization, inbox: dict[str, Any]) -> None:
    rule = add_rule(
        org,
        inbox,
        {
            "name": "r",
            "conditions": [
                {"field": "subject", "op": "matches", "value": "*invoice*"},
                {"field": "from", "op": "matches", "value": "billing@*"},
                {"field": "to", "op": "matches", "value": "a?c*"},
            ],
            "actions": [{"type": "flag"}],
        },
    )
    assert [(c["op"], c["value"]) for c in rule["conditions"]] == [
        ("contains", "invoice"),
        ("starts_with", "billing@"),
        ("matches", "a?c*"),
    ]


def test_the_mailbox_message_token_manages_its_own_rules_only(
    org: NewOrganization, inbox: dict[str, Any]
) -> None:
    other = new_mailbox(org, "other")
    token = message_token(org, inbox["id"])
    created = ok(
        post("mailboxes", token, rules_path(inbox), {"name": "mine", "actions": [{"type": "flag"}]}), 201
    )
    assert ok(get("mailboxes", token, rules_path(inbox, f"/{created['id']}")))["name"] == "mine"
    assert get("mailboxes", token, rules_path(other)).status == 404
    reader = message_token(org, inbox["id"], ["messages:read"])
    assert get("mailboxes", reader, rules_path(inbox)).status == 200
    refused = post("mailboxes", reader, rules_path(inbox), {"name": "x", "actions": [{"type": "flag"}]})
    assert refused.status == 403
    # Auto-reply is an ops setting.
    assert get("mailboxes", token, f"/api/v1/mailboxes/{inbox['id']}/auto-reply").status == 403


def test_auto_reply_settings(org: NewOrganization, inbox: dict[str, Any]) -> None:
    path = f"/api/v1/mailboxes/{inbox['id']}/auto-reply"
    assert ok(get("mailboxes", org.admin_token, path))["enabled"] is False
    empty = put("mailboxes", org.admin_token, path, {"enabled": True})
    assert empty.status == 422 and empty.json()["error"]["code"] == "auto_reply_empty"
    backwards = put(
        "mailboxes",
        org.admin_token,
        path,
        {"enabled": True, "text": "x", "start": "2026-05-02T00:00:00Z", "end": "2026-05-01T00:00:00Z"},
    )
    assert backwards.status == 422
    saved = ok(
        put(
            "mailboxes",
            org.admin_token,
            path,
            {"enabled": True, "text": "Away", "start": "2026-05-01T00:00:00Z"},
        )
    )
    assert saved["start"] == "2026-05-01T00:00:00.000Z" and saved["interval_days"] == 7
    assert ok(get("mailboxes", org.admin_token, path))["text"] == "Away"


# --- the inbound rules stage --------------------------------------------------------------------------


def test_rules_file_label_flag_and_record_what_ran(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    create_folder(org, inbox, "Receipts")
    filed = add_rule(
        org,
        inbox,
        {
            "name": "Receipts",
            "conditions": [
                {"field": "subject", "op": "regex", "value": "^(receipt|invoice) #[0-9]+"},
                {"field": "from", "op": "ends_with", "value": "@shop.example"},
            ],
            "actions": [
                {"type": "move", "folder": "Receipts"},
                {"type": "add_label", "label": "money"},
                {"type": "flag"},
            ],
            "stop": True,
        },
    )
    add_rule(org, inbox, {"name": "never reached", "actions": [{"type": "add_label", "label": "late"}]})
    raw = sim.message("Invoice #42", sender="Shop <orders@shop.example>", to="inbox@example.com")
    receive(bucket, raw)
    receive(bucket, sim.message("hello", message_id="<m2@example.net>"))

    (receipt,) = [m for m in stored(table, org, inbox) if m["subject"] == "Invoice #42"]
    assert receipt["folder_key"].startswith("f") and receipt["labels"] == ["money"]
    assert receipt["flags"]["flagged"] is True and receipt["rules_applied"] == [filed["id"]]
    (plain,) = [m for m in stored(table, org, inbox) if m["subject"] == "hello"]
    assert plain["folder_key"] == "inbox" and plain["labels"] == ["late"]
    entries = logs(org, inbox)
    assert [e["subject"] for e in entries] == ["hello", "Invoice #42"]  # newest first
    assert entries[1]["outcome"] == "moved" and entries[1]["folder"] == "Receipts"
    assert entries[1]["rules_matched"] == [filed["id"]] and entries[1]["message_id"] == receipt["id"]
    assert entries[1]["evaluation_us"] >= 0
    reader = message_token(org, inbox["id"], ["messages:read"])
    assert ok(get("messages", reader, f"/api/v1/messages/{receipt['id']}"))["rules_applied"] == [filed["id"]]


def test_reject_drops_without_bounce_and_discard_keeps_in_trash(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    add_rule(
        org,
        inbox,
        {
            "name": "no",
            "conditions": [{"field": "subject", "op": "is", "value": "spam offer"}],
            "actions": [{"type": "reject"}],
        },
    )
    add_rule(
        org,
        inbox,
        {
            "name": "bin",
            "conditions": [{"field": "list", "op": "is", "value": True}],
            "actions": [{"type": "discard"}],
        },
    )
    _, report = receive(bucket, sim.message("SPAM offer"))
    assert report["stored"] == 0 and report["dropped"] == {"rejected_by_rule": 1}
    list_mail = sim.message(
        "digest", message_id="<l@example.net>", extra_headers=["List-Id: <news.example.net>"]
    )
    receive(bucket, list_mail)
    assert [m["subject"] for m in stored(table, org, inbox, "trash")] == ["digest"]
    assert not sent_messages()  # nothing bounced
    assert [e["outcome"] for e in logs(org, inbox)] == ["discarded", "rejected"]


def test_forward_rule_forwards_once_and_a_deleted_folder_falls_back_to_inbox(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    create_folder(org, inbox, "Later")
    add_rule(
        org,
        inbox,
        {
            "name": "fwd",
            "actions": [
                {"type": "forward", "to": "boss@elsewhere.net"},
                {"type": "move", "folder": "Later"},
            ],
        },
    )
    token = message_token(org, inbox["id"])
    assert post("messages", token, "/api/v1/messages/folders", {"path": "Later"}).status == 409
    folder = next(f for f in store.custom_folders(table, str(org.organization["id"]), inbox["id"]))
    assert delete("messages", token, f"/api/v1/messages/folders/{folder['path']}").status in (200, 204)
    ses_id, report = receive(bucket, sim.message("fwd me"))
    assert report["forwarded"] == 1
    sim.invoke(sim.ses_event(ses_id, ["inbox@example.com"]))  # a redelivered event forwards nothing more
    assert len(sent_messages()) == 1
    (message,) = stored(table, org, inbox)
    assert message["folder_key"] == "inbox"
    (entry,) = logs(org, inbox)
    assert entry["outcome"] == "folder_missing"
    assert entry["actions"][0]["result"] == "forwarded"


def test_auto_reply_once_per_sender_never_to_lists(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    path = f"/api/v1/mailboxes/{inbox['id']}/auto-reply"
    ok(put("mailboxes", org.admin_token, path, {"enabled": True, "text": "I am away.", "subject": "Away"}))
    receive(bucket, sim.message("one", message_id="<1@example.net>"))
    receive(bucket, sim.message("two", message_id="<2@example.net>"))
    listed = sim.message("news", message_id="<3@example.net>", extra_headers=["List-Id: <x.example.net>"])
    receive(bucket, listed, source="list@example.net")
    robot = sim.message(
        "bounce", message_id="<4@example.net>", extra_headers=["Auto-Submitted: auto-generated"]
    )
    receive(bucket, robot, source="robot@example.net")

    (reply,) = sent_messages()
    raw = reply.raw_data if isinstance(reply.raw_data, str) else reply.raw_data.decode()
    assert "Auto-Submitted: auto-replied" in raw and "In-Reply-To: <1@example.net>" in raw
    assert "Subject: Away" in raw
    assert [e["auto_reply"] for e in logs(org, inbox)] == [
        "auto_submitted",
        "list",
        "already_replied",
        "sent",
    ]
    sent_copy = stored(table, org, inbox, "sent")
    assert len(sent_copy) == 1 and sent_copy[0]["labels"] == ["auto-reply"]


def test_rules_cost_no_extra_request_per_message(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    new_mailbox(org, "plain")
    for number in range(20):
        add_rule(
            org,
            inbox,
            {
                "name": f"r{number}",
                "conditions": [
                    {"field": "body", "op": "regex", "value": f"order [0-9]{{{number + 1}}}"},
                    {"field": "header", "header": "X-Mailer", "op": "contains", "value": "bulk"},
                ],
                "actions": [{"type": "add_label", "label": f"l{number}"}],
            },
        )

    counted: Counter[str] = Counter()

    def count(event_name: str, **kwargs: Any) -> None:
        counted[event_name.rsplit(".", 1)[1]] += 1

    aws.client("dynamodb").meta.events.register("before-call.dynamodb.*", count)

    def calls(address: str, message_id: str) -> Counter[str]:
        counted.clear()
        receive(bucket, sim.message("x", message_id=message_id, to=address), address)
        return Counter(counted)

    with_rules = calls("inbox@example.com", "<r@example.net>")
    without = calls("plain@example.com", "<p@example.net>")
    assert with_rules == without, (with_rules, without)
    assert mailboxes.get(table, str(org.organization["id"]), inbox["id"]) is not None


# --- Sieve --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sieve"


def sieve_path(mailbox: dict[str, Any]) -> str:
    return f"/api/v1/mailboxes/{mailbox['id']}/sieve"


def test_a_roundcube_script_replaces_the_rules_and_reads_back(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    old = add_rule(org, inbox, {"name": "old", "actions": [{"type": "flag"}]})
    script = (FIXTURES / "roundcube_managesieve.sieve").read_text()
    missing = put("mailboxes", org.admin_token, sieve_path(inbox), {"script": script})
    assert missing.status == 422 and missing.json()["error"]["code"] == "unknown_folder"
    assert [r["id"] for r in get("mailboxes", org.admin_token, rules_path(inbox)).json()["data"]] == [
        old["id"]
    ]

    for folder in ("Newsletters", "Invoices", "Large"):
        create_folder(org, inbox, folder)
    rendered = ok(put("mailboxes", org.admin_token, sieve_path(inbox), {"script": script}))["script"]
    rules = get("mailboxes", org.admin_token, rules_path(inbox)).json()["data"]
    assert [r["name"] for r in rules] == [
        "Newsletters",
        "Boss",
        "Invoices",
        "Large mail",
        "Old rule",
        "Prize spam",
    ]
    assert ok(get("mailboxes", org.admin_token, sieve_path(inbox)))["script"] == rendered
    # What GET renders, PUT reads back to the same rules (new ids: a script carries none).
    ok(put("mailboxes", org.admin_token, sieve_path(inbox), {"script": rendered}))
    again = get("mailboxes", org.admin_token, rules_path(inbox)).json()["data"]
    assert [{**r, "id": ""} for r in again] == [{**r, "id": ""} for r in rules]

    receive(bucket, sim.message("Invoice 7", body="the amount due is 3 EUR", message_id="<i7@example.net>"))
    (filed,) = stored(table, org, inbox)
    assert filed["folder_key"] != "inbox" and filed["labels"] == ["$label4"]


def test_a_broken_script_changes_nothing_and_the_rules_keep_working(
    org: NewOrganization, table: Table, bucket: str, inbox: dict[str, Any]
) -> None:
    add_rule(org, inbox, {"name": "label", "actions": [{"type": "add_label", "label": "seen-by-rule"}]})
    before = ok(get("mailboxes", org.admin_token, sieve_path(inbox)))["script"]
    broken = put("mailboxes", org.admin_token, sieve_path(inbox), {"script": "if true {\n  discard\n}\n"})
    error = broken.json()["error"]
    assert broken.status == 422 and error["code"] == "sieve_syntax"
    assert "line 3" in error["message"] and error["fields"][0]["field"] == "script:3:1"
    unsupported = put("mailboxes", org.admin_token, sieve_path(inbox), {"script": 'require ["include"];'})
    assert (
        unsupported.json()["error"]["code"] == "sieve_unsupported"
        and "include" in unsupported.json()["error"]["message"]
    )
    assert ok(get("mailboxes", org.admin_token, sieve_path(inbox)))["script"] == before
    receive(bucket, sim.message("still filtered"))
    assert stored(table, org, inbox)[0]["labels"] == ["seen-by-rule"]


def test_a_vacation_script_sets_the_auto_reply(org: NewOrganization, inbox: dict[str, Any]) -> None:
    script = (FIXTURES / "vacation.sieve").read_text()
    ok(put("mailboxes", org.admin_token, sieve_path(inbox), {"script": script}))
    reply = ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}/auto-reply"))
    assert (
        reply["enabled"] and reply["interval_days"] == 5 and reply["subject"] == "Out of office until 14 July"
    )
    assert (reply["start"], reply["end"]) == ("2026-07-01T00:00:00.000Z", "2026-07-14T23:59:59.999Z")
    # A script without a vacation turns the auto-reply off.
    ok(put("mailboxes", org.admin_token, sieve_path(inbox), {"script": "keep;"}))
    assert (
        ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}/auto-reply"))["enabled"]
        is False
    )


def test_a_scripts_vacation_needs_the_auto_reply_scopes(org: NewOrganization, inbox: dict[str, Any]) -> None:
    """A script's vacation is the auto-reply: a message token, or an ops token with the rules scopes
    only, neither sees it nor changes it, and its rules-only script leaves it on."""
    reply_path = f"/api/v1/mailboxes/{inbox['id']}/auto-reply"
    ok(put("mailboxes", org.admin_token, reply_path, {"enabled": True, "text": "Away until Monday"}))
    assert "vacation" in ok(get("mailboxes", org.admin_token, sieve_path(inbox)))["script"]
    created = post(
        "tokens",
        org.admin_token,
        "/api/v1/tokens",
        {"name": "rules only", "scopes": ["mailboxes:rules:read", "mailboxes:rules:write"]},
    )
    rules_only = str(ok(created, 201)["token"])
    vacation = (FIXTURES / "vacation.sieve").read_text()
    for token in (message_token(org, inbox["id"]), rules_only):
        assert "vacation" not in ok(get("mailboxes", token, sieve_path(inbox)))["script"]
        refused = put("mailboxes", token, sieve_path(inbox), {"script": vacation})
        assert refused.status == 403 and refused.json()["error"]["code"] == "insufficient_scope"
        script = 'require ["imap4flags"];\r\n# rule:[mine]\r\nif true {\r\n  addflag "\\\\Flagged";\r\n}\r\n'
        rendered = ok(put("mailboxes", token, sieve_path(inbox), {"script": script}))["script"]
        assert "vacation" not in rendered and "rule:[mine]" in rendered
        reply = ok(get("mailboxes", org.admin_token, reply_path))
        assert reply["enabled"] is True and reply["text"] == "Away until Monday"
    assert "vacation" in ok(get("mailboxes", org.admin_token, sieve_path(inbox)))["script"]
