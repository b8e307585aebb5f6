"""The MailTrigger mailbox view (``/api/v1/mailbox``) through its function's handler under moto:
mailboxes and their delete flow, test mail through the real inbound pipeline (SES's bucket, the
rules, the store, the log), the log's automation block, archives by date and by route, sending,
scopes and message tokens, and every path with and without its trailing slash."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mailroom import ids
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store import mail as mail_store
from mailroom.store import rules as rule_store
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.lambda_api import LambdaContext, call, function_module, http_event
from tests.support.mailboxes import (
    add_domain,
    create_mail_infrastructure,
    delete,
    get,
    key,
    new_mailbox,
    ok,
    patch,
    post,
    put,
)
from tests.support.sending import message_token, sent_messages

FUNCTION = "mailtrigger_mailbox"
BASE = "/api/v1/mailbox"
CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, queue = create_mail_infrastructure()
    for variable, value in {
        "MAILROOM_MAIL_BUCKET": name,
        "MAILROOM_PURGE_QUEUE_URL": queue,
        "MAILROOM_SES_CONFIGURATION_SET": CONFIGURATION_SET,
        "MAILROOM_DELETE_COOLDOWN_SECONDS": "0",
    }.items():
        monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def inbox(org: NewOrganization, bucket: str) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "inbox")


def org_id(org: NewOrganization) -> str:
    return str(org.organization["id"])


def post_testmail(
    org: NewOrganization, mailbox: dict[str, Any], body: Any = None, *, token: str | None = None
) -> Any:
    return post(FUNCTION, token or org.admin_token, f"{BASE}/{mailbox['id']}/testmail/", body)


def raw_post(path: str, token: str, body: bytes) -> tuple[int, Any]:
    """POST ``body`` as it is (not JSON-encoded by the helper)."""
    headers = {"Idempotency-Key": key()["Idempotency-Key"], "content-type": "application/json"}
    event = http_event("POST", path, token=token, headers=headers, body=body)
    response = function_module(FUNCTION).handler(event, LambdaContext(function_name=FUNCTION))
    raw = response.get("body") or ""
    payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    return response["statusCode"], json.loads(payload) if payload else None


# --- mailboxes ----------------------------------------------------------------------------------------


def test_mailboxes_list_create_view_update_and_the_two_step_delete(org: NewOrganization, bucket: str) -> None:
    add_domain(org, "example.com")
    created = ok(
        post(FUNCTION, org.admin_token, f"{BASE}/", {"local_part": "Hooks", "domain": "example.com"}), 201
    )
    assert created["address"] == "hooks@example.com" and created["active"] is True
    assert created["links"]["logs"] == f"{BASE}/{created['id']}/logs"
    mailbox_path = f"{BASE}/{created['id']}/"

    # The same mailbox as /api/v1/mailboxes, readable by id or by address.
    assert (
        ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{created['id']}"))["address"]
        == created["address"]
    )
    assert ok(get(FUNCTION, org.admin_token, f"{BASE}/HOOKS@example.com/"))["id"] == created["id"]
    listed = get(FUNCTION, org.admin_token, f"{BASE}/").json()
    assert [m["id"] for m in listed["data"]] == [created["id"]] and listed["meta"]["total"] == 1

    taken = post(FUNCTION, org.admin_token, f"{BASE}/", {"local_part": "hooks", "domain": "example.com"})
    assert taken.status == 409 and taken.error_code == "address_taken"
    unknown = post(FUNCTION, org.admin_token, f"{BASE}/", {"local_part": "x", "domain": "nope.example"})
    assert unknown.status == 422 and unknown.error_code == "unknown_domain"

    renamed = ok(patch(FUNCTION, org.admin_token, mailbox_path, {"name": "Hooks", "quota": 512, "note": "n"}))
    assert (renamed["name"], renamed["quota"], renamed["note"]) == ("Hooks", 512, "n")
    refused = patch(FUNCTION, org.admin_token, mailbox_path, {"active": None})
    assert refused.status == 422 and refused.json()["error"]["fields"][0]["field"] == "active"
    replaced = ok(put(FUNCTION, org.admin_token, mailbox_path, {"name": None, "active": False, "quota": 256}))
    assert (replaced["name"], replaced["active"], replaced["quota"], replaced["note"]) == (
        None,
        False,
        256,
        None,
    )
    incomplete = put(FUNCTION, org.admin_token, mailbox_path, {"name": "x"})
    assert incomplete.status == 422

    pending = delete(FUNCTION, org.admin_token, mailbox_path)
    assert pending.status == 202, pending.body
    intent = pending.json()["data"]
    assert intent["status"] == "pending" and intent["mailbox_id"] == created["id"]
    assert ok(get(FUNCTION, org.admin_token, mailbox_path))["id"] == created["id"]  # nothing deleted yet

    wrong = call(FUNCTION, "DELETE", mailbox_path, token=org.admin_token, query={"intent": ids.new_id("dli")})
    assert wrong.status == 404
    confirmed = call(FUNCTION, "DELETE", mailbox_path, token=org.admin_token, query={"intent": intent["id"]})
    assert confirmed.status == 200, confirmed.body
    assert (
        confirmed.json()["data"]["mailbox_deleted"] is True
        and confirmed.json()["data"]["status"] == "confirmed"
    )
    assert get(FUNCTION, org.admin_token, mailbox_path).status == 404
    again = call(FUNCTION, "DELETE", mailbox_path, token=org.admin_token, query={"intent": intent["id"]})
    assert again.status == 404


def test_an_intent_for_another_mailbox_does_not_delete_this_one(
    org: NewOrganization, inbox: dict[str, Any]
) -> None:
    other = new_mailbox(org, "other")
    intent = delete(FUNCTION, org.admin_token, f"{BASE}/{other['id']}/").json()["data"]
    mixed = call(
        FUNCTION, "DELETE", f"{BASE}/{inbox['id']}/", token=org.admin_token, query={"intent": intent["id"]}
    )
    assert mixed.status == 404
    assert ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/"))["id"] == inbox["id"]
    assert ok(get(FUNCTION, org.admin_token, f"{BASE}/{other['id']}/"))["id"] == other["id"]


def test_every_path_answers_with_and_without_its_trailing_slash(
    org: NewOrganization, inbox: dict[str, Any]
) -> None:
    """The contract page writes the slash, the document does not: both reach the operation."""
    token = org.admin_token
    for slash in ("/", ""):
        assert ok(get(FUNCTION, token, f"{BASE}{slash}"))[0]["id"] == inbox["id"]
        assert ok(get(FUNCTION, token, f"{BASE}/{inbox['id']}{slash}"))["id"] == inbox["id"]
        tested = ok(post(FUNCTION, token, f"{BASE}/{inbox['id']}/testmail{slash}", {}), 201)
        assert tested["status"] == "delivered"
        log_id = tested["log_id"]
        assert ok(get(FUNCTION, token, f"{BASE}/{inbox['id']}/logs/{log_id}{slash}"))["id"] == log_id
        assert ok(get(FUNCTION, token, f"{BASE}/{inbox['id']}/logs{slash}"))[0]["id"] == log_id
        archived = ok(get(FUNCTION, token, f"{BASE}/{inbox['id']}/archives{slash}"))
        assert archived[0]["id"] == tested["message_id"]


# --- test mail ----------------------------------------------------------------------------------------


def test_testmail_runs_the_inbound_pipeline_and_is_logged_as_a_test(
    org: NewOrganization, inbox: dict[str, Any], bucket: str, table: Table
) -> None:
    result = post_testmail(org, inbox)
    assert result.status == 201, result.body
    data = result.json()["data"]
    log_id, message_id = data["log_id"], data["message_id"]
    assert data["status"] == "delivered" and log_id.removeprefix("log_") == message_id.removeprefix("msg_")
    assert result.headers["location"] == f"{BASE}/{inbox['id']}/logs/{log_id}"
    assert data["log"]["test"] is True and data["log"]["automation_pending"] == 0

    # The message lies where SES's receipt rule writes, and was stored like any received mail.
    ses_id = data["log"]["ses_message_id"]
    assert ses_id.startswith("tst_")
    aws.client("s3").head_object(Bucket=bucket, Key=f"inbound/{ses_id}")
    stored = mail_store.get_message(table, org_id(org), inbox["id"], message_id)
    assert stored is not None and stored["folder_key"] == "inbox" and stored["subject"] == "Test message"
    assert stored["direction"] == "inbound" and stored.get("envelope_from") is None
    receipt = table.get(keys.inbound_pk(org_id(org)), keys.inbound_receipt_sk(ses_id))
    assert receipt is not None and receipt["copies"] == [inbox["id"]]

    assert ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/logs/{log_id}/")) == data["log"]
    assert [entry["id"] for entry in ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/logs/"))] == [
        log_id
    ]


def test_testmail_meets_the_mailbox_rules_and_answers_nobody(
    org: NewOrganization, inbox: dict[str, Any], table: Table
) -> None:
    rule = {
        "name": "Invoices",
        "conditions": [
            {"field": "subject", "op": "contains", "value": "invoice"},
            {"field": "header", "header": "X-Source", "op": "is", "value": "billing"},
        ],
        "actions": [{"type": "add_label", "label": "invoices"}, {"type": "flag"}],
    }
    created = ok(post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}/rules", rule), 201)
    reply = {"enabled": True, "text": "I am away."}
    ok(put("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}/auto-reply", reply))

    body = {
        "from": "Billing <billing@partner.example>",
        "subject": "Invoice 42",
        "text": "Amount: 12 EUR",
        "html": "<p>Amount: <b>12 EUR</b></p>",
        "headers": {"X-Source": "billing"},
    }
    data = ok(post_testmail(org, inbox, body), 201)
    log = data["log"]
    assert log["rules_matched"] == [created["id"]] and log["from"] == "billing@partner.example"
    assert [a["type"] for a in log["rule_actions"]] == ["add_label", "flag"]
    # No return path: the auto-reply (and so any reply) never answers a test message.
    assert log["auto_reply"] == "no_return_path" and sent_messages() == []
    stored = mail_store.get_message(table, org_id(org), inbox["id"], data["message_id"])
    assert stored is not None and stored["labels"] == ["invoices"] and stored["flags"]["flagged"] is True

    other = ok(post_testmail(org, inbox, {"subject": "Hello"}), 201)["log"]
    assert other["rules_matched"] == [] and other["outcome"] == "delivered"


def test_testmail_to_a_mailbox_the_pipeline_drops_is_logged_with_the_reason(
    org: NewOrganization, inbox: dict[str, Any], table: Table
) -> None:
    ok(patch(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/", {"active": False}))
    data = ok(post_testmail(org, inbox, {"subject": "Anyone?"}), 201)
    assert (data["status"], data["message_id"]) == ("mailbox_inactive", None)
    entry = ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/logs/{data['log_id']}/"))
    assert entry["test"] is True and entry["subject"] == "Anyone?" and entry["links"]["message"] is None
    assert mail_store.list_messages(table, org_id(org), inbox["id"], per_page=10, cursor=None).items == []


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"from": "a@example.net\r\nBcc: victim@example.org"}, "from", "validation_error"),
        ({"from": "not an address"}, "from", "validation_error"),
        ({"subject": "Hi\nBcc: x@example.org"}, "subject", "validation_error"),
        ({"headers": {"Received": "from evil"}}, "headers.Received", "reserved_header"),
        (
            {"headers": {"Authentication-Results": "pass"}},
            "headers.Authentication-Results",
            "reserved_header",
        ),
        ({"headers": {"X-A": "one\r\nX-B: two"}}, "headers.X-A", "validation_error"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name", "validation_error"),
        ({"unknown": 1}, "unknown", "validation_error"),
    ],
)
def test_testmail_refuses_what_a_header_cannot_carry(
    org: NewOrganization, inbox: dict[str, Any], body: dict[str, Any], field: str, code: str
) -> None:
    refused = post_testmail(org, inbox, body)
    assert refused.status == 422 and refused.error_code == code, refused.body
    assert any(f["field"].endswith(field) for f in refused.json()["error"]["fields"])


# --- the log's automation block -----------------------------------------------------------------------


def test_the_log_shows_routes_and_each_actions_outcome(
    org: NewOrganization, inbox: dict[str, Any], table: Table
) -> None:
    """A log entry as autoinbound writes it and autoworker updates it (the contract's format)."""
    ulid = ids.ulid()
    automation = {
        "routes": [
            {"id": "rte_1", "name": "Hooks", "matched": True},
            {"id": "rte_2", "name": "Else", "matched": False},
        ],
        "actions": [
            {
                "route_id": "rte_1",
                "action_id": "act_1",
                "action_type": "label",
                "mode": "inline",
                "status": "done",
            },
            {
                "route_id": "rte_1",
                "action_id": "act_2",
                "action_type": "webhook",
                "mode": "async",
                "status": "failed",
                "error": "HTTP 500",
                "duration_ms": 120,
                "attempts": 3,
                "detail": {"status_code": 500},
            },
            {
                "route_id": "rte_1",
                "action_id": "act_3",
                "action_type": "forward",
                "mode": "async",
                "status": "pending",
            },
        ],
    }
    entry = {
        "message_id": f"msg_{ulid}",
        "ses_message_id": sim.new_ses_id(),
        "from": "ann@example.net",
        "subject": "Order",
        "rules_matched": [],
        "actions": [],
        "outcome": "delivered",
        "folder": None,
        "auto_reply": None,
        "evaluation_us": 12,
        "created_at": "2026-03-01T12:00:00.000Z",
        "automation": automation,
        "automation_pending": 1,
    }
    rule_store.put_log(table, rule_store.log_item(org_id(org), inbox["id"], ulid, entry, sim.WHEN))
    shown = ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/logs/log_{ulid}/"))
    assert shown["automation"]["routes"] == automation["routes"] and shown["automation_pending"] == 1
    webhook = shown["automation"]["actions"][1]
    assert (webhook["status"], webhook["error"], webhook["attempts"], webhook["duration_ms"]) == (
        "failed",
        "HTTP 500",
        3,
        120,
    )
    assert shown["automation"]["actions"][2]["status"] == "pending" and shown["test"] is False
    for missing in (f"log_{ids.ulid()}", "log_nope", f"msg_{ulid}"):
        assert get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/logs/{missing}/").status == 404


# --- archives -----------------------------------------------------------------------------------------


def test_archives_by_time_and_by_route(
    org: NewOrganization, inbox: dict[str, Any], bucket: str, table: Table
) -> None:
    times = [sim.WHEN + timedelta(hours=hour) for hour in range(3)]
    for index, at in enumerate(times):
        raw = sim.message(f"Message {index}", message_id=f"<a{index}@example.net>", to="inbox@example.com")
        sim.receive(bucket, raw, ["inbox@example.com"], at=at)
    archived = get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/").json()
    assert [m["subject"] for m in archived["data"]] == ["Message 2", "Message 1", "Message 0"]
    assert archived["meta"]["total"] == 3
    first = archived["data"][2]
    assert first["direction"] == "received" and first["receivers"] == ["inbox@example.com"]
    assert (
        first["sender"] == "Ann Example <ann@example.net>"
        and first["links"]["message"] == f"/api/v1/messages/{first['id']}"
    )

    def subjects(**query: Any) -> list[str]:
        return [
            m["subject"]
            for m in ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/", **query))
        ]

    iso = [at.isoformat() for at in times]
    assert subjects(since=iso[1]) == ["Message 2", "Message 1"]
    assert subjects(until=iso[1]) == ["Message 1", "Message 0"]
    assert subjects(since=iso[1], until=iso[1]) == ["Message 1"]
    assert subjects(subject="message 0") == ["Message 0"]
    # A moment without a zone is UTC; the extremes of the calendar bound nothing.
    assert subjects(since=times[1].replace(tzinfo=None).isoformat()) == ["Message 2", "Message 1"]
    extremes = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}
    assert subjects(**extremes) == ["Message 2", "Message 1", "Message 0"]
    assert (
        get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/", since=iso[2], until=iso[0]).status
        == 422
    )

    # Route hits as inbound writes them in the message's transaction (the contract's items).
    route_id = ids.new_id("rte")
    for message in archived["data"][:2]:
        ulid = message["id"].removeprefix("msg_")
        hit = {
            "PK": keys.mailbox_pk(org_id(org), inbox["id"]),
            "SK": keys.route_hit_sk(route_id, ulid),
            "type": "route_hit",
            "route_id": route_id,
            "message_ulid": ulid,
            "received_at": message["created_at"],
        }
        table.put(hit)
    assert subjects(route=route_id) == ["Message 2", "Message 1"]
    assert subjects(route=route_id, until=iso[1]) == ["Message 1"]
    assert subjects(route=route_id, **extremes) == ["Message 2", "Message 1"]
    assert subjects(route=ids.new_id("rte")) == []
    paged = get(
        FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/", route=route_id, per_page=1
    ).json()
    assert [m["subject"] for m in paged["data"]] == ["Message 2"] and paged["links"]["next"]
    for bad in ({"route": "nope"}, {"route": route_id, "sender": "ann"}):
        refused = get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/", **bad)
        assert refused.status == 422 and refused.json()["error"]["fields"][0]["field"] == "route"


# --- sending ------------------------------------------------------------------------------------------


def test_send_through_the_mailbox(org: NewOrganization, inbox: dict[str, Any], table: Table) -> None:
    body = {"to": "carol@example.org", "subject": "From the mailbox", "text": "Hello"}
    result = post(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/mail/send/", body)
    assert result.status == 201, result.body
    sent = result.json()["data"]
    assert result.headers["location"] == f"/api/v1/messages/{sent['message_id']}"
    (ses,) = sent_messages()
    assert set(ses.destinations) == {"carol@example.org"} and b"From the mailbox" in ses.raw_data.encode()
    copy = mail_store.get_message(table, org_id(org), inbox["id"], sent["message_id"])
    assert copy is not None and copy["folder_key"] == "sent"
    archived = ok(get(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/archives/"))
    assert [(m["direction"], m["subject"]) for m in archived] == [("sent", "From the mailbox")]

    ok(patch(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/", {"active": False}))
    refused = post(FUNCTION, org.admin_token, f"{BASE}/{inbox['id']}/mail/send/", body)
    assert refused.status == 403 and refused.error_code == "mailbox_inactive"


# --- scopes and message tokens ------------------------------------------------------------------------


def ops_token(org: NewOrganization, *scopes: str) -> str:
    body = {"name": "limited", "scopes": list(scopes)}
    created = call("tokens", "POST", "/api/v1/tokens", token=org.admin_token, json_body=body, headers=key())
    return str(ok(created, 201)["token"])


def test_scopes_of_ops_and_message_tokens(org: NewOrganization, inbox: dict[str, Any]) -> None:
    other = new_mailbox(org, "other")
    reader = ops_token(org, "mailboxes:read")
    assert get(FUNCTION, reader, f"{BASE}/{inbox['id']}/").status == 200
    for path in ("logs/", "archives/"):
        denied = get(FUNCTION, reader, f"{BASE}/{inbox['id']}/{path}")
        assert denied.status == 403 and denied.error_code == "insufficient_scope"
    assert post_testmail(org, inbox, token=reader).status == 403
    automation = ops_token(org, "automation:read", "automation:write")
    assert get(FUNCTION, automation, f"{BASE}/{inbox['id']}/logs/").status == 200
    assert post_testmail(org, inbox, token=automation).status == 201
    assert get(FUNCTION, automation, f"{BASE}/{inbox['id']}/").status == 403

    own = message_token(org, inbox["id"], ["messages:read"])
    assert ok(get(FUNCTION, own, f"{BASE}/{inbox['id']}/"))["id"] == inbox["id"]
    assert ok(get(FUNCTION, own, f"{BASE}/{inbox['address']}/"))["id"] == inbox["id"]
    assert get(FUNCTION, own, f"{BASE}/{other['address']}/").status == 404
    assert len(ok(get(FUNCTION, own, f"{BASE}/{inbox['id']}/logs/"))) == 1
    assert ok(get(FUNCTION, own, f"{BASE}/{inbox['id']}/archives/"))[0]["subject"] == "Test message"
    for path in ("", "logs/", "archives/"):  # another mailbox: as if it did not exist
        assert get(FUNCTION, own, f"{BASE}/{other['id']}/{path}").status == 404
    assert post_testmail(org, inbox, token=own).status == 403  # messages:write is needed
    writer = message_token(org, inbox["id"], ["messages:write"])
    assert post_testmail(org, inbox, token=writer).status == 201
    assert post_testmail(org, other, token=writer).status == 404
    assert get(FUNCTION, own, f"{BASE}/").status == 403  # listing is the organization's
    assert patch(FUNCTION, own, f"{BASE}/{inbox['id']}/", {"name": "x"}).status == 403


def test_a_body_that_is_not_json_is_a_validation_error(org: NewOrganization, inbox: dict[str, Any]) -> None:
    for body in (b"\xff\xfe", b"{not json"):
        status, answer = raw_post(f"{BASE}/{inbox['id']}/testmail", org.admin_token, body)
        assert status == 422 and answer["error"]["code"] == "validation_error", answer
