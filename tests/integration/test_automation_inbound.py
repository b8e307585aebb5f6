"""The automation model in the inbound pipeline (docs/automation-inbound.md), through the inbound
function's real entry point on SES receipt events: route sets of a mailbox and of its domain (written
as the automation API writes them: tests/support/route_sets.py), inline actions in the message's
transaction, async actions pending in the log entry, route hits, mailbox data read by conditions
and written by ``store_data``, and the DynamoDB requests a message costs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mailroom.services import inbound_automation
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store import mail as store
from mailroom.store import rules as rule_store
from mailroom.store.table import Item, Table
from tests.support import inbound as sim
from tests.support import route_sets as auto
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox, ok, post, put
from tests.support.sending import message_token


@pytest.fixture
def bucket(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    get_settings.cache_clear()
    inbound_automation.clear_caches()
    yield name
    get_settings.cache_clear()


@pytest.fixture
def domain(org: NewOrganization, bucket: str) -> dict[str, Any]:
    return add_domain(org, "example.com")


@pytest.fixture
def inbox(org: NewOrganization, domain: dict[str, Any]) -> dict[str, Any]:
    return new_mailbox(org, "inbox")


@pytest.fixture
def org_id(org: NewOrganization) -> str:
    return str(org.organization["id"])


_minutes = iter(range(1, 100_000))


def receive(bucket: str, subject: str, address: str = "inbox@example.com", **options: Any) -> dict[str, Any]:
    """One message, as SES would deliver it, a minute after the previous one."""
    raw = sim.message(
        subject,
        sender=options.pop("sender", "Ann Example <ann@example.net>"),
        to=address,
        message_id=f"<{subject.replace(' ', '.')}.{next(_minutes)}@example.net>",
        body=options.pop("body", "hello there"),
    )
    _, report = sim.receive(
        bucket, raw, [address], at=sim.WHEN + timedelta(minutes=next(_minutes)), **options
    )
    return report


def messages(table: Table, org_id: str, mailbox: dict[str, Any], folder: str | None = None) -> list[Item]:
    return store.list_messages(
        table, org_id, mailbox["id"], per_page=100, cursor=None, folder_key=folder
    ).items


def message(table: Table, org_id: str, mailbox: dict[str, Any], subject: str) -> Item:
    (found,) = [m for m in messages(table, org_id, mailbox) if m["subject"] == subject]
    return found


def log_of(table: Table, org_id: str, mailbox: dict[str, Any], subject: str) -> Item:
    page = rule_store.log_page(table, org_id, mailbox["id"], per_page=100, cursor=None)
    (entry,) = [e for e in page.items if e["subject"] == subject]
    return entry


def hits(table: Table, org_id: str, mailbox: dict[str, Any]) -> list[Item]:
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox["id"]), sk_prefix="ROUTEHIT#", per_page=100
    ).items


def document(table: Table, org_id: str, mailbox: dict[str, Any], key: str) -> Any:
    item = table.get(keys.mailbox_pk(org_id, mailbox["id"]), keys.mailbox_data_sk(key))
    return None if item is None else json.loads(item["value"])


def put_document(org: NewOrganization, mailbox: dict[str, Any], key: str, value: Any) -> Any:
    return ok(
        put("mailbox_data", org.admin_token, f"/api/v1/mailbox/{mailbox['id']}/data/{key}/", {"value": value})
    )


# --- routes, inline and async actions ---------------------------------------------------------------


def test_a_matching_route_labels_and_leaves_its_webhook_pending(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any]
) -> None:
    label = auto.action("label", labels=["orders"])
    hook = auto.action("webhook", url="https://hooks.example.net/in")
    orders = auto.route(
        label, hook, rule=auto.rule({"field": "subject", "op": "contains", "value": "order"}), name="Orders"
    )
    other = auto.route(
        auto.action("label", labels=["never"]),
        rule=auto.rule({"field": "subject", "op": "is", "value": "x"}),
        position=1,
    )
    auto.put_route_set(table, org_id, [orders, other], mailbox_id=inbox["id"])

    report = receive(bucket, "Your order 1234")

    assert report["stored"] == 1
    stored = message(table, org_id, inbox, "Your order 1234")
    assert stored["labels"] == ["orders"] and stored["folder_key"] == "inbox"
    entry = log_of(table, org_id, inbox, "Your order 1234")
    assert entry["message_id"] == stored["id"] and entry["outcome"] == "delivered"
    assert entry["automation"]["routes"] == [
        {"id": orders["id"], "name": "Orders", "matched": True},
        {"id": other["id"], "name": other["name"], "matched": False},
    ]
    assert entry["automation"]["actions"] == [
        {
            "route_id": orders["id"],
            "action_id": label["id"],
            "action_type": "label",
            "mode": "inline",
            "status": "done",
        },
        {
            "route_id": orders["id"],
            "action_id": hook["id"],
            "action_type": "webhook",
            "mode": "async",
            "status": "pending",
        },
    ]
    assert entry["automation_pending"] == 1
    # The log entry's id is the stored message's ulid; one route hit per matched route.
    assert entry["SK"] == keys.rule_log_sk(stored["id"].removeprefix("msg_"))
    assert [(h["route_id"], h["message_ulid"]) for h in hits(table, org_id, inbox)] == [
        (orders["id"], stored["id"].removeprefix("msg_"))
    ]


def test_every_message_of_a_mailbox_with_routes_is_logged_even_unmatched(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    never = auto.route(
        auto.action("webhook", url="https://hooks.example.net/in"),
        rule=auto.rule({"field": "subject", "op": "is", "value": "nope"}),
    )
    auto.put_route_set(table, org_id, [never], mailbox_id=inbox["id"])
    bare = new_mailbox(org, "bare")

    receive(bucket, "plain")
    receive(bucket, "plain too", address="bare@example.com")

    entry = log_of(table, org_id, inbox, "plain")
    assert entry["automation"] == {
        "routes": [{"id": never["id"], "name": never["name"], "matched": False}],
        "actions": [],
    }
    assert entry["automation_pending"] == 0 and entry["outcome"] == "delivered"
    assert hits(table, org_id, inbox) == []
    # A mailbox without routes (nor rules) keeps no log, as before.
    assert rule_store.log_page(table, org_id, bare["id"], per_page=10, cursor=None).items == []


def test_domain_and_mailbox_routes_run_in_position_order_until_a_stop(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], domain: dict[str, Any]
) -> None:
    first = auto.route(auto.action("label", labels=["domain-first"]), position=0, route_id="rte_b")
    tie = auto.route(auto.action("label", labels=["mailbox-tie"]), position=0, route_id="rte_a")
    stopper = auto.route(auto.action("label", labels=["stopper"]), position=1, stop=True)
    after = auto.route(auto.action("label", labels=["after-stop"]), position=2)
    auto.put_route_set(table, org_id, [first, after], domain_id=domain["id"])
    auto.put_route_set(table, org_id, [tie, stopper], mailbox_id=inbox["id"])

    receive(bucket, "ordered")

    assert message(table, org_id, inbox, "ordered")["labels"] == ["mailbox-tie", "domain-first", "stopper"]
    entry = log_of(table, org_id, inbox, "ordered")
    assert [r["id"] for r in entry["automation"]["routes"]] == ["rte_a", "rte_b", stopper["id"]]


def test_move_delete_and_a_folder_the_mailbox_lacks(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    token = message_token(org, inbox["id"])
    ok(post("messages", token, "/api/v1/messages/folders", {"path": "Orders"}), 201)
    move = auto.route(
        auto.action("move", folder="Orders"),
        rule=auto.rule({"field": "subject", "op": "starts_with", "value": "order"}),
    )
    missing = auto.route(
        auto.action("move", folder="Nowhere"),
        rule=auto.rule({"field": "subject", "op": "is", "value": "lost"}),
    )
    trash = auto.route(
        auto.action("delete"), rule=auto.rule({"field": "subject", "op": "is", "value": "junk"})
    )
    auto.put_route_set(table, org_id, [move, missing, trash], mailbox_id=inbox["id"])

    receive(bucket, "order 7")
    receive(bucket, "lost")
    receive(bucket, "junk")
    receive(bucket, "order 8", verdicts={"spam": "FAIL"})

    assert message(table, org_id, inbox, "order 7")["folder_key"].startswith("f")
    assert log_of(table, org_id, inbox, "order 7")["folder"] == "Orders"
    assert message(table, org_id, inbox, "lost")["folder_key"] == "inbox"
    (failed,) = log_of(table, org_id, inbox, "lost")["automation"]["actions"]
    assert failed["status"] == "failed" and failed["error"] == "unknown_folder"
    junk = message(table, org_id, inbox, "junk")
    assert junk["folder_key"] == "trash" and junk["flags"]["seen"] is True
    assert log_of(table, org_id, inbox, "junk")["outcome"] == "discarded"
    # Spam stays in Spam, as for the mailbox's rules.
    assert message(table, org_id, inbox, "order 8")["folder_key"] == "spam"
    (skipped,) = log_of(table, org_id, inbox, "order 8")["automation"]["actions"]
    assert (skipped["status"], skipped["error"]) == ("skipped", "spam")


def test_a_rule_that_rejects_runs_no_route_action(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    reject = {
        "name": "no",
        "conditions": [{"field": "subject", "op": "is", "value": "go away"}],
        "actions": [{"type": "reject"}],
    }
    ok(post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{inbox['id']}/rules", reject), 201)
    hook = auto.action("webhook", url="https://hooks.example.net/in")
    auto.put_route_set(table, org_id, [auto.route(hook)], mailbox_id=inbox["id"])

    report = receive(bucket, "go away")

    assert report["stored"] == 0
    entry = log_of(table, org_id, inbox, "go away")
    assert entry["outcome"] == "rejected" and entry["automation_pending"] == 0
    assert [(a["status"], a["error"]) for a in entry["automation"]["actions"]] == [("skipped", "rejected")]
    assert hits(table, org_id, inbox) == []


def test_a_redelivered_event_writes_nothing_twice(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any]
) -> None:
    store_data = auto.action("store_data", key="seen", source="subject", pattern=r"(?P<n>\d+)", mode="append")
    auto.put_route_set(
        table,
        org_id,
        [auto.route(store_data, auto.action("webhook", url="https://h.example.net/"))],
        mailbox_id=inbox["id"],
    )
    raw = sim.message("ticket 9", message_id="<t9@example.net>")
    ses_id, _ = sim.receive(bucket, raw, ["inbox@example.com"])

    result = sim.invoke(sim.ses_event(ses_id, ["inbox@example.com"]))

    assert result["messages"][0]["already_done"] == 1
    assert document(table, org_id, inbox, "seen") == [{"n": "9"}]
    assert len(hits(table, org_id, inbox)) == 1


# --- mailbox data: conditions and store_data ---------------------------------------------------------


def test_data_conditions_read_the_mailbox_documents(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    put_document(org, inbox, "vip", ["Boss@Example.NET", "cfo@example.net"])
    put_document(org, inbox, "mode", "holiday")
    vip = auto.route(
        auto.action("label", labels=["vip"]), rule=auto.rule({"field": "from", "op": "in_data", "key": "vip"})
    )
    strangers = auto.route(
        auto.action("label", labels=["stranger"]),
        rule=auto.rule({"field": "from", "op": "not_in_data", "key": "vip"}),
    )
    holiday = auto.route(
        auto.action("label", labels=["holiday"]),
        rule=auto.rule(
            {"field": "data", "key": "mode", "op": "is", "value": "HOLIDAY"},
            {"field": "subject", "op": "contains", "value": "urgent"},
        ),
    )
    auto.put_route_set(table, org_id, [vip, strangers, holiday], mailbox_id=inbox["id"])

    receive(bucket, "urgent: budget", sender="The Boss <boss@example.net>")
    receive(bucket, "hello", sender="someone@example.org")
    put_document(org, inbox, "mode", "working")  # the next message sees the new value
    receive(bucket, "urgent again", sender="boss@example.net")

    assert message(table, org_id, inbox, "urgent: budget")["labels"] == ["vip", "holiday"]
    assert message(table, org_id, inbox, "hello")["labels"] == ["stranger"]
    assert message(table, org_id, inbox, "urgent again")["labels"] == ["vip"]


def test_store_data_writes_in_the_message_transaction_and_reads_back_through_the_api(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    merge = auto.action(
        "store_data", key="last_order", source="subject", pattern=r"order (?P<number>\d+) for (?P<who>\w+)"
    )
    append = auto.action(
        "store_data", key="orders", source="subject", pattern=r"order (?P<number>\d+)", mode="append"
    )
    header = auto.action(
        "store_data",
        key="ticket",
        source="header",
        header="X-Ticket",
        pattern=r"^(?P<ticket>T-\d+)$",
        mode="set",
    )
    auto.put_route_set(table, org_id, [auto.route(merge, append, header)], mailbox_id=inbox["id"])

    receive(bucket, "order 12 for ann")
    receive(bucket, "order 13 for bob")
    receive(bucket, "no number here")

    assert document(table, org_id, inbox, "last_order") == {"number": "13", "who": "bob"}
    assert document(table, org_id, inbox, "orders") == [{"number": "12"}, {"number": "13"}]
    assert document(table, org_id, inbox, "ticket") is None
    entry = log_of(table, org_id, inbox, "no number here")
    assert [(a["status"], a.get("error")) for a in entry["automation"]["actions"]] == [
        ("skipped", "no_match")
    ] * 3
    done = log_of(table, org_id, inbox, "order 12 for ann")["automation"]["actions"][0]
    assert done["status"] == "done" and done["detail"] == {"key": "last_order", "fields": ["number", "who"]}
    reader = message_token(org, inbox["id"], ["messages:read"])
    listed = ok(sim_get(reader, f"/api/v1/mailbox/{inbox['id']}/data/"))
    assert [d["key"] for d in listed] == ["last_order", "orders"]
    read = ok(sim_get(reader, f"/api/v1/mailbox/{inbox['id']}/data/orders/"))
    assert read["value"] == [{"number": "12"}, {"number": "13"}] and read["version"] == 2


def sim_get(token: str, path: str) -> Any:
    from tests.support.mailboxes import get

    return get("mailbox_data", token, path)


def test_store_data_over_a_limit_fails_in_the_log_and_keeps_the_message(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    put_document(org, inbox, "kept", {"a": 1})
    full = ["x" * (400_000 - 10)]  # 399,994 bytes as stored: no room for {"word": ...}
    put_document(org, inbox, "full", full)
    # The mailbox is at its key limit: a new key is refused in the message's transaction.
    table.update(
        keys.mailbox_pk(org_id, inbox["id"]),
        keys.MAILBOX_DATA_META_SK,
        "SET #k = :max",
        names={"#k": "keys"},
        expression_values={":max": {"N": "1000"}},
    )
    new_key = auto.action("store_data", key="brand_new", source="subject", pattern=r"(?P<word>\w+)")
    existing = auto.action("store_data", key="kept", source="subject", pattern=r"(?P<word>\w+)")
    too_big = auto.action("store_data", key="full", source="subject", pattern=r"(?P<word>\w+)", mode="append")
    auto.put_route_set(table, org_id, [auto.route(new_key, existing, too_big)], mailbox_id=inbox["id"])

    report = receive(bucket, "hello")

    assert report["stored"] == 1
    actions = log_of(table, org_id, inbox, "hello")["automation"]["actions"]
    assert [(a["status"], a.get("error")) for a in actions] == [
        ("failed", "data_key_limit_reached"),
        ("done", None),
        ("failed", "document_too_large"),  # nothing is dropped to make room
    ]
    assert document(table, org_id, inbox, "brand_new") is None
    assert document(table, org_id, inbox, "full") == full
    assert document(table, org_id, inbox, "kept") == {"a": 1, "word": "hello"}


def test_store_data_reads_again_when_another_writer_came_first(
    table: Table, org_id: str, bucket: str, inbox: dict[str, Any], org: NewOrganization
) -> None:
    put_document(org, inbox, "counter", {"first": "x"})
    store_data = auto.action("store_data", key="counter", source="subject", pattern=r"(?P<word>\w+)")
    auto.put_route_set(table, org_id, [auto.route(store_data)], mailbox_id=inbox["id"])
    raced: list[bool] = []

    def race(**kwargs: Any) -> None:
        # Between inbound's read and its transaction, the API changes the document once.
        if not raced:
            raced.append(True)
            put_document(org, inbox, "counter", {"first": "y", "api": "yes"})

    events = aws.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.TransactWriteItems", race)
    try:
        receive(bucket, "hello")
    finally:
        events.unregister("before-parameter-build.dynamodb.TransactWriteItems", race)

    assert raced and document(table, org_id, inbox, "counter") == {
        "first": "y",
        "api": "yes",
        "word": "hello",
    }
    assert message(table, org_id, inbox, "hello")["folder_key"] == "inbox"


# --- requests per message -------------------------------------------------------------------------


@pytest.fixture
def aws_calls(bucket: str) -> Iterator[Counter[str]]:
    """The AWS requests the function makes (DynamoDB and S3), by operation name."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **kwargs: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    for service in ("dynamodb", "s3"):
        aws.client(service).meta.events.register(f"before-call.{service}.*", count)
    yield calls
    for service in ("dynamodb", "s3"):
        aws.client(service).meta.events.unregister(f"before-call.{service}.*", count)


def test_routes_and_data_cost_no_extra_request_per_message(
    table: Table,
    org_id: str,
    bucket: str,
    inbox: dict[str, Any],
    org: NewOrganization,
    aws_calls: Counter[str],
) -> None:
    receive(bucket, "warm up")
    aws_calls.clear()
    receive(bucket, "no routes")
    without_routes = dict(aws_calls)
    # S3: the object SES stored (PutObject: this test playing SES), read, then copied to the mailbox.
    assert without_routes == {
        "BatchGetItem": 1,
        "TransactWriteItems": 2,
        "PutObject": 1,
        "GetObject": 1,
        "CopyObject": 1,
    }

    put_document(org, inbox, "vip", ["ann@example.net"])
    rules = auto.rule({"field": "from", "op": "in_data", "key": "vip"})
    routes = [
        auto.route(
            auto.action("label", labels=["vip"]),
            auto.action("webhook", url="https://h.example.net/"),
            rule=rules,
        ),
        auto.route(
            auto.action("store_data", key="subjects", source="subject", pattern=r"(?P<s>.+)", mode="append")
        ),
    ]
    auto.put_route_set(table, org_id, routes, mailbox_id=inbox["id"], built_version=2)
    aws_calls.clear()
    receive(bucket, "first with routes")
    # A set this function has not compiled yet: what it reads besides is read once, in one request.
    assert dict(aws_calls) == {**without_routes, "BatchGetItem": 2}
    aws_calls.clear()

    receive(bucket, "second with routes")

    assert dict(aws_calls) == without_routes
    assert message(table, org_id, inbox, "second with routes")["labels"] == ["vip"]
    assert document(table, org_id, inbox, "subjects") == [
        {"s": "first with routes"},
        {"s": "second with routes"},
    ]


# --- the automation API's own route sets ---------------------------------------------------------------


def test_routes_built_through_the_automation_api_run_on_inbound_mail(
    table: Table, org: NewOrganization, org_id: str, bucket: str, inbox: dict[str, Any]
) -> None:
    """The route-set builder (services/automation_changes.py) and the inbound stage agree on the
    format: data conditions (an ``in_data`` has a key and no value), store_data and a webhook."""
    token = org.admin_token
    put_document(org, inbox, "vips", ["ann@example.net"])
    label = ok(
        post(
            "automation",
            token,
            "/api/v1/actions/",
            {
                "name": "vip",
                "action_type": "label",
                "parameters": {"labels": ["vip"]},
            },
        ),
        201,
    )
    keep = ok(
        post(
            "automation",
            token,
            "/api/v1/actions/",
            {
                "name": "orders",
                "action_type": "store_data",
                "parameters": {"key": "orders", "source": "subject", "pattern": r"order (?P<number>\d+)"},
            },
        ),
        201,
    )
    hook = ok(
        post(
            "automation",
            token,
            "/api/v1/actions/",
            {
                "name": "notify",
                "action_type": "forward",
                "parameters": {"to": ["desk@partner.example.org"]},
            },
        ),
        201,
    )
    rule = ok(
        post(
            "automation",
            token,
            "/api/v1/rules/",
            {
                "name": "vip orders",
                "match": "all",
                "conditions": [
                    {"field": "from", "op": "in_data", "key": "vips"},
                    {"field": "subject", "op": "contains", "value": "order"},
                ],
            },
        ),
        201,
    )
    route = ok(
        post(
            "automation",
            token,
            "/api/v1/routes/",
            {
                "name": "VIP orders",
                "target": {"domain_id": inbox["domain_id"]},
                "rule_id": rule["id"],
                "action_ids": [label["id"], keep["id"], hook["id"]],
            },
        ),
        201,
    )

    receive(bucket, "Your order 1234")
    receive(bucket, "Your order 99", sender="Bob <bob@example.net>")

    assert message(table, org_id, inbox, "Your order 1234")["labels"] == ["vip"]
    assert message(table, org_id, inbox, "Your order 99").get("labels") in (None, [])
    assert document(table, org_id, inbox, "orders") == {"number": "1234"}
    entry = log_of(table, org_id, inbox, "Your order 1234")
    assert [r["id"] for r in entry["automation"]["routes"] if r["matched"]] == [route["id"]]
    statuses = [(a["action_type"], a["status"]) for a in entry["automation"]["actions"]]
    assert statuses == [("label", "done"), ("store_data", "done"), ("forward", "pending")]
    assert entry["automation_pending"] == 1
    assert not [
        r for r in log_of(table, org_id, inbox, "Your order 99")["automation"]["routes"] if r["matched"]
    ]
