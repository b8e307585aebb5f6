"""Usage metering and billing through the real entry points under moto: mail received through the
inbound function (SES's receipt event), sent through the send function, verifications and API
requests through the API, removals through the messages API; the month closed by the scheduled
function's handler (fired twice); invoices read and downloaded as JSON and CSV; another
organization's ids refused."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom import clock
from mailroom.domain import billing as rules
from mailroom.services import plans
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store.table import Table
from tests.support.inbound import message, receive
from tests.support.lambda_api import LambdaContext, call, function_module
from tests.support.mailboxes import add_domain, create_mail_infrastructure, delete, get, new_mailbox, ok, post
from tests.support.sending import message_token, send


@dataclass
class World:
    org: NewOrganization
    table: Table
    bucket: str
    alice: dict[str, Any]
    alice_token: str

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])


@pytest.fixture
def world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    get_settings.cache_clear()
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice", name="Alice Example")
    yield World(org, table, bucket, alice, message_token(org, alice["id"]))
    get_settings.cache_clear()


def status(org: NewOrganization) -> dict[str, Any]:
    found: dict[str, Any] = ok(get("billing", org.admin_token, "/api/v1/billing/status"))
    return found


def close(at: datetime) -> dict[str, int]:
    """The schedule's event as EventBridge Scheduler sends it (the template's Input, filled in)."""
    event = {"time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    counts: dict[str, int] = function_module("billing_close").handler(event, LambdaContext("billing_close"))
    return counts


def first_of_next_month() -> datetime:
    return rules.month_start(rules.next_month(rules.month_of(clock.utcnow()))).replace(minute=15)


def test_usage_counters_equal_what_was_done(world: World) -> None:
    before = status(world.org)
    assert before["usage"]["messages_received"] == 0 and before["usage"]["stored_bytes_end"] == 0
    first = message("One", to="alice@example.com", message_id="<one@example.net>")
    second = message("Two", to="alice@example.com", message_id="<two@example.net>", body="x" * 5000)
    for raw in (first, second):
        receive(world.bucket, raw, ["alice@example.com"])
    sent = send(
        world.alice_token,
        {"to": ["bob@example.net", "carol@example.org"], "subject": "Hi", "text": "Hello both."},
    )
    assert sent.status == 201, sent.body
    verified = post("verify", world.org.admin_token, "/api/v1/verify", {"email": "not an address"})
    assert verified.status == 200, verified.body

    after = status(world.org)
    usage = after["usage"]
    assert (usage["messages_received"], usage["messages_sent"], usage["sent_recipients"]) == (2, 1, 2)
    assert (usage["verifications"], usage["messages_imported"]) == (1, 0)
    org_item = world.table.get(keys.org_pk(world.org_id), keys.ORG_SK)
    assert org_item is not None
    held = int(org_item["storage_used_bytes"])
    # Stored bytes are the copies' (SES's trace headers, the Sent copy with its Message-ID).
    assert usage["stored_bytes_end"] == usage["stored_bytes_added"] == held > len(first) + len(second)
    assert usage["stored_bytes_peak"] == held
    # Every authenticated request since the first status, that one excluded and this one included:
    # the send, the verification and this status call.
    assert usage["api_requests"] - before["usage"]["api_requests"] == 3

    listed = ok(get("messages", world.alice_token, "/api/v1/messages", folder="inbox"))
    assert len(listed) == 2
    removed = next(m for m in listed if m["subject"] == "Two")
    assert delete("messages", world.alice_token, f"/api/v1/messages/{removed['id']}").status in (200, 204)
    assert status(world.org)["usage"]["stored_bytes_removed"] == 0  # in Trash: still stored
    emptied = ok(post("messages", world.alice_token, "/api/v1/messages/folders:empty", {"folder": "trash"}))
    assert emptied["removed"] == 1
    later = status(world.org)["usage"]
    assert later["stored_bytes_removed"] == removed["size"]
    assert later["stored_bytes_end"] == held - removed["size"]
    assert later["stored_bytes_peak"] == held  # the month's high, not where it ended

    limits = {row["name"]: row for row in after["limits"]}
    assert (limits["mailboxes"]["used"], limits["mailboxes"]["limit"]) == (1, 50)
    assert (limits["verify_credits"]["used"], limits["verify_credits"]["limit"]) == (1, 1000)
    assert limits["storage"]["used"] == held and limits["storage"]["unit"] == "bytes"
    assert after["plan"] == {"name": "pro", "price": "99.00", "currency": "USD"}
    cost = after["aws_cost"]
    assert cost["region"] == "us-east-1" and set(cost["by_service"]) >= {"lambda", "dynamodb", "s3", "ses"}
    assert float(cost["by_service"]["ses"]) > 0 and float(cost["total"]) > float(before["aws_cost"]["total"])


def test_extra_aws_requests_per_unit_of_work(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Metering rides on the writes that do the work: receiving a message makes exactly as many
    DynamoDB requests as before metering (its usage ADD is one more operation of the storing
    transaction), and an API request none at all once flushes are spaced out."""
    from mailroom.store.table import Table as TableClass

    made: list[str] = []
    original = TableClass.transact

    def counting(self: TableClass, operations: Any) -> None:
        made.append(",".join(sorted({next(iter(op)) for op in operations})))
        original(self, operations)
        usage_ops = [op for op in operations if "Update" in op and "USAGE#" in str(op["Update"]["Key"])]
        made.append(f"usage ops: {len(usage_ops)}")

    monkeypatch.setattr(TableClass, "transact", counting)
    receive(world.bucket, message("Counted", to="alice@example.com"), ["alice@example.com"])
    assert made.count("usage ops: 1") == 1  # inside the one storing transaction

    monkeypatch.setenv("MAILROOM_USAGE_FLUSH_SECONDS", "3600")
    get_settings.cache_clear()
    from mailroom.services import request_meter

    request_meter.flush(world.table)
    writes: list[str] = []
    original_update = TableClass.update

    def recording(self: TableClass, pk: str, sk: str, *args: Any, **kwargs: Any) -> Any:
        writes.append(sk)
        return original_update(self, pk, sk, *args, **kwargs)

    monkeypatch.setattr(TableClass, "update", recording)
    for _ in range(3):
        ok(get("domains", world.org.admin_token, "/api/v1/domains"))
    assert not [sk for sk in writes if sk.startswith(keys.USAGE_PREFIX)]
    assert request_meter._meter.pending()[(world.org_id, rules.month_of(clock.utcnow()))] == 3
    assert request_meter.flush(world.table) == 1  # one write for the three


def test_verifier_credits_are_a_plan_limit(world: World, table: Table) -> None:
    plans.create_plan(
        table,
        "tiny",
        description="Two verifications",
        scopes=["*"],
        limits={**plans.get_plan(table, "pro").limits, "verify_credits": 2},
        price_cents=500,
    )
    plans.set_plan(table, world.org_id, "tiny")
    for address in ("a", "b"):
        assert post("verify", world.org.admin_token, "/api/v1/verify", {"email": address}).status == 200
    refused = post("verify", world.org.admin_token, "/api/v1/verify", {"email": "c"})
    assert (refused.status, refused.error_code) == (402, "insufficient_credits")
    credits = ok(get("verify", world.org.admin_token, "/api/v1/verify/credits"))
    assert (credits["allowance"], credits["used"]) == (2, 2)
    now = status(world.org)
    row = next(r for r in now["limits"] if r["name"] == "verify_credits")
    assert (row["used"], row["limit"], row["remaining"]) == (2, 2, 0)
    assert now["plan"] == {"name": "tiny", "price": "5.00", "currency": "USD"}


def test_a_month_closes_once_on_the_schedule(world: World, other_org: NewOrganization) -> None:
    receive(world.bucket, message("Invoiced", to="alice@example.com"), ["alice@example.com"])
    running = status(world.org)["usage"]
    month = rules.month_of(clock.utcnow())

    first = close(first_of_next_month())
    assert first == {"closed": 2, "already_closed": 0, "not_yet_existing": 0, "errors": 0}
    again = close(first_of_next_month())  # the schedule fired twice (a retry)
    assert again == {"closed": 0, "already_closed": 2, "not_yet_existing": 0, "errors": 0}
    # A run for the month before: neither organization existed yet.
    assert close(rules.month_start(month))["not_yet_existing"] == 2

    (invoice,) = ok(get("billing", world.org.admin_token, "/api/v1/billing/invoices"))
    assert invoice["period"] == month and invoice["id"] == rules.invoice_id(world.org_id, month)
    assert (invoice["plan"], invoice["plan_price"], invoice["amount_due"]) == ("pro", "99.00", "99.00")
    # The statement holds what the month counted (the API requests up to the close).
    assert {k: v for k, v in invoice["usage"].items() if k != "api_requests"} == {
        k: v for k, v in running.items() if k != "api_requests"
    }
    assert invoice["usage"]["messages_received"] == 1
    assert invoice["usage"]["api_requests"] >= running["api_requests"]
    one = ok(get("billing", world.org.admin_token, f"/api/v1/billing/invoices/{invoice['id']}"))
    assert one == invoice


def test_invoices_download_as_json_and_csv(world: World) -> None:
    receive(world.bucket, message("Counted", to="alice@example.com"), ["alice@example.com"])
    close(first_of_next_month())
    (invoice,) = ok(get("billing", world.org.admin_token, "/api/v1/billing/invoices"))
    path = f"/api/v1/billing/invoices/{invoice['id']}"

    as_csv = get("billing", world.org.admin_token, path, format="csv")
    assert as_csv.status == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"] == f'attachment; filename="{invoice["id"]}.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.body.decode())))
    by_item = {(r["section"], r["item"]): r for r in rows}
    assert by_item[("invoice", "period")]["quantity"] == invoice["period"]
    assert by_item[("usage", "messages_received")]["quantity"] == "1"
    assert by_item[("charge", "plan")]["amount_usd"] == "99.00"
    assert by_item[("total", "amount_due")]["amount_usd"] == invoice["amount_due"]
    services = [r for r in rows if r["section"] == "aws_cost_estimate" and r["item"] != "total"]
    assert {r["item"]: r["amount_usd"] for r in services} == invoice["aws_cost"]["by_service"]

    accepted = call("billing", "GET", path, token=world.org.admin_token, headers={"Accept": "text/csv"})
    assert accepted.status == 200 and accepted.body == as_csv.body

    as_json = get("billing", world.org.admin_token, path, format="json")
    assert as_json.headers["content-disposition"] == f'attachment; filename="{invoice["id"]}.json"'
    assert as_json.json()["data"] == invoice
    plain = get("billing", world.org.admin_token, path)
    assert "content-disposition" not in plain.headers and plain.json()["data"] == invoice

    wrong = get("billing", world.org.admin_token, path, format="pdf")
    assert (wrong.status, wrong.error_code) == (422, "validation_error")


def test_another_organizations_invoices_and_usage_are_out_of_reach(
    world: World, other_org: NewOrganization
) -> None:
    receive(world.bucket, message("Private", to="alice@example.com"), ["alice@example.com"])
    close(first_of_next_month())
    (theirs,) = ok(get("billing", world.org.admin_token, "/api/v1/billing/invoices"))
    (mine,) = ok(get("billing", other_org.admin_token, "/api/v1/billing/invoices"))
    assert mine["id"] != theirs["id"] and mine["usage"]["messages_received"] == 0

    for path in (
        f"/api/v1/billing/invoices/{theirs['id']}",
        "/api/v1/billing/invoices/invc_209901_0123456789abcdef",
    ):
        refused = get("billing", other_org.admin_token, path)
        assert (refused.status, refused.error_code) == (404, "not_found")
    assert get("billing", other_org.admin_token, "/api/v1/billing/invoices/inv_01J0000000").status == 404
    assert status(other_org)["usage"]["messages_received"] == 0

    reader = ok(
        post("tokens", world.org.admin_token, "/api/v1/tokens", {"name": "r", "scopes": ["account:read"]}),
        201,
    )
    blocked = get("billing", reader["token"], "/api/v1/billing/status")
    assert (blocked.status, blocked.error_code) == (403, "insufficient_scope")


def test_closing_a_month_later_subtracts_what_the_next_month_did(world: World, table: Table) -> None:
    """The storage at a month's end, read in the next month: now, less what the next month added."""
    from mailroom.services import billing

    receive(world.bucket, message("Stored", to="alice@example.com"), ["alice@example.com"])
    held = status(world.org)["usage"]["stored_bytes_end"]
    month = rules.month_of(clock.utcnow())
    previous = rules.previous_month(month)
    # The previous month's counters as if it had stored 100 bytes and removed 40 before this one.
    from mailroom.store import usage

    usage.add(table, world.org_id, previous, stored_bytes_added=100, stored_bytes_removed=40)
    org, metered, _ = billing._month_usage(table, world.org_id, previous)
    assert org["id"] == world.org_id
    assert metered.stored_bytes_end == 0  # everything held now was stored this month
    assert (metered.stored_bytes_added, metered.stored_bytes_removed) == (100, 40)
    assert held > 0 and datetime.now(UTC) > rules.month_start(month)


def test_the_operator_closes_by_hand(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """``mailroom admin close-month``: a final statement of the running month for one organization
    (the schedule then finds it closed), and the refusals of a month that has not ended."""
    import json

    from mailroom.cli import main

    def admin(*argv: str) -> tuple[int, str, str]:
        code = main(["admin", "close-month", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    month = rules.month_of(clock.utcnow())
    code, out, err = admin("--org", world.org_id, "--final", "--json")
    assert code == 0, err
    assert json.loads(out) == {"month": month, "closed": 1, "already_closed": 0}
    code, out, _ = admin("--org", world.org_id, "--final", "--json")
    assert json.loads(out)["already_closed"] == 1
    assert close(first_of_next_month())["already_closed"] == 1

    code, _, err = admin("--month", month)
    assert code == 2 and "has not ended" in err
    code, _, err = admin("--final")
    assert code == 2 and "--org" in err
    code, _, err = admin("--month", "2026-13")
    assert code == 2 and "YYYY-MM" in err
    code, _, err = admin("--org", "org_missing", "--final")
    assert code == 2 and "no organization" in err
    (invoice,) = ok(get("billing", world.org.admin_token, "/api/v1/billing/invoices"))
    assert invoice["period"] == month


def test_an_external_forward_is_metered_with_its_record(world: World) -> None:
    from tests.support.mailboxes import put

    path = f"/api/v1/mailboxes/{world.alice['id']}/forwarding"
    body = {"targets": ["dave@example.net", "erin@example.org"], "keep_copy": True}
    ok(put("mailboxes", world.org.admin_token, path, body))
    receive(world.bucket, message("Passed on", to="alice@example.com"), ["alice@example.com"])
    usage = status(world.org)["usage"]
    assert (usage["messages_received"], usage["messages_forwarded"], usage["sent_recipients"]) == (1, 1, 2)
