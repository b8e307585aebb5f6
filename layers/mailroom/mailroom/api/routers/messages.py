"""The Messages API (``/api/v1/messages...``, ``/api/v1/threads...``): a message token reads and
organizes the mail of its own mailbox. No endpoint takes a mailbox id: the mailbox is the token's
(``require_mailbox``), so another mailbox's message ids are simply not found.

Scopes: ``messages:read`` for reads, ``messages:write`` for changes. Folder ``{path}`` in URLs is
the folder's path, URL-encoded (a ``/`` inside it may be sent as is or as ``%2F``), or its key;
see docs/messages.md for every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from mailroom.api import downloads, pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.message_actions import (
    BlockBody,
    BlockedSenderView,
    BulkBody,
    BulkResult,
    EmptyBody,
    EmptyResult,
    FolderBody,
    FolderView,
    MessagePatch,
    MoveBody,
    ThreadDetail,
    ThreadView,
)
from mailroom.api.schemas.messages import AttachmentList, MessageFull, MessageSummary
from mailroom.services import (
    blocked_senders,
    folders,
    message_bulk,
    message_changes,
    message_detail,
    message_downloads,
    message_listing,
    message_removal,
    threads,
)
from mailroom.services.folders import Folder
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["messages"])
threads_router = api_router("/api/v1", tags=["threads"])

Reader = Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]
Writer = Annotated[BoundMailbox, Depends(require_mailbox("messages:write"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
MessageIdPath = Annotated[str, Path(description="The message's id (msg_...); another mailbox's is 404")]
# Summaries leave out what a message does not have (``bcc``, ``delivery``: sent mail only).
SUMMARY: dict[str, Any] = {"response_model_exclude_unset": True}
MESSAGE_404 = errors(e404="not_found: no such message in this mailbox")


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    mailbox: Item
    message: Item


@dataclass(frozen=True, slots=True)
class OpenedFolder:
    mailbox: Item
    folder: Folder


def _readable_message(bound: Reader, message_id: MessageIdPath) -> OpenedMessage:
    return OpenedMessage(bound.mailbox, message_detail.load_message(Table(), bound.mailbox, message_id))


def _writable_message(request: Request, bound: Writer, message_id: MessageIdPath) -> OpenedMessage:
    audit_target(request, "message", message_id)
    return OpenedMessage(bound.mailbox, message_detail.load_message(Table(), bound.mailbox, message_id))


def _writable_folder(
    request: Request,
    bound: Writer,
    path: Annotated[
        str,
        Path(
            description="The folder's path (a '/' inside it as is or as %2F; system names in any case) "
            "or its key (f01J...: use it for paths with ?, # or %)"
        ),
    ],
) -> OpenedFolder:
    folder = folders.folder_in_path(Table(), bound.mailbox, path)
    audit_target(request, "folder", folder.key, path=folder.path)
    return OpenedFolder(bound.mailbox, folder)


ReadableMessage = Annotated[OpenedMessage, Depends(_readable_message)]
WritableMessage = Annotated[OpenedMessage, Depends(_writable_message)]
WritableFolder = Annotated[OpenedFolder, Depends(_writable_folder)]


# --- listing -------------------------------------------------------------------------------------


@router.get(
    "/messages",
    name="message.list",
    response_model=ListOf[MessageSummary],
    summary="List the mailbox's messages (filters, cursor pages)",
    responses=errors(
        e422="unknown_folder (no such folder), invalid_folder, invalid_cursor, or validation_error "
        "(e.g. since not earlier than before, thread not a thr_ id)"
    ),
    **SUMMARY,
)
async def list_messages(
    request: Request,
    bound: Reader,
    page_query: PageParams,
    folder: Annotated[str | None, Query(max_length=300, description="Folder path or key")] = None,
    thread: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^thr_[0-9A-HJKMNP-TV-Z]{26}$", description="Thread id (thr_...)"),
    ] = None,
    unread: Annotated[bool | None, Query(description="Only unread (true) or read (false) messages")] = None,
    flagged: Annotated[bool | None, Query(description="Only flagged (true) or unflagged (false)")] = None,
    label: Annotated[
        str | None,
        Query(min_length=1, max_length=message_changes.MAX_LABEL_CHARS, description="Exact label"),
    ] = None,
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
    since: Annotated[
        AwareDatetime | None, Query(description="Received at or after (ISO 8601 with a zone)")
    ] = None,
    before: Annotated[
        AwareDatetime | None,
        Query(description="Received before (ISO 8601 with a zone); must be later than since"),
    ] = None,
    order: Annotated[Literal["newest", "oldest"], Query(description="Sort by arrival")] = "newest",
) -> dict[str, Any]:
    """Every message of the mailbox (all folders, Trash and Spam included), newest first, as
    summaries without bodies. Filters combine: `folder` and `thread` pick an index, `since`/`before`
    bound dates, the others filter what is read (case-insensitive substring for from/to/subject).
    `meta.total` is exact when only folder, thread or unread apply, and null otherwise. Follow
    `links.next` for the next page; GET /api/v1/messages/{id} for a message's bodies."""
    filters = message_listing.MessageFilters(
        folder=folder,
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
    listing = message_listing.list_messages(
        Table(), bound.mailbox, filters, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


# --- fixed paths before /messages/{message_id} -------------------------------------------------------


@router.post(
    "/messages:bulk",
    name="message.bulk",
    response_model=BulkResult,
    summary=f"One action on up to {message_bulk.MAX_BULK} messages",
    responses={
        207: {"model": BulkResult, "description": "Some messages failed: their rows say why"},
        **errors(e422="unknown_folder or invalid_folder (move), validation_error (a missing argument)"),
    },
)
async def bulk(body: BulkBody, request: Request, bound: Writer) -> JSONResponse:
    """Mark read/unread, flag/unflag, move, delete, report spam/ham, or add/remove labels on many
    messages at once. Answers one row per distinct id, in request order: 200 when every row is ok,
    207 when some failed (unknown ids, a message that kept changing)."""
    audit_target(request, "messages", f"{len(body.ids)} messages", action=body.action, ids=body.ids)
    outcome = message_bulk.bulk(
        Table(), bound.mailbox, body.ids, body.action, folder=body.folder, labels=body.labels
    )
    # 207 when only some succeeded, as domains:bulk-add does; each row says what happened to it.
    return JSONResponse(
        status_code=207 if outcome.failed else 200,
        content={"data": outcome.rows, "meta": {"succeeded": outcome.succeeded, "failed": outcome.failed}},
    )


@router.get(
    "/messages/folders",
    name="folder.list",
    response_model=ListOf[FolderView],
    summary="Folders with their message and unread counts",
)
async def list_folders(bound: Reader) -> dict[str, Any]:
    """The six system folders (INBOX, Sent, Drafts, Trash, Spam, Archive) in that order, then the
    custom ones by path, each with its maintained `total` and `unread`. One page holds them all."""
    views = folders.list_folders(Table(), bound.mailbox)
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
    responses=errors(
        e409="folder_exists: a folder with this path exists, or the path is a system folder's",
        e422="invalid_folder (path rules), folder_limit_reached (200 custom folders per mailbox)",
    ),
)
async def create_folder(body: FolderBody, request: Request, bound: Writer) -> dict[str, Any]:
    """A custom folder at `path` ('/' separates levels; a parent need not exist). Its `key`
    (f01J...) never changes, even when it is renamed."""
    audit_target(request, "folder", "-", path=body.path)
    view = folders.create_folder(Table(), bound.mailbox, body.path)
    audit_target(request, "folder", view["key"], path=view["path"])
    return one(view)


@router.post(
    "/messages/folders:empty",
    name="folder.empty",
    response_model=One[EmptyResult],
    summary=f"Remove up to {message_removal.EMPTY_BATCH} messages of Trash or Spam for good; "
    "repeat while more",
    responses=errors(e422="folder_not_emptiable (only Trash and Spam), unknown_folder, invalid_folder"),
)
async def empty_folder(body: EmptyBody, request: Request, bound: Writer) -> dict[str, Any]:
    """Delete for good the oldest messages of Trash or Spam, at most 100 per request. While `more`
    is true, call again with a new Idempotency-Key (a reused key replays the first answer)."""
    table = Table()
    folder = folders.require_folder(table, bound.mailbox, body.folder)
    audit_target(request, "folder", folder.key, path=folder.path)
    result = message_removal.empty_folder(table, bound.mailbox, folder)
    audit_target(request, "folder", folder.key, path=folder.path, removed=result["removed"])
    return one(result)


@router.patch(
    "/messages/folders/{path:path}",
    name="folder.rename",
    response_model=One[FolderView],
    summary="Rename a custom folder (its messages stay in it)",
    responses=errors(
        e404="not_found: no such folder in this mailbox",
        e409="folder_exists (the new path is taken), system_folder_protected, folder_changed (retry)",
        e422="invalid_folder: the new path breaks the path rules",
    ),
)
async def rename_folder(body: FolderBody, request: Request, opened: WritableFolder) -> dict[str, Any]:
    """Give a custom folder a new path; its key and messages stay. Renaming `Projects` does not
    rename `Projects/2026`: paths are names only. System folders cannot be renamed."""
    audit_target(request, "folder", opened.folder.key, path=opened.folder.path, new_path=body.path)
    return one(folders.rename_folder(Table(), opened.mailbox, opened.folder, body.path))


@router.delete(
    "/messages/folders/{path:path}",
    name="folder.delete",
    status_code=204,
    summary="Delete an empty custom folder (system folders cannot be deleted)",
    responses=errors(
        e404="not_found: no such folder in this mailbox",
        e409="folder_not_empty (move or delete its messages first), system_folder_protected",
    ),
)
async def delete_folder(opened: WritableFolder) -> Response:
    """Delete a custom folder that holds no messages (POST /api/v1/messages:bulk moves or deletes
    them first)."""
    folders.delete_folder(Table(), opened.mailbox, opened.folder)
    return Response(status_code=204)


@router.get(
    "/messages/blocked-senders",
    name="blocked_sender.list",
    response_model=ListOf[BlockedSenderView],
    summary="Senders this mailbox refuses",
)
async def list_blocked(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    """Addresses and @domains whose mail this mailbox drops on arrival, with a maintained total."""
    listing = blocked_senders.list_blocked(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@router.post(
    "/messages/blocked-senders",
    name="blocked_sender.create",
    status_code=201,
    response_model=One[BlockedSenderView],
    summary="Refuse mail from an address or a whole domain (@example.org)",
    responses=errors(
        e409="already_blocked: this pattern is already blocked",
        e422="invalid_pattern (neither an address nor @domain), blocked_sender_limit_reached (1000)",
    ),
)
async def block_sender(body: BlockBody, request: Request, bound: Writer) -> dict[str, Any]:
    """From now on, mail from this address (or any address of this domain) is dropped on arrival
    for this mailbox only. Reporting a message as spam does not block its sender: this does."""
    audit_target(request, "blocked_sender", body.pattern)
    return one(blocked_senders.block(Table(), bound.mailbox, body.pattern))


@router.delete(
    "/messages/blocked-senders/{pattern}",
    name="blocked_sender.delete",
    status_code=204,
    summary="Stop refusing a sender ({pattern}: the address or @domain, URL-encoded)",
    responses=errors(e404="not_found: this pattern is not blocked"),
)
async def unblock_sender(
    pattern: Annotated[str, Path(description="The blocked sender's id (its pattern), URL-encoded")],
    request: Request,
    bound: Writer,
) -> Response:
    """Accept mail from this sender again: `{pattern}` is the list's `id` (the address or
    @domain), URL-encoded, e.g. %40example.org."""
    audit_target(request, "blocked_sender", pattern)
    blocked_senders.unblock(Table(), bound.mailbox, pattern)
    return Response(status_code=204)


# --- one message -------------------------------------------------------------------------------------


@router.get(
    "/messages/{message_id}",
    name="message.get",
    response_model=One[MessageFull],
    summary="A message with its bodies (HTML as sent and sanitized)",
    responses=MESSAGE_404,
    **SUMMARY,
)
async def get_message(opened: ReadableMessage) -> dict[str, Any]:
    """The message's metadata with its text, its HTML as sent, the HTML sanitized for display, and
    its headers. Bodies that would push the response past 4 MB are left out and named in `omitted`
    (GET .../raw has everything)."""
    return one(message_detail.full_view(Table(), opened.mailbox, opened.message))


@router.patch(
    "/messages/{message_id}",
    name="message.update",
    response_model=One[MessageSummary],
    summary="Set seen, flagged, labels",
    responses=errors(
        e404="not_found: no such message in this mailbox",
        e409="message_busy: it kept changing meanwhile (retryable)",
        e422="too_many_labels, validation_error (an empty body, an unknown field)",
    ),
    **SUMMARY,
)
async def update_message(body: MessagePatch, request: Request, opened: WritableMessage) -> dict[str, Any]:
    """Mark read or unread, flag or unflag, or replace the labels; answers the message's summary."""
    audit_target(request, "message", opened.message["id"], fields=sorted(body.model_fields_set))
    summary = message_changes.update_message(
        Table(), opened.mailbox, opened.message, seen=body.seen, flagged=body.flagged, labels=body.labels
    )
    return one(summary)


@router.delete(
    "/messages/{message_id}",
    name="message.delete",
    response_model=One[MessageSummary],
    summary="Move to Trash (200, the message); in Trash, delete for good (204)",
    responses={
        204: {"description": "Deleted for good (it was in Trash): the message and its bytes are gone"},
        **errors(e404="not_found: no such message in this mailbox", e409="message_busy (retryable)"),
    },
    **SUMMARY,
)
async def delete_message(request: Request, opened: WritableMessage) -> Response | dict[str, Any]:
    """Outside Trash: moves the message to Trash and answers 200 with it. In Trash: deletes it for
    good (its bytes too) and answers 204. Delete twice to remove a message for good."""
    deleted = message_removal.remove_message(Table(), opened.mailbox, opened.message)
    if deleted.moved is None:
        audit_target(request, "message", opened.message["id"], outcome="deleted")
        return Response(status_code=204)
    audit_target(request, "message", opened.message["id"], outcome="moved_to_trash")
    return one(deleted.moved)


@router.post(
    "/messages/{message_id}:move",
    name="message.move",
    response_model=One[MessageSummary],
    summary="Move to another folder",
    responses=errors(
        e404="not_found: no such message in this mailbox",
        e409="message_busy (retryable)",
        e422="unknown_folder, invalid_folder",
    ),
    **SUMMARY,
)
async def move_message(body: MoveBody, request: Request, opened: WritableMessage) -> dict[str, Any]:
    """Move the message to the folder named by path or key; answers its summary."""
    audit_target(request, "message", opened.message["id"], folder=body.folder)
    return one(message_changes.move_message(Table(), opened.mailbox, opened.message, body.folder))


@router.post(
    "/messages/{message_id}:spam",
    name="message.spam",
    response_model=One[MessageSummary],
    summary="Report as spam: moves it to Spam",
    responses=errors(e404="not_found: no such message in this mailbox", e409="message_busy (retryable)"),
    **SUMMARY,
)
async def report_spam(opened: WritableMessage) -> dict[str, Any]:
    """Move to Spam and record `verdicts.user_report: "spam"`. The sender is not blocked (POST
    /api/v1/messages/blocked-senders does that)."""
    return one(message_changes.report(Table(), opened.mailbox, opened.message, "spam"))


@router.post(
    "/messages/{message_id}:ham",
    name="message.ham",
    response_model=One[MessageSummary],
    summary="Report as not spam: moves it to INBOX",
    responses=errors(e404="not_found: no such message in this mailbox", e409="message_busy (retryable)"),
    **SUMMARY,
)
async def report_ham(opened: WritableMessage) -> dict[str, Any]:
    """Move to INBOX and record `verdicts.user_report: "ham"`."""
    return one(message_changes.report(Table(), opened.mailbox, opened.message, "ham"))


@router.get(
    "/messages/{message_id}/raw",
    name="message.raw",
    summary="The message exactly as received or sent (message/rfc822), or a redirect when large",
    response_class=Response,
    responses={**downloads.documented("message/rfc822", "The raw message (RFC 5322 bytes)"), **MESSAGE_404},
)
async def raw_message(opened: ReadableMessage) -> Response:
    """The message's bytes as received or sent, for archiving, re-parsing or verifying signatures.
    Up to 4 MiB in the response; larger, a 302 to a short-lived download URL."""
    return downloads.response(message_downloads.raw_download(opened.message))


@router.get(
    "/messages/{message_id}/attachments",
    name="attachment.list",
    response_model=AttachmentList,
    summary="The message's attachments (metadata)",
    responses=MESSAGE_404,
)
async def list_attachments(opened: ReadableMessage) -> dict[str, Any]:
    """Each attachment's index, file name, type, size, disposition and the URL of its bytes."""
    return {"data": message_downloads.attachment_views(opened.message)}


@router.get(
    "/messages/{message_id}/attachments/{index}",
    name="attachment.get",
    summary="An attachment's bytes, or a redirect to a short-lived pre-signed URL when large",
    response_class=Response,
    responses={
        **downloads.documented(
            "*/*",
            "The bytes, with the attachment's own Content-Type (application/octet-stream when it is "
            "not a plain type/subtype)",
        ),
        **errors(e404="not_found: no such message, or no attachment at this index"),
    },
)
async def get_attachment(
    opened: ReadableMessage,
    index: Annotated[int, Path(ge=0, le=10_000, description="The attachment's index (see its url)")],
) -> Response:
    """An attachment's bytes as a download. Up to 4 MiB in the response; larger, a 302 to a
    short-lived download URL."""
    return downloads.response(message_downloads.attachment_download(opened.message, index))


# --- threads -------------------------------------------------------------------------------------------


@threads_router.get(
    "/threads",
    name="thread.list",
    response_model=ListOf[ThreadView],
    summary="Threads by latest activity",
    responses=errors(e422="invalid_cursor, validation_error"),
)
async def list_threads(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    """Conversations, most recently active first, with their counts, participants and labels;
    `meta.total` is the mailbox's maintained thread count. GET /api/v1/threads/{id} for messages."""
    listing = threads.list_threads(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@threads_router.get(
    "/threads/{thread_id}",
    name="thread.get",
    response_model=One[ThreadDetail],
    summary="A thread with its messages in order",
    responses=errors(e404="not_found: no such thread in this mailbox"),
    **SUMMARY,
)
async def get_thread(
    thread_id: Annotated[str, Path(description="The thread's id (thr_...)")], bound: Reader
) -> dict[str, Any]:
    """The thread and its first 50 messages, oldest first, with their bodies while they fit 2 MB
    (later ones have `body_included: false`). `links.messages_next` lists the rest."""
    table = Table()
    thread = threads.load_thread(table, bound.mailbox, thread_id)
    return one(threads.thread_detail(table, bound.mailbox, thread))
