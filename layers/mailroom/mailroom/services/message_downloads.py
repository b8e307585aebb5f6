"""A message's bytes: the raw message and its attachments.

Bytes up to ``INLINE_LIMIT_BYTES`` are returned in the response; larger ones are a redirect to a
short-lived pre-signed S3 URL (a Lambda response is at most 6 MB, and binary bodies travel
base64-encoded, i.e. 4/3 larger). A stored content type is served only when it is a plain
``type/subtype``; anything else is ``application/octet-stream``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mailroom import errors
from mailroom.services.mail_views import attachment_view
from mailroom.store import mail_objects
from mailroom.store.table import Item

INLINE_LIMIT_BYTES = 4 * 1024 * 1024  # 4 MiB base64-encoded is 5.3 MiB: under Lambda's 6 MB response
_MIME_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


@dataclass(frozen=True, slots=True)
class Download:
    """Bytes to return, or a pre-signed URL to redirect to (``content`` is then None)."""

    content: bytes | None
    redirect: str | None
    content_type: str
    filename: str


def _safe_type(content_type: str | None) -> str:
    value = (content_type or "").strip().lower()
    return value if _MIME_TYPE_RE.match(value) else "application/octet-stream"


def _ascii_name(filename: str) -> str:
    return filename.encode("ascii", "replace").decode().replace("?", "_")


def _download(key: str, size: int, *, content_type: str, filename: str) -> Download:
    if size > INLINE_LIMIT_BYTES:
        url = mail_objects.presigned_get(key, filename=_ascii_name(filename), content_type=content_type)
        return Download(None, url, content_type, filename)
    return Download(mail_objects.get_bytes(key), None, content_type, filename)


def raw_download(message: Item) -> Download:
    return _download(
        message["raw_key"],
        int(message.get("size", 0)),
        content_type="message/rfc822",
        filename=f"{message['id']}.eml",
    )


def attachment_views(message: Item) -> list[dict[str, Any]]:
    """The message's attachments (metadata and the URL of their bytes)."""
    return [attachment_view(message["id"], a) for a in message.get("attachments") or []]


def attachment(message: Item, index: int) -> dict[str, Any]:
    for item in message.get("attachments") or []:
        if int(item["index"]) == index:
            return dict(item)
    raise errors.not_found("Attachment")


def attachment_link(item: dict[str, Any], *, seconds: int) -> str:
    """A pre-signed S3 GET of a stored attachment that downloads it (Content-Disposition: attachment
    with its file name) with a type safe to serve; valid for ``seconds``."""
    filename = item.get("filename") or f"attachment-{item['index']}"
    return mail_objects.presigned_get(
        item["key"],
        filename=_ascii_name(filename),
        content_type=_safe_type(item.get("content_type")),
        seconds=seconds,
    )


def attachment_download(message: Item, index: int) -> Download:
    item = attachment(message, index)
    filename = item.get("filename") or f"attachment-{index}"
    return _download(
        item["key"],
        int(item.get("size", 0)),
        content_type=_safe_type(item.get("content_type")),
        filename=filename,
    )
