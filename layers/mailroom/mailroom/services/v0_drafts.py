"""agentmail-style drafts of an inbox (``/api/v0/inboxes/{inboxId}/drafts``), over ``drafts``: a
draft is a message in the inbox's Drafts folder, shaped like a v0 message with ``draft_id``.

PATCH changes the fields given and keeps the others (attachments too, unless ``attachments`` is
given: then they are replaced); DELETE removes the draft for good (claimed first, so it cannot
race a send of it); send is ``drafts.send``: exactly once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mailroom import errors
from mailroom.services import drafts, message_removal, v0_mail
from mailroom.services.composing import ComposeOptions
from mailroom.services.sending import AttachmentInput, SendRequest
from mailroom.store import drafts as draft_store
from mailroom.store import keys
from mailroom.store.table import Item, Table

DRAFT_FIELDS = ("to", "cc", "bcc", "reply_to", "subject", "text", "html", "labels", "headers")


def draft_view(message: Item) -> dict[str, Any]:
    view = v0_mail.message_view(message)
    return {
        "inbox_id": view["inbox_id"],
        "draft_id": view["message_id"],
        "thread_id": view["thread_id"],
        "labels": view["labels"],
        "from": view["from"],
        "to": view["to"],
        "cc": view["cc"],
        "bcc": view["bcc"],
        "reply_to": view["reply_to"],
        "subject": view["subject"],
        "preview": view["preview"],
        "text": view["text"],
        "html": view["html"],
        "in_reply_to": view["in_reply_to"],
        "references": view["references"],
        "headers": dict((message.get("draft") or {}).get("headers") or {}),
        "attachments": view["attachments"],
        "created_at": view["created_at"],
        "updated_at": view["updated_at"],
    }


def draft_item(message: Item) -> dict[str, Any]:
    item = v0_mail.message_item(message)
    return {
        "inbox_id": item["inbox_id"],
        "draft_id": item["message_id"],
        "thread_id": item["thread_id"],
        "labels": item["labels"],
        "to": item["to"],
        "cc": item["cc"],
        "subject": item["subject"],
        "preview": item["preview"],
        "updated_at": item["timestamp"],
    }


def load(table: Table, mailbox: Item, draft_id: str) -> Item:
    """The inbox's draft; 404 for anything else (v0 has no folders: a message that is not a draft
    is not a draft), 409 ``draft_already_sent`` for one sent lately."""
    try:
        return drafts.load_draft(table, mailbox, draft_id)
    except errors.Invalid:
        raise errors.not_found("Draft") from None


def list_drafts(table: Table, mailbox: Item, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """(this page newest first, the total from the mailbox's Drafts counter)."""
    items = table.query_window(
        partition=keys.folder_index_pk(mailbox["org_id"], mailbox["id"], drafts.DRAFTS),
        index="GSI2",
        offset=offset,
        limit=limit,
        newest_first=True,
    )
    return [draft_item(m) for m in items], max(0, int(mailbox.get("fc_drafts_total", 0)))


def _options(draft: Item) -> ComposeOptions:
    return ComposeOptions(identity_id=(draft.get("draft") or {}).get("identity_id"))


def create(
    table: Table, mailbox: Item, request: SendRequest, *, reply_to_message: str | None
) -> dict[str, Any]:
    saved = drafts.save(table, mailbox, request, ComposeOptions(), reply_to_message=reply_to_message)
    return draft_view(saved)


def update(
    table: Table,
    mailbox: Item,
    draft: Item,
    changes: dict[str, Any],
    attachments: list[AttachmentInput] | None,
) -> dict[str, Any]:
    current = drafts.request_of(table, draft)
    options = _options(draft)
    if options.identity_id:
        current.sender = None  # the identity gives From again (and its signature is not doubled)
    request = replace(current, **changes)
    if attachments is not None:
        request.attachments = attachments
    saved = drafts.save(table, mailbox, request, options, replacing=draft)
    return draft_view(saved)


def delete(table: Table, draft: Item) -> None:
    token = draft_store.claim(table, draft)
    if token is None:
        raise drafts.busy()
    if not message_removal.purge(table, [draft]):
        draft_store.release(table, draft, token)
        raise drafts.busy()
