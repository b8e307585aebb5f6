"""``/api/v0/inboxes/{inboxId}/messages``: send, list, read, label, reply, reply-all, forward and
attachment links, as agentmail-v0-api.txt describes them (views over ``services.v0_mail``).

Status codes: 200 for every success here (the reference names 204 only for deletes); 404 for an
inbox, message or attachment that is not the caller's; 422 with ``errors`` for an invalid body,
a refused header, a url attachment that could not be fetched, or a send SES refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from mailroom.api.mailbox_access import BoundMailbox, require_inbox
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.messages import Label
from mailroom.api.v0_pages import PageParams, page_body, page_params
from mailroom.services import sending
from mailroom.services import v0_mail as service
from mailroom.services.message_detail import load_message
from mailroom.store.mail import MAX_LABELS
from mailroom.store.table import Table

router = api_router("/api/v0/inboxes/{inboxId}/messages", tags=["v0 messages"])
Reader = Annotated[BoundMailbox, Depends(require_inbox("read"))]
Writer = Annotated[BoundMailbox, Depends(require_inbox("write"))]
Sender = Annotated[BoundMailbox, Depends(require_inbox("send"))]
Pages = Annotated[PageParams, Depends(page_params)]
MessageId = Annotated[str, Path(alias="messageId", min_length=1, max_length=64)]
MAX_ADDRESSES = 100  # per field; the send caps to + cc + bcc at 50 with a precise error
T = TypeVar("T")

Addresses = str | Annotated[list[str], Field(max_length=MAX_ADDRESSES)]


class _Exact(BaseModel):
    # Unknown fields are refused and nothing is stripped: a CR/LF in a header must reach the
    # injection check rather than silently disappear.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _listed(value: Addresses | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


class AttachmentIn(_Exact):
    filename: str | None = Field(default=None, max_length=255)
    content_type: str | None = Field(default=None, max_length=255, description="e.g. application/pdf")
    content: str | None = Field(default=None, description="The bytes, base64-encoded")
    url: str | None = Field(
        default=None, max_length=2048, description="Or an https URL to fetch them from (public hosts only)"
    )

    def as_new(self) -> service.NewAttachment:
        return service.NewAttachment(
            filename=self.filename, content_type=self.content_type, content=self.content, url=self.url
        )


class SendBody(_Exact):
    to: Addresses = Field(description="string or string[]")
    cc: Addresses | None = None
    bcc: Addresses | None = None
    reply_to: Addresses | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    labels: list[str] = Field(default_factory=list, description="Applied to the sent message")
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=100)
    headers: dict[str, str] = Field(
        default_factory=dict, description="Custom headers (From, To, Message-ID, Date, ... are refused)"
    )


class ReplyBody(_Exact):
    text: str | None = None
    html: str | None = None
    cc: Addresses | None = Field(default=None, description="Reply-all: additional Cc recipients")
    labels: list[str] = Field(default_factory=list)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=100)


class ForwardBody(_Exact):
    to: Addresses = Field(description="string or string[]")
    cc: Addresses | None = None
    text: str | None = Field(default=None, description="Replaces the original's content")
    html: str | None = Field(default=None, description="Replaces the original's content")
    labels: list[str] = Field(default_factory=list)


class LabelsBody(_Exact):
    labels: list[Label] = Field(max_length=MAX_LABELS, description="Replaces the message's labels")


class Sent(BaseModel):
    message_id: str
    thread_id: str


class MessageItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    inbox_id: str
    thread_id: str
    message_id: str
    direction: Literal["inbound", "outbound"]
    labels: list[str]
    timestamp: str
    from_: str | None = Field(alias="from")
    to: list[str]
    cc: list[str] | None
    subject: str
    preview: str
    size: int


class AttachmentMeta(BaseModel):
    attachment_id: str
    filename: str | None
    size: int
    content_type: str | None
    content_disposition: str
    content_id: str | None


class Attachment(AttachmentMeta):
    download_url: str
    expires_at: str


class Message(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    inbox_id: str
    thread_id: str
    message_id: str
    direction: Literal["inbound", "outbound"]
    labels: list[str]
    timestamp: str
    from_: str | None = Field(alias="from")
    reply_to: list[str] | None
    to: list[str]
    cc: list[str] | None
    bcc: list[str] | None
    subject: str
    preview: str
    text: str | None
    html: str | None
    in_reply_to: str | None
    references: list[str] | None
    headers: dict[str, Any]
    size: int
    attachments: list[AttachmentMeta]
    created_at: str
    updated_at: str


class PageOf(BaseModel, Generic[T]):
    data: list[T]
    total: int
    page: int
    page_size: int


def _sent(sent: sending.Sent) -> dict[str, Any]:
    return {"message_id": sent.message_id, "thread_id": sent.thread_id}


@router.post(
    "/send",
    name="v0.message.send",
    response_model=Sent,
    summary="Send a new email from the inbox (text, HTML, attachments by content or URL, headers)",
)
async def send_message(body: SendBody, request: Request, bound: Sender) -> dict[str, Any]:
    mailbox = bound.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    send_request = sending.SendRequest(
        to=_listed(body.to),
        cc=_listed(body.cc),
        bcc=_listed(body.bcc),
        reply_to=_listed(body.reply_to),
        subject=body.subject or "",
        text=body.text,
        html=body.html,
        headers=dict(body.headers),
        labels=list(body.labels),
    )
    sent = await service.send(Table(), mailbox, send_request, [a.as_new() for a in body.attachments])
    audit_target(request, "message", sent.message_id, mailbox_id=mailbox["id"])
    return _sent(sent)


@router.get(
    "",
    name="v0.message.list",
    response_model=PageOf[MessageItem],
    response_model_by_alias=True,
    summary="Sent and received messages, newest first",
)
async def list_messages(bound: Reader, pages: Pages) -> dict[str, Any]:
    data, total = service.list_messages(Table(), bound.mailbox, offset=pages.offset, limit=pages.page_size)
    return page_body(data, total=total, params=pages)


@router.get(
    "/{messageId}",
    name="v0.message.get",
    response_model=Message,
    response_model_by_alias=True,
    summary="A message with its full content (text, HTML, headers, references)",
)
async def get_message(message_id: MessageId, bound: Reader) -> dict[str, Any]:
    table = Table()
    return service.message_view(load_message(table, bound.mailbox, message_id))


@router.patch(
    "/{messageId}",
    name="v0.message.update",
    response_model=Message,
    response_model_by_alias=True,
    summary="Replace a message's labels",
)
async def update_message(
    message_id: MessageId, body: LabelsBody, request: Request, bound: Writer
) -> dict[str, Any]:
    audit_target(request, "message", message_id, labels=body.labels)
    return service.set_labels(Table(), bound.mailbox, message_id, body.labels)


async def _answer(
    mode: str, message_id: str, body: ReplyBody | ForwardBody, request: Request, bound: BoundMailbox
) -> dict[str, Any]:
    """Reply, reply to all or forward ``message_id``, audited with the new message."""
    audit_target(request, "message", message_id, mode=mode)
    given = service.Compose(
        text=body.text,
        html=body.html,
        to=_listed(body.to) if isinstance(body, ForwardBody) else None,
        cc=_listed(body.cc),
        labels=list(body.labels),
        attachments=tuple(a.as_new() for a in body.attachments) if isinstance(body, ReplyBody) else (),
    )
    table = Table()
    if isinstance(body, ForwardBody):
        sent = await service.forward(table, bound.mailbox, message_id, given)
    else:
        sent = await service.reply(table, bound.mailbox, message_id, given, reply_all=mode == "reply-all")
    audit_target(request, "message", sent.message_id, mode=mode, original=message_id)
    return _sent(sent)


@router.post(
    "/{messageId}/reply",
    name="v0.message.reply",
    response_model=Sent,
    summary="Reply to the sender (or the Reply-To), threaded with In-Reply-To and References",
)
async def reply(message_id: MessageId, body: ReplyBody, request: Request, bound: Sender) -> dict[str, Any]:
    return await _answer("reply", message_id, body, request, bound)


@router.post(
    "/{messageId}/reply-all",
    name="v0.message.reply_all",
    response_model=Sent,
    summary="Reply to the sender and every To and Cc recipient except this inbox",
)
async def reply_all(
    message_id: MessageId, body: ReplyBody, request: Request, bound: Sender
) -> dict[str, Any]:
    return await _answer("reply-all", message_id, body, request, bound)


@router.post(
    "/{messageId}/forward",
    name="v0.message.forward",
    response_model=Sent,
    summary="Forward to new recipients in a new thread, with the original's content and attachments",
)
async def forward(
    message_id: MessageId, body: ForwardBody, request: Request, bound: Sender
) -> dict[str, Any]:
    return await _answer("forward", message_id, body, request, bound)


@router.get(
    "/{messageId}/attachments/{attachmentId}",
    name="v0.attachment.get",
    response_model=Attachment,
    summary="Attachment metadata and a pre-signed download URL (valid one hour)",
)
async def get_attachment(
    message_id: MessageId,
    attachment_id: Annotated[str, Path(alias="attachmentId", min_length=1, max_length=64)],
    bound: Reader,
) -> dict[str, Any]:
    message = load_message(Table(), bound.mailbox, message_id)
    return service.attachment(message, attachment_id)
