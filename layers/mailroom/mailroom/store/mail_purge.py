"""Deleting a mailbox's stored mail: its DynamoDB partition, its S3 prefix, and the queue that
carries purge jobs. Each call does a bounded amount of work, so the caller can stop between calls
when its Lambda is running out of time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store.table import Table

_BATCH_WRITE_MAX = 25
_MAX_RETRIES = 8


def delete_partition_page(table: Table, org_id: str, mailbox_id: str, *, limit: int = 250) -> int:
    """Delete up to ``limit`` items of the mailbox's partition; returns how many (0: it is empty).

    Always reads from the start of the partition: what was deleted is gone, so no cursor is needed
    and a retried job resumes where the last one stopped.
    """
    response = table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.mailbox_pk(org_id, mailbox_id)}},
        ProjectionExpression="PK, SK",
        Limit=limit,
        ConsistentRead=True,
    )
    found = response.get("Items", [])
    for start in range(0, len(found), _BATCH_WRITE_MAX):
        _batch_delete(table, found[start : start + _BATCH_WRITE_MAX])
    return len(found)


def _batch_delete(table: Table, wire_keys: list[dict[str, Any]]) -> None:
    requests: list[dict[str, Any]] = [{"DeleteRequest": {"Key": k}} for k in wire_keys]
    for attempt in range(_MAX_RETRIES):
        response = table.client.batch_write_item(RequestItems={table.name: requests})  # type: ignore[dict-item]
        requests = list(response.get("UnprocessedItems", {}).get(table.name, []))
        if not requests:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off as the SDK guide says
    raise RuntimeError(f"{len(requests)} items left unprocessed after {_MAX_RETRIES} attempts")


def delete_objects_page(org_id: str, mailbox_id: str, *, limit: int = 1000) -> int:
    """Delete up to ``limit`` objects under the mailbox's S3 prefix; returns how many."""
    bucket = get_settings().mail_bucket
    if not bucket:
        return 0  # no bucket configured: nothing can have been stored
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(
        Bucket=bucket, Prefix=keys.mailbox_s3_prefix(org_id, mailbox_id), MaxKeys=min(limit, 1000)
    )
    objects = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
    if not objects:
        return 0
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = response.get("Errors") or []
    if errors:
        raise RuntimeError(f"S3 refused to delete {len(errors)} objects, e.g. {errors[0]}")
    return len(objects)


def enqueue(job: dict[str, Any], *, delay_seconds: int = 0) -> None:
    """Send a purge job to the purge queue."""
    queue_url = get_settings().purge_queue_url
    if not queue_url:
        raise RuntimeError("MAILROOM_PURGE_QUEUE_URL is not set")
    aws.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(job, sort_keys=True), DelaySeconds=delay_seconds
    )
