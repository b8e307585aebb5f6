"""Mail bodies and bytes in S3: raw MIME, bodies too large for DynamoDB, attachments, quarantine.

Layout (``P`` = ``orgs/<org>/mailboxes/<mailbox>/``, the prefix the mailbox purge deletes):

    inbound/<ses message id>                       as SES's receipt rule wrote it
    P messages/<ulid>/raw.eml                      the message exactly as received or sent
    P messages/<ulid>/body.json                    text, html, headers when too large to inline
    P messages/<ulid>/attachments/<index>          each attachment's decoded bytes
    quarantine/<org>/<mailbox or _>/<ulid>.eml     kept 30 days (bucket lifecycle), in no folder
"""

from __future__ import annotations

import json
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store.errors import ObjectMissing

PRESIGNED_URL_SECONDS = 900


def _s3() -> Any:
    return aws.client("s3")


def bucket() -> str:
    name = get_settings().mail_bucket
    if not name:
        raise RuntimeError("MAILROOM_MAIL_BUCKET is not set (template.yaml sets it from MailBucket)")
    return name


def message_prefix(org_id: str, mailbox_id: str, ulid: str) -> str:
    return f"{keys.mailbox_s3_prefix(org_id, mailbox_id)}messages/{ulid}/"


def raw_key(org_id: str, mailbox_id: str, ulid: str) -> str:
    return message_prefix(org_id, mailbox_id, ulid) + "raw.eml"


def body_key(org_id: str, mailbox_id: str, ulid: str) -> str:
    return message_prefix(org_id, mailbox_id, ulid) + "body.json"


def attachment_key(org_id: str, mailbox_id: str, ulid: str, index: int) -> str:
    return message_prefix(org_id, mailbox_id, ulid) + f"attachments/{index}"


def quarantine_key(org_id: str, mailbox_id: str | None, ulid: str) -> str:
    return f"quarantine/{org_id}/{mailbox_id or '_'}/{ulid}.eml"


def get_bytes(key: str, *, bucket_name: str | None = None) -> bytes:
    response = _s3().get_object(Bucket=bucket_name or bucket(), Key=key)
    return bytes(response["Body"].read())


def get_bytes_within(key: str, max_bytes: int, *, bucket_name: str | None = None) -> tuple[bytes | None, int]:
    """(the object's bytes, its size), or (None, its size) when it is larger than ``max_bytes``: a
    message over the limit is quarantined by server-side copy, never read into memory."""
    response = _s3().get_object(Bucket=bucket_name or bucket(), Key=key)
    size = int(response.get("ContentLength", 0))
    if size > max_bytes:
        response["Body"].close()
        return None, size
    return bytes(response["Body"].read()), size


def put_bytes(key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
    _s3().put_object(Bucket=bucket(), Key=key, Body=data, ContentType=content_type)


def copy(source_key: str, target_key: str, *, source_bucket: str | None = None) -> None:
    """Server-side copy (no bytes through Lambda)."""
    _s3().copy_object(
        Bucket=bucket(), Key=target_key, CopySource={"Bucket": source_bucket or bucket(), "Key": source_key}
    )


def put_body(key: str, body: dict[str, Any]) -> None:
    put_bytes(key, json.dumps(body, separators=(",", ":")).encode(), content_type="application/json")


def get_body(key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(get_bytes(key))
    return data


def presigned_get(
    key: str,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    seconds: int = PRESIGNED_URL_SECONDS,
) -> str:
    params: dict[str, Any] = {"Bucket": bucket(), "Key": key}
    if filename:
        safe = filename.replace('"', "").replace("\\", "")
        params["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
    if content_type:
        params["ResponseContentType"] = content_type
    url: str = _s3().generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
    return url


def delete(keys_to_delete: list[str]) -> None:
    for start in range(0, len(keys_to_delete), 1000):
        chunk = keys_to_delete[start : start + 1000]
        if chunk:
            _s3().delete_objects(
                Bucket=bucket(), Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )


def exists(key: str) -> bool:
    try:
        _s3().head_object(Bucket=bucket(), Key=key)
    except ObjectMissing:
        return False
    return True
