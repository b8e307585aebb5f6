"""SMTP relays, the sender domains they claim, their test jobs, and the test queue."""

from __future__ import annotations

import json
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, delete, put, put_new

RELAY_PREFIX = "SMTPRELAY#"


def relay_item(relay: Item) -> Item:
    return {
        **relay,
        "PK": keys.org_pk(relay["org_id"]),
        "SK": keys.smtp_relay_sk(relay["id"]),
        "type": "smtp_relay",
    }


def get(table: Table, org_id: str, relay_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.smtp_relay_sk(relay_id))


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=RELAY_PREFIX, per_page=per_page, cursor=cursor
    )


def create_op(relay: Item) -> Op:
    return put_new(f"relay:{relay['id']}", relay_item(relay))


def replace_op(relay: Item, version: int) -> Op:
    """Overwrite the relay if it is still at ``version`` (a concurrent update loses, not merges)."""
    op = put(f"relay:{relay['id']}", relay_item(relay))
    op.body["Put"]["ConditionExpression"] = "#version = :version"
    op.body["Put"]["ExpressionAttributeNames"] = {"#version": "version"}
    op.body["Put"]["ExpressionAttributeValues"] = {":version": {"N": str(version)}}
    return op


def delete_op(relay: Item) -> Op:
    return delete(
        f"relay:{relay['id']}",
        keys.org_pk(relay["org_id"]),
        keys.smtp_relay_sk(relay["id"]),
        condition="attribute_exists(PK)",
    )


def claim_domain_op(org_id: str, ascii_domain: str, relay_id: str) -> Op:
    """The domain is this relay's: new, or already its own (else the transaction is refused)."""
    op = put(
        f"domain:{ascii_domain}",
        {
            "PK": keys.org_pk(org_id),
            "SK": keys.smtp_relay_domain_sk(ascii_domain),
            "type": "smtp_relay_domain",
            "relay_id": relay_id,
            "domain": ascii_domain,
        },
    )
    op.body["Put"]["ConditionExpression"] = "attribute_not_exists(PK) OR relay_id = :relay"
    op.body["Put"]["ExpressionAttributeValues"] = {":relay": {"S": relay_id}}
    return op


def release_domain_op(org_id: str, ascii_domain: str, relay_id: str) -> Op:
    return delete(
        f"release:{ascii_domain}",
        keys.org_pk(org_id),
        keys.smtp_relay_domain_sk(ascii_domain),
        condition="relay_id = :relay",
        relay=relay_id,
    )


def domain_owner(table: Table, org_id: str, ascii_domain: str) -> str | None:
    """The id of the relay that sends for ``ascii_domain`` (one GetItem), if any."""
    claim = table.get(keys.org_pk(org_id), keys.smtp_relay_domain_sk(ascii_domain), consistent=False)
    return str(claim["relay_id"]) if claim else None


def count_op(org_id: str, delta: int, *, limit: int | None = None) -> Op:
    update = Update(keys.org_pk(org_id), keys.ORG_SK).add(smtp_relay_count=delta)
    if limit is not None and delta > 0:
        update.at_most("smtp_relay_count", limit - delta)
    return update.op("relays")


# --- test jobs --------------------------------------------------------------------------------------


def put_test(table: Table, job: Item) -> None:
    table.put(
        {**job, "PK": keys.org_pk(job["org_id"]), "SK": keys.smtp_test_sk(job["id"]), "type": "smtp_test"}
    )


def get_test(table: Table, org_id: str, job_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.smtp_test_sk(job_id))


def finish_test(table: Table, org_id: str, job_id: str, fields: dict[str, Any]) -> Item:
    return Update(keys.org_pk(org_id), keys.smtp_test_sk(job_id)).set(**fields).apply(table)


def enqueue_test(org_id: str, job_id: str) -> None:
    queue_url = get_settings().smtp_test_queue_url
    if not queue_url:
        raise RuntimeError("MAILROOM_SMTP_TEST_QUEUE_URL is not set")
    aws.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({"org_id": org_id, "job_id": job_id})
    )
