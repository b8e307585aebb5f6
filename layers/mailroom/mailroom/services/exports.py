"""A file made for a mailbox (a contacts export, a calendar feed) as a download: in the response up
to 4 MiB, else written under the mailbox's S3 prefix (removed with the mailbox) and handed out as a
short-lived pre-signed link."""

from __future__ import annotations

from mailroom import ids
from mailroom.services.message_downloads import INLINE_LIMIT_BYTES, Download
from mailroom.store import keys, mail_objects
from mailroom.store.table import Item


def download(mailbox: Item, data: bytes, *, media_type: str, filename: str) -> Download:
    if len(data) <= INLINE_LIMIT_BYTES:
        return Download(data, None, media_type, filename)
    extension = filename.rsplit(".", 1)[-1]
    key = f"{keys.mailbox_s3_prefix(mailbox['org_id'], mailbox['id'])}exports/{ids.ulid()}.{extension}"
    mail_objects.put_bytes(key, data, content_type=media_type)
    url = mail_objects.presigned_get(key, filename=filename, content_type=media_type)
    return Download(None, url, media_type, filename)
