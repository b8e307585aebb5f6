"""Deleting mailboxes: delete intents (expiry, single use, daily limit, cooldown), the immediate
effects of a confirmation, and the asynchronous purge of the mailbox's mail through SQS."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mailroom import clock
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, delete_intents, domains, keys, organizations
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, function_module, load_event
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    create_mail_infrastructure,
    create_mailbox,
    get,
    new_mailbox,
    ok,
    pool,
    post,
    public,
)


@pytest.fixture
def infra(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv("MAILROOM_DELETE_COOLDOWN_SECONDS", "0")
    bucket, queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_PURGE_QUEUE_URL", queue)
    get_settings.cache_clear()
    yield bucket, queue
    get_settings.cache_clear()


@pytest.fixture
def domain(org: NewOrganization, infra: tuple[str, str]) -> dict[str, Any]:
    return add_domain(org, "example.com", quota=50000, maxquota=10000)


def settings_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def intent(org: NewOrganization, mailbox_id: str, token: str | None = None) -> Any:
    return post("mailboxes", token or org.admin_token, f"/api/v1/mailboxes/{mailbox_id}:delete-intent")


def confirm(org: NewOrganization, intent_id: str, token: str | None = None) -> Any:
    return post("delete_intents", token or org.admin_token, f"/api/v1/delete-intents/{intent_id}:confirm")


def delete_mailbox(org: NewOrganization, mailbox_id: str, token: str | None = None) -> dict[str, Any]:
    created = ok(intent(org, mailbox_id, token), 201)
    return ok(confirm(org, created["id"], token))  # type: ignore[no-any-return]


def queued(queue: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message on the purge queue, as Lambda's SQS event records."""
    sqs = aws.client("sqs")
    records: list[dict[str, Any]] = []
    template = load_event("sqs_receive.json")["Records"][0]
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return records
        for message in messages:
            record = copy.deepcopy(template)
            record.update(
                messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"]
            )
            records.append(record)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def run_purge(records: list[dict[str, Any]], context: Any = None) -> dict[str, Any]:
    return function_module("mailbox_purge").handler(  # type: ignore[no-any-return]
        {"Records": records}, context or LambdaContext(function_name="purge")
    )


def shift_clock(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real() + delta)


def seed_mail(table: Table, bucket: str, org_id: str, mailbox_id: str, *, items: int, objects: int) -> None:
    """Stand-in for what the mail-flow issue stores: partition items and objects under the prefix."""
    client = table.client
    pk = keys.mailbox_pk(org_id, mailbox_id)
    for start in range(0, items, 25):
        batch = [
            {"PutRequest": {"Item": {"PK": {"S": pk}, "SK": {"S": f"MSG#{i:05d}"}, "size": {"N": "10"}}}}
            for i in range(start, min(start + 25, items))
        ]
        client.batch_write_item(RequestItems={table.name: batch})
    s3 = aws.client("s3")
    for i in range(objects):
        s3.put_object(
            Bucket=bucket, Key=f"{keys.mailbox_s3_prefix(org_id, mailbox_id)}raw/{i}.eml", Body=b"x"
        )


def partition_size(table: Table, org_id: str, mailbox_id: str) -> int:
    response = table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.mailbox_pk(org_id, mailbox_id)}},
        Select="COUNT",
    )
    return int(response["Count"])


def object_count(bucket: str, org_id: str, mailbox_id: str) -> int:
    listed = aws.client("s3").list_objects_v2(
        Bucket=bucket, Prefix=keys.mailbox_s3_prefix(org_id, mailbox_id)
    )
    return int(listed.get("KeyCount", 0))


# --- confirming ------------------------------------------------------------------------------------


def test_confirm_deletes_the_mailbox_at_once_and_queues_the_purge(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], table: Table
) -> None:
    org_id = org.organization["id"]
    mailbox = new_mailbox(org, "alice", storage_allocation_mb=500)
    keeper = new_mailbox(org, "bob")
    managed = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{mailbox['id']}/message-tokens",
            {"name": "a", "scopes": ["messages:read"]},
        ),
        201,
    )["token"]
    session = ok(
        public(
            "mailbox_auth",
            "/api/v1/auth/mailbox-token",
            {"address": "alice@example.com", "password": PASSWORD},
        ),
        201,
    )["token"]
    assert pool(org)["dedicated_mb"] == 500

    created = ok(intent(org, mailbox["id"]), 201)
    assert created["status"] == "pending" and created["id"].startswith("dli_")
    assert created["mailbox_id"] == mailbox["id"] and created["confirm_path"].endswith(":confirm")
    expires = clock.parse_iso(created["expires_at"]) - clock.parse_iso(created["created_at"])
    assert expires == timedelta(minutes=15)
    assert ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}"))["id"] == mailbox["id"]

    confirmed = ok(confirm(org, created["id"]))
    assert confirmed["status"] == "confirmed" and confirmed["mailbox_deleted"] is True
    assert confirmed["purge"]["status"] == "queued"
    assert get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}").status == 404
    assert get("message_tokens", managed, "/api/v1/messages/_ping").status == 401
    assert get("message_tokens", session, "/api/v1/messages/_ping").status == 401
    assert (
        public(
            "mailbox_auth",
            "/api/v1/auth/mailbox-token",
            {"address": "alice@example.com", "password": PASSWORD},
        ).status
        == 401
    )
    assert pool(org)["dedicated_mb"] == 0
    counted = domains.get(table, org_id, domain["id"])
    assert counted is not None and (counted["mailbox_count"], counted["quota_allocated_mb"]) == (
        1,
        keeper["quota"],
    )
    org_item = organizations.get(table, org_id)
    assert org_item is not None and org_item["mailbox_count"] == 1
    assert [m["id"] for m in get("mailboxes", org.admin_token, "/api/v1/mailboxes").json()["data"]] == [
        keeper["id"]
    ]
    records = queued(infra[1])
    assert [json.loads(r["body"]) for r in records] == [{"org_id": org_id, "mailbox_id": mailbox["id"]}]
    # The address is free again at once.
    assert create_mailbox(org, "alice").status == 201


def test_the_purge_job_deletes_the_partition_and_the_s3_prefix(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], table: Table
) -> None:
    bucket, queue = infra
    org_id = org.organization["id"]
    doomed, kept = new_mailbox(org, "alice"), new_mailbox(org, "bob")
    seed_mail(table, bucket, org_id, doomed["id"], items=620, objects=30)
    seed_mail(table, bucket, org_id, kept["id"], items=5, objects=3)
    confirmed = delete_mailbox(org, doomed["id"])
    records = queued(queue)
    assert len(records) == 1

    assert run_purge(records) == {"batchItemFailures": []}
    assert partition_size(table, org_id, doomed["id"]) == 0
    assert object_count(bucket, org_id, doomed["id"]) == 0
    assert partition_size(table, org_id, kept["id"]) == 5
    assert object_count(bucket, org_id, kept["id"]) == 3
    purge = ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{confirmed['id']}"))["purge"]
    assert purge["status"] == "completed" and purge["completed_at"]
    assert (purge["deleted_items"], purge["deleted_objects"]) == (620, 30)
    # A second delivery of the same job is a harmless no-op.
    assert run_purge(records) == {"batchItemFailures": []}
    assert queued(queue) == []


def test_a_purge_short_of_time_sends_itself_again(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], table: Table
) -> None:
    bucket, queue = infra
    org_id = org.organization["id"]
    doomed = new_mailbox(org, "alice")
    seed_mail(table, bucket, org_id, doomed["id"], items=600, objects=2)
    confirmed = delete_mailbox(org, doomed["id"])
    records = queued(queue)

    class RunningOut:
        """Plenty of time for one page, then the deadline is near."""

        def __init__(self) -> None:
            self.calls = 0

        def get_remaining_time_in_millis(self) -> int:
            self.calls += 1
            return 60_000 if self.calls == 1 else 5_000

    assert run_purge(records, RunningOut()) == {"batchItemFailures": []}
    assert partition_size(table, org_id, doomed["id"]) == 600 - 250
    job = ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{confirmed['id']}"))["purge"]
    assert job["status"] == "running" and job["deleted_items"] == 250
    again = queued(queue)
    assert [json.loads(r["body"]) for r in again] == [{"org_id": org_id, "mailbox_id": doomed["id"]}]
    assert run_purge(again) == {"batchItemFailures": []}
    assert partition_size(table, org_id, doomed["id"]) == 0
    assert object_count(bucket, org_id, doomed["id"]) == 0
    job = ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{confirmed['id']}"))["purge"]
    assert (job["status"], job["deleted_items"], job["deleted_objects"]) == ("completed", 600, 2)


def test_a_bad_record_fails_alone(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], table: Table
) -> None:
    doomed = new_mailbox(org, "alice")
    delete_mailbox(org, doomed["id"])
    good = queued(infra[1])
    bad = copy.deepcopy(good[0])
    bad.update(messageId="bad-1", body="not json")
    assert run_purge([bad, *good]) == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    job = delete_intents.get_purge_job(table, org.organization["id"], doomed["id"])
    assert job is not None and job["status"] == "completed"


def test_a_purge_never_touches_a_live_mailbox(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], table: Table
) -> None:
    live = new_mailbox(org, "alice")
    seed_mail(table, infra[0], org.organization["id"], live["id"], items=3, objects=1)
    forged = copy.deepcopy(load_event("sqs_receive.json")["Records"][0])
    forged["body"] = json.dumps({"org_id": org.organization["id"], "mailbox_id": live["id"]})
    assert run_purge([forged]) == {"batchItemFailures": []}
    assert partition_size(table, org.organization["id"], live["id"]) == 3


def test_the_sweep_resends_a_purge_whose_enqueue_failed(
    org: NewOrganization,
    domain: dict[str, Any],
    infra: tuple[str, str],
    table: Table,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailroom.store import mail_purge

    doomed = new_mailbox(org, "alice")
    real_enqueue = mail_purge.enqueue

    def broken(job: dict[str, Any], *, delay_seconds: int = 0) -> None:
        raise RuntimeError("SQS unavailable")

    monkeypatch.setattr(mail_purge, "enqueue", broken)
    confirmed = delete_mailbox(org, doomed["id"])  # the delete itself succeeds
    assert get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{doomed['id']}").status == 404
    monkeypatch.setattr(mail_purge, "enqueue", real_enqueue)
    assert queued(infra[1]) == []

    sweep = function_module("mailbox_sweep")
    event = load_event("eventbridge_scheduled.json")
    assert sweep.handler(event, LambdaContext())["purges_resent"] == 0  # not stale yet
    shift_clock(monkeypatch, timedelta(minutes=16))
    assert sweep.handler(event, LambdaContext())["purges_resent"] == 1
    assert sweep.handler(event, LambdaContext())["purges_resent"] == 0  # its clock restarted
    records = queued(infra[1])
    assert len(records) == 1
    run_purge(records)
    purge = ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{confirmed['id']}"))["purge"]
    assert purge["status"] == "completed"
    shift_clock(monkeypatch, timedelta(hours=1))
    assert sweep.handler(event, LambdaContext())["purges_resent"] == 0  # done jobs leave the index


# --- intent rules ----------------------------------------------------------------------------------


def test_an_intent_is_single_use(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str]
) -> None:
    mailbox = new_mailbox(org, "alice")
    created = ok(intent(org, mailbox["id"]), 201)
    assert confirm(org, created["id"]).status == 200
    again = confirm(org, created["id"])
    assert again.status == 409 and again.error_code == "intent_already_confirmed"
    other = ok(intent(org, new_mailbox(org, "bob")["id"]), 201)
    assert confirm(org, other["id"]).status == 200


def test_an_intent_for_a_mailbox_deleted_meanwhile(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str]
) -> None:
    mailbox = new_mailbox(org, "alice")
    first = ok(intent(org, mailbox["id"]), 201)
    second = ok(intent(org, mailbox["id"]), 201)
    assert confirm(org, first["id"]).status == 200
    late = confirm(org, second["id"])
    assert late.status == 404 and late.error_code == "not_found"


def test_an_intent_expires_after_15_minutes(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = new_mailbox(org, "alice")
    created = ok(intent(org, mailbox["id"]), 201)
    shift_clock(monkeypatch, timedelta(minutes=15, seconds=1))
    expired = confirm(org, created["id"])
    assert expired.status == 410 and expired.error_code == "intent_expired"
    assert (
        ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{created['id']}"))["status"]
        == "expired"
    )
    assert get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}").status == 200


def test_daily_limit_per_token(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env(monkeypatch, MAILROOM_DELETE_DAILY_LIMIT="2")
    frozen = clock.utcnow()  # one UTC day for the whole test, wherever the wall clock is
    monkeypatch.setattr(clock, "utcnow", lambda: frozen)
    boxes = [new_mailbox(org, f"m{i}")["id"] for i in range(4)]
    delete_mailbox(org, boxes[0])
    waiting = ok(intent(org, boxes[2]), 201)
    delete_mailbox(org, boxes[1])
    refused = confirm(org, waiting["id"])
    assert refused.status == 429 and refused.error_code == "delete_daily_limit_reached"
    assert refused.json()["error"]["retryable"] is True
    assert 1 <= int(refused.headers["retry-after"]) <= 86400
    assert get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{boxes[2]}").status == 200
    no_intent = intent(org, boxes[3])
    assert no_intent.status == 429 and no_intent.error_code == "delete_daily_limit_reached"
    # The budget is per token: another token may confirm the same (still pending) intent.
    other = ok(
        post(
            "tokens",
            org.admin_token,
            "/api/v1/tokens",
            {"name": "ops2", "scopes": ["mailboxes:delete", "mailboxes:read"]},
        ),
        201,
    )["token"]
    assert ok(confirm(org, waiting["id"], other))["status"] == "confirmed"
    # The next UTC day has a fresh budget.
    monkeypatch.setattr(clock, "utcnow", lambda: frozen + timedelta(days=1))
    assert delete_mailbox(org, boxes[3])["status"] == "confirmed"


def test_cooldown_between_deletes(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env(monkeypatch, MAILROOM_DELETE_COOLDOWN_SECONDS="60")
    first, second = new_mailbox(org, "a")["id"], new_mailbox(org, "b")["id"]
    delete_mailbox(org, first)
    pending = ok(intent(org, second), 201)
    refused = confirm(org, pending["id"])
    assert refused.status == 429 and refused.error_code == "delete_cooldown"
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{second}").status == 200
    # A refused confirm spends nothing: the same intent works once the cooldown has passed.
    shift_clock(monkeypatch, timedelta(seconds=61))
    assert ok(confirm(org, pending["id"]))["status"] == "confirmed"


def test_delete_needs_the_delete_scope(
    org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str]
) -> None:
    mailbox = new_mailbox(org, "alice")
    writer = ok(
        post(
            "tokens",
            org.admin_token,
            "/api/v1/tokens",
            {"name": "w", "scopes": ["mailboxes:write", "mailboxes:read"]},
        ),
        201,
    )["token"]
    assert intent(org, mailbox["id"], writer).error_code == "insufficient_scope"
    created = ok(intent(org, mailbox["id"]), 201)
    assert confirm(org, created["id"], writer).error_code == "insufficient_scope"


def test_deletion_is_audited(org: NewOrganization, domain: dict[str, Any], infra: tuple[str, str]) -> None:
    mailbox = new_mailbox(org, "alice")
    confirmed = delete_mailbox(org, mailbox["id"])
    confirm(org, confirmed["id"])  # refused, audited too
    log = get("audit", org.admin_token, "/api/v1/audit-log", per_page=100).json()["data"]
    entries = [
        (r["action"], r["outcome"]["status"], r["target"].get("mailbox_id"))
        for r in reversed(log)
        if r["action"] in ("mailbox.delete_intent", "delete_intent.confirm")
    ]
    assert entries == [
        ("mailbox.delete_intent", 201, mailbox["id"]),
        ("delete_intent.confirm", 200, mailbox["id"]),
        ("delete_intent.confirm", 409, None),
    ]
