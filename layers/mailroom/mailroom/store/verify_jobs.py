"""Bulk verification jobs: the job item, its files in the mail bucket, and its work queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws, keys, mail_objects
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, put_new

JOB_PREFIX = "VERIFYJOB#"


def prefix(org_id: str, job_id: str) -> str:
    return f"verify/{org_id}/{job_id}/"


def rows_key(org_id: str, job_id: str) -> str:
    return prefix(org_id, job_id) + "rows.json"


def chunk_key(org_id: str, job_id: str, chunk: int) -> str:
    return prefix(org_id, job_id) + f"results/{chunk:05d}.json"


def csv_key(org_id: str, job_id: str) -> str:
    return prefix(org_id, job_id) + "results.csv"


def job_item(job: Item) -> Item:
    return {
        **job,
        "PK": keys.org_pk(job["org_id"]),
        "SK": keys.verify_job_sk(job["id"]),
        "type": "verify_job",
    }


def create_op(job: Item) -> Op:
    return put_new(f"job:{job['id']}", job_item(job))


def get(table: Table, org_id: str, job_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.verify_job_sk(job_id))


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=JOB_PREFIX,
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


def update(org_id: str, job_id: str) -> Update:
    return Update(keys.org_pk(org_id), keys.verify_job_sk(job_id))


def delete(table: Table, org_id: str, job_id: str) -> None:
    table.delete(keys.org_pk(org_id), keys.verify_job_sk(job_id))


# --- files ------------------------------------------------------------------------------------------


def upload_key(org_id: str, upload_id: str) -> str:
    """Where a client's pre-signed upload lands (the bucket's ExpireVerifyUploads rule removes it
    after a day if no job reads it)."""
    return f"verify-uploads/{org_id}/{upload_id}.csv"


def upload_url(key: str, content_type: str, seconds: int) -> str:
    """A pre-signed PUT; the content type is signed, so the upload must send that header."""
    url: str = aws.client("s3").generate_presigned_url(
        "put_object",
        Params={"Bucket": mail_objects.bucket(), "Key": key, "ContentType": content_type},
        ExpiresIn=seconds,
    )
    return url


def read_upload(key: str, max_bytes: int) -> tuple[bytes | None, int]:
    """(the bytes, the size), None for bytes over ``max_bytes``; raises ObjectMissing."""
    return mail_objects.get_bytes_within(key, max_bytes)


def put_json(key: str, value: Any) -> None:
    mail_objects.put_bytes(
        key, json.dumps(value, separators=(",", ":")).encode(), content_type="application/json"
    )


def get_json(key: str) -> Any:
    return json.loads(mail_objects.get_bytes(key))


def put_csv(key: str, data: bytes) -> None:
    mail_objects.put_bytes(key, data, content_type="text/csv; charset=utf-8")


def download_url(key: str, filename: str, seconds: int) -> str:
    return mail_objects.presigned_get(
        key, filename=filename, content_type="text/csv; charset=utf-8", seconds=seconds
    )


def delete_files(org_id: str, job_id: str, chunks: int) -> None:
    names = [rows_key(org_id, job_id), csv_key(org_id, job_id)]
    names += [chunk_key(org_id, job_id, n) for n in range(chunks)]
    mail_objects.delete(names)


def delete_files_named(names: list[str]) -> None:
    mail_objects.delete(names)


# --- the work queue ---------------------------------------------------------------------------------


def enqueue(messages: Sequence[dict[str, Any]]) -> None:
    """Every chunk message (SendMessageBatch, 10 at a time); raises if some could not be sent."""
    queue_url = get_settings().verify_queue_url
    if not queue_url:
        raise RuntimeError("MAILROOM_VERIFY_QUEUE_URL is not set")
    sqs = aws.client("sqs")
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":"))}
            for i, m in enumerate(messages[start : start + 10])
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed") or []
        if failed:
            # Resent once each (they are idempotent: a chunk is counted once, see services).
            retry = [e for e in entries if e["Id"] in {f["Id"] for f in failed}]
            if sqs.send_message_batch(QueueUrl=queue_url, Entries=retry).get("Failed"):
                raise RuntimeError(f"SQS refused {len(failed)} verification chunks")
