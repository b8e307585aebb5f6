"""``/api/v0/inboxes/{inboxId}/messages``: send, list, read, label, reply, reply-all, forward and
attachment links, as agentmail-v0-api.txt describes them (views over ``services.v0_mail``).

Status codes: 200 for every success here (the reference names 204 only for deletes); 404 for an
inbox, message or attachment that is not the caller's; 422 with ``errors`` for an invalid body,
a refused header, a url attachment that could not be fetched, or a send SES refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request
from pydantic import Field

from mailroom.api.mailbox_access import BoundMailbox, require_inbox
from mailroom.api.models import Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.v0_messages import (
    ANSWERS,
    HEADER_NAME,
    MAX_ATTACHMENTS,
    SENDS,
    Addresses,
    Aliased,
    Exact,
    Labels,
    V0AttachmentIn,
    V0AttachmentMeta,
    V0Sent,
    listed,
    sent_view,
)
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.mail.compose import MAX_CUSTOM_HEADERS, MAX_RECIPIENTS, MAX_SUBJECT_CHARS
from mailroom.services import sending
from mailroom.services import v0_mail as service
from mailroom.store.table import Item, Table

router = api_router("/api/v0/inboxes/{inboxId}/messages", tags=["v0 messages"])
Reader = Annotated[BoundMailbox, Depends(require_inbox("read"))]
Writer = Annotated[BoundMailbox, Depends(require_inbox("write"))]
Sender = Annotated[BoundMailbox, Depends(require_inbox("send"))]
Pages = Annotated[PageParams, Depends(page_params)]
MessageId = Annotated[
    str,
    Path(alias="messageId", min_length=1, max_length=64, description="A message_id of the inbox (msg_...)"),
]


class V0SendBody(Exact):
    to: Addresses = Field(description=f"string or string[]; to + cc + bcc: 1 to {MAX_RECIPIENTS} addresses")
    cc: Addresses | None = Field(default=None, description="string or string[]")
    bcc: Addresses | None = Field(default=None, description="string or string[]")
    reply_to: Addresses | None = Field(default=None, description="string or string[]")
    subject: str | None = Field(default=None, description=f"At most {MAX_SUBJECT_CHARS} characters, one line")
    text: str | None = Field(default=None, description="Plain text body")
    html: str | None = Field(default=None, description="HTML body")
    labels: Labels = Field(default_factory=list, description="Applied to the sent message")
    attachments: list[V0AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Custom headers, e.g. X-Custom. Address, date, id, threading and MIME headers "
        "(From, To, Subject, Message-ID, Date, In-Reply-To, Content-Type, ...) are refused; values are "
        "one line.",
        json_schema_extra={"maxProperties": MAX_CUSTOM_HEADERS, "propertyNames": {"pattern": HEADER_NAME}},
    )


class V0ReplyBody(Exact):
    text: str | None = Field(default=None, description="Replaces the quoted original (with html)")
    html: str | None = Field(default=None, description="Replaces the quoted original (with text)")
    cc: Addresses | None = Field(default=None, description="string or string[]; reply-all: additional Cc")
    labels: Labels = Field(default_factory=list, description="Applied to the reply")
    attachments: list[V0AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class V0ForwardBody(Exact):
    to: Addresses = Field(description="string or string[]")
    cc: Addresses | None = Field(default=None, description="string or string[]")
    text: str | None = Field(default=None, description="Replaces the original's content (with html)")
    html: str | None = Field(default=None, description="Replaces the original's content (with text)")
    labels: Labels = Field(default_factory=list, description="Applied to the forward")


class V0LabelsBody(Exact):
    labels: Labels = Field(description="Replaces the message's labels (repeats are dropped)")


class V0MessageItem(Aliased):
    inbox_id: str
    thread_id: str
    message_id: str
    direction: Literal["inbound", "outbound"] = Field(description="Received, or sent from the inbox")
    labels: list[str]
    timestamp: Timestamp = Field(description="When it was received or sent")
    from_: str | None = Field(alias="from", description="As in the From header, e.g. 'Name <address>'")
    to: list[str]
    cc: list[str] | None = Field(description="null when there were none")
    subject: str
    preview: str = Field(description="The start of the text")
    size: int = Field(ge=0, description="Bytes of the message as stored (MIME)")


class V0Attachment(V0AttachmentMeta):
    download_url: str = Field(description="A pre-signed GET of the bytes; no Authorization header needed")
    expires_at: Timestamp = Field(description="When download_url stops working (one hour)")


class V0Message(V0MessageItem):
    reply_to: list[str] | None = Field(description="null when the message has no Reply-To")
    bcc: list[str] | None = Field(description="Sent messages only; null otherwise")
    text: str | None
    html: str | None
    in_reply_to: str | None = Field(description="The Message-ID this answers, if any")
    references: list[str] | None = Field(description="The thread's Message-IDs; null when none")
    headers: dict[str, str] = Field(
        description="Headers no other field shows (address, subject, date, id and MIME headers left out); "
        "a repeated header keeps its first value"
    )
    attachments: list[V0AttachmentMeta] = Field(
        description="Not in the reference: ids for the attachment endpoint"
    )
    created_at: Timestamp
    updated_at: Timestamp = Field(description="Last change (labels)")


def _readable(bound: Reader, message_id: MessageId) -> Item:
    return service.load_message(Table(), bound.mailbox, message_id)


def _writable(bound: Writer, message_id: MessageId) -> Item:
    return service.load_message(Table(), bound.mailbox, message_id)


# The message named in the path, in an inbox the caller may read (or change).
ReadableMessage = Annotated[Item, Depends(_readable)]
WritableMessage = Annotated[Item, Depends(_writable)]
MESSAGE_NOT_FOUND = "not_found: no such inbox, or no such message in it"


@router.post(
    "/send",
    name="v0.message.send",
    response_model=V0Sent,
    summary="Send a message",
    responses=errors(**SENDS),
)
async def send_message(body: V0SendBody, request: Request, bound: Sender) -> dict[str, Any]:
    """Send a new email from the inbox: text and/or HTML, Cc, Bcc, Reply-To, custom headers, and
    attachments given as base64 `content` or a `url` to fetch. It is kept in the inbox as a sent
    message, threaded like received mail. Returns its ids."""
    mailbox = bound.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    send_request = sending.SendRequest(
        to=listed(body.to),
        cc=listed(body.cc),
        bcc=listed(body.bcc),
        reply_to=listed(body.reply_to),
        subject=body.subject or "",
        text=body.text,
        html=body.html,
        headers=dict(body.headers),
        labels=list(body.labels),
    )
    sent = await service.send(Table(), mailbox, send_request, [a.as_new() for a in body.attachments])
    audit_target(request, "message", sent.message_id, mailbox_id=mailbox["id"])
    return sent_view(sent)


@router.get(
    "",
    name="v0.message.list",
    response_model=PageOf[V0MessageItem],
    summary="List messages",
    responses=errors(e404="not_found: no such inbox"),
)
async def list_messages(bound: Reader, pages: Pages) -> dict[str, Any]:
    """The inbox's sent and received messages, newest first, a numbered page at a time (without
    bodies: get a message for them)."""
    data, total = service.list_messages(Table(), bound.mailbox, offset=pages.offset, limit=pages.page_size)
    return page_body(data, total=total, params=pages)


@router.get(
    "/{messageId}",
    name="v0.message.get",
    response_model=V0Message,
    summary="Get a message",
    responses=errors(e404=MESSAGE_NOT_FOUND),
)
async def get_message(message: ReadableMessage) -> dict[str, Any]:
    """One message with its full content: text, HTML, headers, threading references and its
    attachments' ids."""
    return service.message_view(message)


@router.patch(
    "/{messageId}",
    name="v0.message.update",
    response_model=V0Message,
    summary="Update a message's labels",
    responses=errors(e404=MESSAGE_NOT_FOUND, e422="validation_error, too_many_labels"),
)
async def update_message(message: WritableMessage, body: V0LabelsBody, request: Request) -> dict[str, Any]:
    """Replace the message's labels (an empty list clears them). Returns the message in full."""
    audit_target(request, "message", message["id"], labels=body.labels)
    return service.set_labels(Table(), message, body.labels)


async def _answer(
    mode: str, message_id: str, body: V0ReplyBody | V0ForwardBody, request: Request, bound: BoundMailbox
) -> dict[str, Any]:
    """Reply, reply to all or forward ``message_id``, audited with the new message."""
    audit_target(request, "message", message_id, mode=mode)
    given = service.Compose(
        text=body.text,
        html=body.html,
        to=listed(body.to) if isinstance(body, V0ForwardBody) else None,
        cc=listed(body.cc),
        labels=list(body.labels),
        attachments=tuple(a.as_new() for a in body.attachments) if isinstance(body, V0ReplyBody) else (),
    )
    table = Table()
    if isinstance(body, V0ForwardBody):
        sent = await service.forward(table, bound.mailbox, message_id, given)
    else:
        sent = await service.reply(table, bound.mailbox, message_id, given, reply_all=mode == "reply-all")
    audit_target(request, "message", sent.message_id, mode=mode, original=message_id)
    return sent_view(sent)


@router.post(
    "/{messageId}/reply",
    name="v0.message.reply",
    response_model=V0Sent,
    summary="Reply to a message",
    responses=errors(**ANSWERS),
)
async def reply(message_id: MessageId, body: V0ReplyBody, request: Request, bound: Sender) -> dict[str, Any]:
    """Reply to the sender only (or to the Reply-To address if the message has one), in the same
    thread (In-Reply-To and References are set). Without text or html the reply quotes the
    original. Returns the reply's ids."""
    return await _answer("reply", message_id, body, request, bound)


@router.post(
    "/{messageId}/reply-all",
    name="v0.message.reply_all",
    response_model=V0Sent,
    summary="Reply to all recipients of a message",
    responses=errors(**ANSWERS),
)
async def reply_all(
    message_id: MessageId, body: V0ReplyBody, request: Request, bound: Sender
) -> dict[str, Any]:
    """Reply to the sender and every To and Cc recipient except this inbox, in the same thread
    (In-Reply-To and References are set); `cc` adds recipients. Returns the reply's ids."""
    return await _answer("reply-all", message_id, body, request, bound)


@router.post(
    "/{messageId}/forward",
    name="v0.message.forward",
    response_model=V0Sent,
    summary="Forward a message",
    responses=errors(**ANSWERS),
)
async def forward(
    message_id: MessageId, body: V0ForwardBody, request: Request, bound: Sender
) -> dict[str, Any]:
    """Forward the message to new recipients in a new thread, with its attachments, and with its
    content unless text or html is given. Returns the forward's ids."""
    return await _answer("forward", message_id, body, request, bound)


@router.get(
    "/{messageId}/attachments/{attachmentId}",
    name="v0.attachment.get",
    response_model=V0Attachment,
    summary="Get an attachment's download URL",
    responses=errors(e404="not_found: no such inbox, message, or attachment of the message"),
)
async def get_attachment(
    message: ReadableMessage,
    attachment_id: Annotated[
        str,
        Path(
            alias="attachmentId", min_length=1, max_length=64, description="An attachment_id of the message"
        ),
    ],
) -> dict[str, Any]:
    """An attachment's metadata and a pre-signed `download_url`, valid for one hour
    (`expires_at`); fetch it without an Authorization header."""
    return service.attachment(message, attachment_id)
