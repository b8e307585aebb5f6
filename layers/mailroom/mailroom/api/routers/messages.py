"""The Messages API (``/api/v1/messages...``, ``/api/v1/threads...``): a message token reads and
organizes the mail of its own mailbox. No endpoint takes a mailbox id: the mailbox is the token's
(``require_mailbox``), so another mailbox's message ids are simply not found.

Scopes: ``messages:read`` for reads, ``messages:write`` for changes. Folder ``{path}`` in URLs is
the folder's path, URL-encoded (a ``/`` inside it may be sent as is or as ``%2F``), or its key;
see docs/messages.md for every decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from mailroom import errors
from mailroom.api import pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.services import messages as service
from mailroom.store import blocked_senders
from mailroom.store.mail import MAX_LABELS
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["messages"])
threads_router = api_router("/api/v1", tags=["threads"])

READ = require_mailbox("messages:read")
WRITE = require_mailbox("messages:write")
Reader = Annotated[BoundMailbox, Depends(READ)]
Writer = Annotated[BoundMailbox, Depends(WRITE)]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]

Label = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=service.MAX_LABEL_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
FolderRef = Annotated[
    str, Field(min_length=1, max_length=300, description="Folder path (INBOX, Work/2026) or key")
]


class MessagePatch(Strict):
    seen: bool | None = None
    flagged: bool | None = None
    labels: list[Label] | None = Field(default=None, max_length=MAX_LABELS, description="Replaces the labels")

    @model_validator(mode="after")
    def not_empty(self) -> MessagePatch:
        if not self.model_fields_set:
            raise ValueError("send at least one of seen, flagged, labels")
        return self


class MoveBody(Strict):
    folder: FolderRef


class BulkBody(Strict):
    ids: list[MessageId] = Field(
        min_length=1, max_length=service.MAX_BULK, description="Message ids (msg_...)"
    )
    action: Literal[
        "seen", "unseen", "flag", "unflag", "move", "delete", "spam", "ham", "add_labels", "remove_labels"
    ]
    folder: FolderRef | None = Field(default=None, description="The target of move")
    labels: list[Label] | None = Field(
        default=None, max_length=MAX_LABELS, description="For add_labels / remove_labels"
    )

    @model_validator(mode="after")
    def arguments(self) -> BulkBody:
        if self.action == "move" and not self.folder:
            raise ValueError("move needs folder")
        if self.action in ("add_labels", "remove_labels") and not self.labels:
            raise ValueError(f"{self.action} needs labels")
        return self


class FolderBody(Strict):
    path: str = Field(min_length=1, max_length=300, description="'/' separates levels: Projects/2026")


class EmptyBody(Strict):
    folder: FolderRef = Field(description="Trash or Spam")


class BlockBody(Strict):
    pattern: str = Field(
        min_length=3, max_length=320, description="someone@example.org, or @example.org for a domain"
    )


class FolderView(BaseModel):
    key: str
    path: str
    name: str
    system: bool
    total: int
    unread: int
    created_at: str | None


class EmptyResult(BaseModel):
    folder: str
    folder_key: str
    removed: int
    remaining: int
    more: bool


class BlockedSenderView(BaseModel):
    id: str = Field(
        description="The pattern itself: DELETE /api/v1/messages/blocked-senders/{id}, URL-encoded"
    )
    pattern: str
    type: Literal["address", "domain"]
    created_at: str | None


# --- listing -------------------------------------------------------------------------------------


@router.get("/messages", name="message.list", summary="List the mailbox's messages (filters, cursor pages)")
async def list_messages(
    request: Request,
    bound: Reader,
    page_query: PageParams,
    folder: Annotated[str | None, Query(max_length=300, description="Folder path or key")] = None,
    thread: Annotated[str | None, Query(max_length=64, description="Thread id (thr_...)")] = None,
    unread: bool | None = None,
    flagged: bool | None = None,
    label: Annotated[str | None, Query(min_length=1, max_length=service.MAX_LABEL_CHARS)] = None,
    sender: Annotated[
        str | None,
        Query(alias="from", min_length=1, max_length=200, description="Part of the From name or address"),
    ] = None,
    to: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of a To, Cc or Bcc name or address")
    ] = None,
    subject: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of the subject (case-insensitive)")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="Received at or after (ISO 8601)")] = None,
    before: Annotated[AwareDatetime | None, Query(description="Received before (ISO 8601)")] = None,
    order: Literal["newest", "oldest"] = "newest",
) -> dict[str, Any]:
    table, mailbox = Table(), bound.mailbox
    if isinstance(since, datetime) and isinstance(before, datetime) and since >= before:
        raise errors.validation("since must be earlier than before", field="since")
    filters = service.MessageFilters(
        folder=service.require_folder(table, mailbox, folder) if folder is not None else None,
        thread_id=thread,
        unread=unread,
        flagged=flagged,
        label=label,
        sender=sender,
        recipient=to,
        subject=subject,
        since=since,
        before=before,
        oldest_first=order == "oldest",
    )
    page, views, total = service.list_messages(
        table, mailbox, filters, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=total)


# --- fixed paths before /messages/{message_id} -------------------------------------------------------


@router.post(
    "/messages:bulk", name="message.bulk", summary=f"One action on up to {service.MAX_BULK} messages"
)
async def bulk(body: BulkBody, request: Request, bound: Writer) -> JSONResponse:
    table, mailbox = Table(), bound.mailbox
    audit_target(request, "messages", f"{len(body.ids)} messages", action=body.action, ids=body.ids)
    change: service.Change | None = None
    if body.action in ("seen", "unseen"):
        change = service.set_flags(body.action == "seen", None, None)
    elif body.action in ("flag", "unflag"):
        change = service.set_flags(None, body.action == "flag", None)
    elif body.action == "move":
        change = service.move_to(service.require_folder(table, mailbox, body.folder or "").key)
    elif body.action == "spam":
        change = service.SPAM
    elif body.action == "ham":
        change = service.HAM
    elif body.action == "add_labels":
        change = service.edit_labels(add=body.labels or [])
    elif body.action == "remove_labels":
        change = service.edit_labels(remove=body.labels or [])
    results = service.bulk(table, mailbox, body.ids, body.action, change)
    failed = sum(1 for r in results if r["status"] != "ok")
    # 207 when only some succeeded, as domains:bulk-add does; each row says what happened to it.
    return JSONResponse(
        status_code=207 if failed else 200,
        content={"data": results, "meta": {"succeeded": len(results) - failed, "failed": failed}},
    )


@router.get("/messages/folders", name="folder.list", summary="Folders with their message and unread counts")
async def list_folders(bound: Reader) -> dict[str, Any]:
    views = service.list_folders(Table(), bound.mailbox)
    return {
        "data": views,
        "links": {"next": None, "prev": None},
        "meta": {"current_page": 1, "last_page": 1, "per_page": len(views), "total": len(views)},
    }


@router.post(
    "/messages/folders",
    name="folder.create",
    status_code=201,
    response_model=One[FolderView],
    summary="Create a custom folder",
)
async def create_folder(body: FolderBody, request: Request, bound: Writer) -> dict[str, Any]:
    audit_target(request, "folder", "-", path=body.path)
    view = service.create_folder(Table(), bound.mailbox, body.path)
    audit_target(request, "folder", view["key"], path=view["path"])
    return one(view)


@router.post(
    "/messages/folders:empty",
    name="folder.empty",
    response_model=One[EmptyResult],
    summary=f"Remove up to {service.EMPTY_BATCH} messages of Trash or Spam for good; repeat while more",
)
async def empty_folder(body: EmptyBody, request: Request, bound: Writer) -> dict[str, Any]:
    table = Table()
    folder = service.require_folder(table, bound.mailbox, body.folder)
    audit_target(request, "folder", folder.key, path=folder.path)
    result = service.empty_folder(table, bound.mailbox, folder)
    audit_target(request, "folder", folder.key, path=folder.path, removed=result["removed"])
    return one(result)


@router.patch(
    "/messages/folders/{path:path}",
    name="folder.rename",
    response_model=One[FolderView],
    summary="Rename a custom folder (its messages stay in it)",
)
async def rename_folder(path: str, body: FolderBody, request: Request, bound: Writer) -> dict[str, Any]:
    table = Table()
    folder = service.folder_in_path(table, bound.mailbox, path)
    audit_target(request, "folder", folder.key, path=folder.path, new_path=body.path)
    return one(service.rename_folder(table, bound.mailbox, folder, body.path))


@router.delete(
    "/messages/folders/{path:path}",
    name="folder.delete",
    status_code=204,
    summary="Delete an empty custom folder (system folders cannot be deleted)",
)
async def delete_folder(path: str, request: Request, bound: Writer) -> Response:
    table = Table()
    folder = service.folder_in_path(table, bound.mailbox, path)
    audit_target(request, "folder", folder.key, path=folder.path)
    service.delete_folder(table, bound.mailbox, folder)
    return Response(status_code=204)


@router.get("/messages/blocked-senders", name="blocked_sender.list", summary="Senders this mailbox refuses")
async def list_blocked(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    mailbox = bound.mailbox
    page = blocked_senders.list_page(
        Table(), mailbox["org_id"], mailbox["id"], per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request,
        page,
        [service.blocked_view(i) for i in page.items],
        per_page=page_query.per_page,
        total=max(0, int(mailbox.get("blocked_sender_count", 0))),
    )


@router.post(
    "/messages/blocked-senders",
    name="blocked_sender.create",
    status_code=201,
    response_model=One[BlockedSenderView],
    summary="Refuse mail from an address or a whole domain (@example.org)",
)
async def block_sender(body: BlockBody, request: Request, bound: Writer) -> dict[str, Any]:
    audit_target(request, "blocked_sender", body.pattern)
    return one(service.block(Table(), bound.mailbox, body.pattern))


@router.delete(
    "/messages/blocked-senders/{pattern}",
    name="blocked_sender.delete",
    status_code=204,
    summary="Stop refusing a sender ({pattern}: the address or @domain, URL-encoded)",
)
async def unblock_sender(pattern: str, request: Request, bound: Writer) -> Response:
    audit_target(request, "blocked_sender", pattern)
    service.unblock(Table(), bound.mailbox, pattern)
    return Response(status_code=204)


# --- one message -------------------------------------------------------------------------------------


@router.get(
    "/messages/{message_id}",
    name="message.get",
    summary="A message with its bodies (HTML as sent and sanitized)",
)
async def get_message(message_id: str, bound: Reader) -> dict[str, Any]:
    table = Table()
    message = service.load_message(table, bound.mailbox, message_id)
    return one(service.full_view(table, bound.mailbox, message))


@router.patch("/messages/{message_id}", name="message.update", summary="Set seen, flagged, labels")
async def update_message(
    message_id: str, body: MessagePatch, request: Request, bound: Writer
) -> dict[str, Any]:
    table = Table()
    audit_target(request, "message", message_id, fields=sorted(body.model_fields_set))
    message = service.load_message(table, bound.mailbox, message_id)
    changed = service.apply_change(table, message, service.set_flags(body.seen, body.flagged, body.labels))
    return one(service.summary_view(table, bound.mailbox, changed))


@router.delete(
    "/messages/{message_id}",
    name="message.delete",
    summary="Move to Trash (200, the message); in Trash, delete for good (204)",
    responses={204: {"description": "Deleted for good (it was in Trash)"}},
)
async def delete_message(message_id: str, request: Request, bound: Writer) -> Response:
    table = Table()
    audit_target(request, "message", message_id)
    message = service.load_message(table, bound.mailbox, message_id)
    moved = service.delete_message(table, message)
    if moved is None:
        audit_target(request, "message", message_id, outcome="deleted")
        return Response(status_code=204)
    audit_target(request, "message", message_id, outcome="moved_to_trash")
    return JSONResponse(one(service.summary_view(table, bound.mailbox, moved)))


@router.post("/messages/{message_id}:move", name="message.move", summary="Move to another folder")
async def move_message(message_id: str, body: MoveBody, request: Request, bound: Writer) -> dict[str, Any]:
    table = Table()
    audit_target(request, "message", message_id, folder=body.folder)
    message = service.load_message(table, bound.mailbox, message_id)
    folder = service.require_folder(table, bound.mailbox, body.folder)
    moved = service.apply_change(table, message, service.move_to(folder.key))
    return one(service.summary_view(table, bound.mailbox, moved))


@router.post("/messages/{message_id}:spam", name="message.spam", summary="Report as spam: moves it to Spam")
async def report_spam(message_id: str, request: Request, bound: Writer) -> dict[str, Any]:
    table = Table()
    audit_target(request, "message", message_id)
    message = service.load_message(table, bound.mailbox, message_id)
    return one(service.summary_view(table, bound.mailbox, service.apply_change(table, message, service.SPAM)))


@router.post(
    "/messages/{message_id}:ham", name="message.ham", summary="Report as not spam: moves it to INBOX"
)
async def report_ham(message_id: str, request: Request, bound: Writer) -> dict[str, Any]:
    table = Table()
    audit_target(request, "message", message_id)
    message = service.load_message(table, bound.mailbox, message_id)
    return one(service.summary_view(table, bound.mailbox, service.apply_change(table, message, service.HAM)))


def _bytes_response(download: service.Download) -> Response:
    if download.redirect is not None:
        # Large: a short-lived pre-signed S3 URL (no Lambda response could carry these bytes).
        return RedirectResponse(download.redirect, status_code=302, headers={"Cache-Control": "no-store"})
    ascii_name = download.filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(download.filename, safe='')}"
    )
    return Response(
        content=download.content,
        media_type=download.content_type,
        headers={
            # Mail content is the sender's: never rendered as a page of the API's origin.
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/messages/{message_id}/raw",
    name="message.raw",
    summary="The message exactly as received or sent (message/rfc822), or a redirect when large",
    responses={200: {"content": {"message/rfc822": {}}}, 302: {"description": "Pre-signed S3 URL"}},
)
async def raw_message(message_id: str, bound: Reader) -> Response:
    message = service.load_message(Table(), bound.mailbox, message_id)
    return _bytes_response(service.raw_download(message))


@router.get(
    "/messages/{message_id}/attachments",
    name="attachment.list",
    summary="The message's attachments (metadata)",
)
async def list_attachments(message_id: str, bound: Reader) -> dict[str, Any]:
    from mailroom.services.mail_views import attachment_view

    message = service.load_message(Table(), bound.mailbox, message_id)
    return {"data": [attachment_view(message["id"], a) for a in message.get("attachments") or []]}


@router.get(
    "/messages/{message_id}/attachments/{index}",
    name="attachment.get",
    summary="An attachment's bytes, or a redirect to a short-lived pre-signed URL when large",
    responses={200: {"content": {"application/octet-stream": {}}}, 302: {"description": "Pre-signed S3 URL"}},
)
async def get_attachment(
    message_id: str, index: Annotated[int, Path(ge=0, le=10_000)], bound: Reader
) -> Response:
    message = service.load_message(Table(), bound.mailbox, message_id)
    return _bytes_response(service.attachment_download(message, index))


# --- threads -------------------------------------------------------------------------------------------


@threads_router.get("/threads", name="thread.list", summary="Threads by latest activity")
async def list_threads(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    page, views = service.list_threads(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    total = max(0, int(bound.mailbox.get("thread_count", 0)))  # maintained with the thread items
    return pagination.envelope(request, page, views, per_page=page_query.per_page, total=total)


@threads_router.get("/threads/{thread_id}", name="thread.get", summary="A thread with its messages in order")
async def get_thread(thread_id: str, bound: Reader) -> dict[str, Any]:
    table = Table()
    thread = service.load_thread(table, bound.mailbox, thread_id)
    return one(service.thread_detail(table, bound.mailbox, thread))
