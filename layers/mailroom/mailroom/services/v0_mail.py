"""The agentmail v0 Messages and Threads resources (agentmail-v0-api.txt), as views and thin use
cases over what ``/api/v1`` already does: messages are shaped from ``mail_views``' summaries,
replies and forwards are ``prefill``'s compose data sent through ``sending.send``, labels change
through ``message_changes.apply_change``, a thread is deleted with ``message_removal.purge``.
Nothing here writes to DynamoDB, S3 or SES on its own.

Decisions (docs/agent-api-v0.md has them all):

* An inbox is a mailbox and v0 has no folders: lists show every stored message and thread of the
  mailbox whatever its v1 folder (Trash and Spam included), like ``GET /api/v1/messages`` unfiltered.
* ``total`` is a maintained counter on the mailbox item (``message_count``, ``thread_count``), read
  with the mailbox itself: no request counts by reading.
* ``null`` where the reference shows ``null`` for "none" (cc, bcc, reply_to, html, in_reply_to,
  references, a thread's received/sent time); lists that are never absent (to, labels) are ``[]``.
* ``headers`` holds the headers no other field already shows: everything but the address, subject,
  date and id fields and the MIME structure ones (a plain send's is ``{}``, as in the reference).
* Messages carry ``attachments`` (id, filename, size, type, disposition, content id): the one field
  the reference does not list, without which its attachment endpoint could not be used.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mailroom import clock, errors
from mailroom.mail import compose as mime
from mailroom.mail.header_text import shown
from mailroom.mail.parse import header_dict
from mailroom.services import message_changes, message_detail, message_removal, prefill, sending, threads
from mailroom.services.mail_views import load_body, message_summary, thread_view
from mailroom.services.message_downloads import attachment_link
from mailroom.store import mail as store
from mailroom.store.table import Item, Table

MAX_LABELS = sending.MAX_LABELS
MAX_LABEL_CHARS = sending.MAX_LABEL_CHARS
DOWNLOAD_URL_SECONDS = 3600
MAX_URL_ATTACHMENTS = 10
THREAD_PAGE = 100  # messages per Query while reading a whole thread
THREAD_MESSAGE_FIELDS = ("message_id", "direction", "from", "to", "subject", "timestamp")  # and text
# Headers other fields already show, or that only describe the MIME structure.
SHOWN_ELSEWHERE = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
    }
)


def _or_null(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values else None


# --- views -------------------------------------------------------------------------------------


def _item(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "inbox_id": summary["mailbox_id"],
        "thread_id": summary["thread_id"],
        "message_id": summary["id"],
        "direction": summary["direction"],
        "labels": list(summary["labels"]),
        "timestamp": summary["received_at"],
        "from": summary["from"],
        "to": list(summary["to"]),
        "cc": _or_null(summary["cc"]),
        "subject": summary["subject"],
        "preview": summary["preview"],
        "size": summary["size"],
    }


def message_item(message: Item) -> dict[str, Any]:
    """A message as ``GET /inboxes/{id}/messages`` lists it."""
    return _item(message_summary(message))


def attachment_item(attachment: dict[str, Any]) -> dict[str, Any]:
    return {
        "attachment_id": attachment["attachment_id"],
        "filename": attachment.get("filename"),
        "size": int(attachment.get("size", 0)),
        "content_type": attachment.get("content_type"),
        "content_disposition": attachment.get("disposition") or "attachment",
        "content_id": attachment.get("content_id"),
    }


def message_view(message: Item) -> dict[str, Any]:
    """A message in full (``GET /inboxes/{id}/messages/{messageId}``): the list item plus bodies,
    headers, references and attachments."""
    summary = message_summary(message)
    body = load_body(message)
    headers = [(str(h[0]), str(h[1])) for h in body.get("headers") or []]
    created = message.get("created_at") or summary["received_at"]
    return {
        **_item(summary),
        "reply_to": _or_null(summary["reply_to"]),
        "bcc": _or_null(summary.get("bcc")),
        "text": body.get("text"),
        "html": body.get("html"),
        "in_reply_to": summary["in_reply_to"],
        "references": _or_null(summary["references"]),
        "headers": header_dict([(n, v) for n, v in headers if n.lower() not in SHOWN_ELSEWHERE]),
        "attachments": [attachment_item(a) for a in message.get("attachments") or []],
        "created_at": created,
        "updated_at": message.get("updated_at") or created,
    }


def thread_item(thread: Item) -> dict[str, Any]:
    """A thread as ``GET /inboxes/{id}/threads`` lists it: every field is maintained on the item."""
    view = thread_view(thread)
    return {
        "inbox_id": view["mailbox_id"],
        "thread_id": view["id"],
        "labels": view["labels"],
        "timestamp": view["last_activity_at"],
        "received_timestamp": view["received_at"],
        "sent_timestamp": view["sent_at"],
        "senders": view["senders"],
        "recipients": view["recipients"],
        "subject": view["subject"],
        "preview": view["preview"],
        "last_message_id": view["last_message_id"],
        "message_count": max(0, view["message_count"]),
        "size": max(0, view["size"]),
    }


# --- reading -----------------------------------------------------------------------------------


def load_message(table: Table, mailbox: Item, message_id: str) -> Item:
    """The inbox's message, or 404 (a message of another inbox is not found either)."""
    return message_detail.load_message(table, mailbox, message_id)


def load_thread(table: Table, mailbox: Item, thread_id: str) -> Item:
    """The inbox's thread, or 404 (also once its last message is gone)."""
    return threads.load_thread(table, mailbox, thread_id)


def list_messages(
    table: Table, mailbox: Item, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """(this page newest first, the total): the page from ``store.messages_window``, the total from
    the mailbox's maintained ``message_count``."""
    items = store.messages_window(table, mailbox["org_id"], mailbox["id"], offset=offset, limit=limit)
    return [message_item(m) for m in items], max(0, int(mailbox.get("message_count", 0)))


def list_threads(table: Table, mailbox: Item, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page by latest activity, the total from the mailbox's maintained ``thread_count``)."""
    items = store.threads_window(table, mailbox["org_id"], mailbox["id"], offset=offset, limit=limit)
    return [thread_item(t) for t in items], max(0, int(mailbox.get("thread_count", 0)))


def attachment(message: Item, attachment_id: str, *, seconds: int = DOWNLOAD_URL_SECONDS) -> dict[str, Any]:
    """An attachment's metadata with a pre-signed download URL valid for ``seconds``."""
    stored = next(
        (a for a in message.get("attachments") or [] if a.get("attachment_id") == attachment_id), None
    )
    if stored is None:
        raise errors.not_found("Attachment")
    expires = clock.utcnow() + timedelta(seconds=seconds)
    return {
        **attachment_item(stored),
        "download_url": attachment_link(stored, seconds=seconds),
        "expires_at": clock.isoformat(expires),
    }


def thread_messages(table: Table, mailbox: Item, thread_id: str) -> Iterator[list[Item]]:
    """The thread's messages, oldest first, a page (one Query) at a time."""
    cursor: str | None = None
    while True:
        page = store.list_messages(
            table,
            mailbox["org_id"],
            mailbox["id"],
            per_page=THREAD_PAGE,
            cursor=cursor,
            thread_id=thread_id,
            newest_first=False,
        )
        yield page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def thread_detail(table: Table, mailbox: Item, thread: Item) -> dict[str, Any]:
    """The thread with all its messages in order. Bodies count against v1's thread budget
    (``threads.THREAD_BODY_BUDGET``: a Lambda response is at most 6 MB); once it is spent, later
    messages have ``text: null`` (GET the message for it)."""
    budget = threads.THREAD_BODY_BUDGET
    shown: list[dict[str, Any]] = []
    for page in thread_messages(table, mailbox, thread["id"]):
        for message in page:
            text = load_body(message).get("text") if budget > 0 else None
            size = len((text or "").encode())
            if size > budget:
                text, budget = None, 0
            else:
                budget -= size
            item = message_item(message)
            shown.append({k: item[k] for k in THREAD_MESSAGE_FIELDS} | {"text": text})
    view = thread_item(thread)
    return {k: view[k] for k in ("inbox_id", "thread_id", "subject", "message_count", "preview")} | {
        "messages": shown
    }


# --- changing ----------------------------------------------------------------------------------


def set_labels(table: Table, message: Item, labels: Sequence[str]) -> dict[str, Any]:
    """Replace the message's labels (v1's PATCH ``labels``); returns the message in full."""
    changed = message_changes.apply_change(table, message, message_changes.set_flags(None, None, labels))
    return message_view(changed)


def delete_thread(table: Table, mailbox: Item, thread: Item) -> None:
    """Delete the thread and every message in it for good (v1's removal from Trash: DynamoDB with
    every counter, then S3; the emptied thread is dropped with them). A message arriving in the
    thread meanwhile stays, with its thread."""
    for page in thread_messages(table, mailbox, thread["id"]):
        if page:
            message_removal.purge(table, page)


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """An attachment of a v0 send: base64 ``content`` or a ``url`` to fetch."""

    filename: str | None = None
    content_type: str | None = None
    content: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Compose:
    """What a v0 reply or forward may set (``None``: not given)."""

    text: str | None = None
    html: str | None = None
    to: list[str] | None = None
    cc: list[str] | None = None
    labels: list[str] | None = None
    attachments: tuple[NewAttachment, ...] = ()


def _refuse(where: str, message: str) -> errors.MailroomError:
    return sending.invalid(where, message)


async def resolve_attachments(given: Sequence[NewAttachment]) -> list[sending.AttachmentInput]:
    """v0 attachments as the send service takes them: ``url`` ones fetched (concurrently, through
    the webhooks' SSRF guard, within the message size limit and ``url_fetch.FETCH_SECONDS``)."""
    for position, item in enumerate(given):
        if (item.content is None) == (item.url is None):
            raise _refuse(f"attachments.{position}", "give either content (base64) or url")
    by_url = [(position, item) for position, item in enumerate(given) if item.url is not None]
    if len(by_url) > MAX_URL_ATTACHMENTS:
        raise _refuse("attachments", f"at most {MAX_URL_ATTACHMENTS} attachments by url per message")
    fetched: dict[int, Any] = {}
    if by_url:
        from mailroom import url_fetch, webhook_http
        from mailroom.settings import get_settings

        allow_private = get_settings().webhook_allow_private
        client = webhook_http.shared_client(allow_private=allow_private)
        budget = url_fetch.Budget(mime.MAX_MESSAGE_BYTES)
        results = await asyncio.gather(
            *(
                url_fetch.fetch(client, str(item.url), budget=budget, allow_private=allow_private)
                for _, item in by_url
            ),
            return_exceptions=True,
        )
        for (position, item), result in zip(by_url, results, strict=True):
            if isinstance(result, url_fetch.FetchRefused):
                raise _refuse(
                    f"attachments.{position}.url", f"{shown(str(item.url), 200)}: {shown(str(result), 300)}"
                )
            if isinstance(result, BaseException):
                raise result
            fetched[position] = result
    resolved = []
    for position, item in enumerate(given):
        got = fetched.get(position)
        resolved.append(
            sending.AttachmentInput(
                filename=item.filename or (got.filename if got else None) or "attachment",
                content_type=item.content_type or (got.content_type if got else None),
                content=base64.b64encode(got.content).decode() if got else item.content,
            )
        )
    return resolved


def check_headers(headers: dict[str, str]) -> None:
    """Refuse reserved or malformed custom headers before any attachment is fetched."""
    try:
        mime.check_custom_headers(headers)
    except mime.ComposeError as exc:
        raise sending.compose_error(exc) from exc


async def send(
    table: Table, mailbox: Item, request: sending.SendRequest, attachments: Sequence[NewAttachment]
) -> sending.Sent:
    check_headers(request.headers)
    request.attachments = [*request.attachments, *await resolve_attachments(attachments)]
    return sending.send(table, mailbox, request)


def _with_bodies(data: dict[str, Any], given: Compose) -> None:
    """Given text or html replace the prefilled (quoted) bodies, both of them; none keeps them."""
    if given.text is not None or given.html is not None:
        data["text"], data["html"] = given.text, given.html


async def reply(
    table: Table, mailbox: Item, message_id: str, given: Compose, *, reply_all: bool
) -> sending.Sent:
    """Reply (to the Reply-To, else the sender) or reply to all (plus the original To and Cc, never
    this inbox), with In-Reply-To and References: prefill's reply data, sent."""
    data = prefill.reply(table, mailbox, message_id, reply_all=reply_all)["data"]
    _with_bodies(data, given)
    data["cc"] = [*data["cc"], *(given.cc or [])]  # reply-all: "additional" Cc; reply: the only Cc
    data["labels"] = list(given.labels or [])
    return await send(table, mailbox, prefill.as_send_request(data), given.attachments)


async def forward(table: Table, mailbox: Item, message_id: str, given: Compose) -> sending.Sent:
    """Forward to new recipients in a thread of its own, with the original's content (unless text
    or html is given) and always its attachments: prefill's forward data, sent."""
    data = prefill.forward(table, mailbox, message_id)["data"]
    _with_bodies(data, given)
    data["to"], data["cc"] = list(given.to or []), list(given.cc or [])
    data["labels"] = list(given.labels or [])
    request = prefill.as_send_request(data, new_thread=True)
    return await send(table, mailbox, request, given.attachments)
