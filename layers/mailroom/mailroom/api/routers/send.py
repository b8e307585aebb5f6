"""Sending as the token's mailbox: ``POST /api/v1/messages/send`` and the compose helpers
``GET /api/v1/messages/{uid}/reply``, ``/reply-all`` and ``/forward`` (served by SendFunction; the
rest of ``/api/v1/messages/...`` is the messages function's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import One, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.services import prefill, sending
from mailroom.services.mail_views import message_summary
from mailroom.store.table import Table

router = api_router("/api/v1/messages", tags=["sending"])
SEND = require_mailbox("messages:send")
READ = require_mailbox("messages:read")
MAX_LIST = 100  # per address field; compose caps the total at 50 recipients with a precise error


class _Exact(BaseModel):
    # Unknown fields are refused, and nothing is stripped: a trailing CR/LF in a subject or header
    # must reach the injection check rather than silently disappear.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class AttachmentIn(_Exact):
    filename: str | None = Field(default=None, max_length=255)
    content_type: str | None = Field(default=None, max_length=255, description="e.g. application/pdf")
    content: str | None = Field(default=None, description="The bytes, base64-encoded.")
    url: str | None = Field(default=None, description="Not supported: send content instead.")
    message_id: str | None = Field(
        default=None, max_length=64, description="With index: an attachment of a message of this mailbox"
    )
    index: int | None = Field(default=None, ge=0, le=10_000)
    content_id: str | None = Field(default=None, max_length=255, description="For inline (cid:) parts")
    inline: bool | None = None

    @field_validator("url")
    @classmethod
    def no_urls(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("attachments by URL are not supported; send the content (base64)")
        return value


Addresses = str | list[str]


class SendBody(_Exact):
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=998,
        description="The mailbox's address (default) or an alias that delivers to it",
    )
    to: Addresses | None = Field(default=None, description="string or string[]")
    cc: Addresses | None = None
    bcc: Addresses | None = None
    reply_to: Addresses | None = None
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=100)
    headers: dict[str, str] = Field(default_factory=dict, description="Custom headers (not reserved ones)")
    labels: list[str] = Field(default_factory=list, description="Applied to the Sent copy")
    in_reply_to: str | None = Field(default=None, max_length=998, description="Message-ID replied to")
    references: Addresses | None = Field(default=None, description="Message-IDs of the thread")

    @field_validator("to", "cc", "bcc", "reply_to", "references")
    @classmethod
    def bounded(cls, value: Addresses | None) -> Addresses | None:
        if isinstance(value, list) and len(value) > MAX_LIST:
            raise ValueError(f"at most {MAX_LIST} entries")
        return value

    def to_request(self) -> sending.SendRequest:
        def listed(value: Addresses | None) -> list[str]:
            return [value] if isinstance(value, str) else list(value or [])

        return sending.SendRequest(
            sender=self.from_,
            to=listed(self.to),
            cc=listed(self.cc),
            bcc=listed(self.bcc),
            reply_to=listed(self.reply_to),
            subject=self.subject,
            text=self.text,
            html=self.html,
            attachments=[
                sending.AttachmentInput(
                    filename=a.filename,
                    content_type=a.content_type,
                    content=a.content,
                    message_id=a.message_id,
                    index=a.index,
                    content_id=a.content_id,
                    inline=a.inline,
                )
                for a in self.attachments
            ],
            headers=dict(self.headers),
            labels=list(self.labels),
            in_reply_to=self.in_reply_to,
            references=listed(self.references),
        )


class SentView(BaseModel):
    message_id: str
    thread_id: str
    rfc_message_id: str | None
    ses_message_id: str
    delivery: dict[str, Any]
    message: dict[str, Any]


class ComposeData(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    text: str | None
    html: str | None
    attachments: list[dict[str, Any]]
    headers: dict[str, str]
    labels: list[str]
    in_reply_to: str | None
    references: list[str]


class Prefill(BaseModel):
    data: ComposeData
    meta: dict[str, Any]


@router.post(
    "/send",
    name="message.send",
    status_code=201,
    response_model=One[SentView],
    summary="Send a message as this mailbox; the Sent copy is stored in its thread",
)
async def send_message(
    body: SendBody,
    request: Request,
    response: Response,
    bound: Annotated[BoundMailbox, Depends(SEND)],
) -> dict[str, Any]:
    mailbox = bound.mailbox
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    sent = sending.send(Table(), mailbox, body.to_request())
    message = sent.message
    audit_target(
        request, "message", sent.message_id, mailbox_id=mailbox["id"], ses_message_id=sent.ses_message_id
    )
    response.headers["Location"] = f"/api/v1/messages/{sent.message_id}"
    return one(
        {
            "message_id": sent.message_id,
            "thread_id": sent.thread_id,
            "rfc_message_id": message.get("rfc_message_id"),
            "ses_message_id": sent.ses_message_id,
            "delivery": message.get("delivery") or {},
            "message": message_summary(message),
        }
    )


@router.get(
    "/{uid}/reply",
    name="message.reply_prefill",
    response_model=Prefill,
    response_model_by_alias=True,
    summary="Compose data for a reply (post it back to /messages/send)",
)
async def reply(uid: str, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    return prefill.reply(Table(), bound.mailbox, uid, reply_all=False)


@router.get(
    "/{uid}/reply-all",
    name="message.reply_all_prefill",
    response_model=Prefill,
    response_model_by_alias=True,
    summary="Compose data for a reply to the sender and every other recipient",
)
async def reply_all(uid: str, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    return prefill.reply(Table(), bound.mailbox, uid, reply_all=True)


@router.get(
    "/{uid}/forward",
    name="message.forward_prefill",
    response_model=Prefill,
    response_model_by_alias=True,
    summary="Compose data for a forward, with the original's attachments as references",
)
async def forward(uid: str, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    return prefill.forward(Table(), bound.mailbox, uid)
