"""Sending as the token's mailbox: ``POST /api/v1/messages/send`` and the compose helpers
``GET /api/v1/messages/{uid}/reply``, ``/reply-all`` and ``/forward`` (served by SendFunction; the
rest of ``/api/v1/messages/...`` is the messages function's)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mailroom.api import admission
from mailroom.api.mailbox_access import MAILBOX_GONE, BoundMailbox, require_mailbox
from mailroom.api.models import One, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require, unauthenticated
from mailroom.api.schemas.messages import AttachmentView
from mailroom.api.schemas.send import SENT_201, SendMessageBody, SentView
from mailroom.domain.principal import Principal
from mailroom.domain.tokens import TokenType
from mailroom.services import composing, drafts, prefill, send_ahead
from mailroom.services.mail_views import sent_view
from mailroom.store.table import Table

router = api_router("/api/v1/messages", tags=["sending"])
# The send reads the token's mailbox itself, with what it will check (services/send_ahead.py).
SEND_TOKEN = require("messages:send", token_type=TokenType.MESSAGE)
READ = require_mailbox("messages:read")


class SendBody(SendMessageBody):
    draft_uid: str | None = Field(
        default=None,
        max_length=64,
        description="Send this draft (msg_... in Drafts) exactly as saved and remove it from Drafts; "
        "then give no other field. A second send of it is 409 draft_already_sent",
    )

    @model_validator(mode="after")
    def draft_alone(self) -> SendBody:
        if self.draft_uid is not None and self.model_fields_set - {"draft_uid"}:
            raise ValueError("draft_uid sends the draft as saved: give no other field with it")
        return self


class ForwardedAttachment(BaseModel):
    """An attachment of a stored message, by reference: the send reads its bytes from storage."""

    message_id: str
    index: int
    filename: str | None
    content_type: str
    content_id: str | None
    inline: bool


class ComposeData(BaseModel):
    """Exactly the body POST /api/v1/messages/send takes: edit it and post it back."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="The mailbox's own address, with its name")
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    text: str | None = Field(description="The quoted original (reply) or the forwarded block")
    html: str | None = Field(description="The same for the HTML part (the original sanitized)")
    attachments: list[ForwardedAttachment] = Field(description="A forward's: the original's attachments")
    headers: dict[str, str]
    labels: list[str]
    in_reply_to: str | None = Field(description="A reply's: the original's Message-ID")
    references: list[str] = Field(description="A reply's: the thread's Message-IDs")


class Original(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    thread_id: str
    message_id: str | None = Field(description="Its Message-ID header")
    from_: str | None = Field(alias="from")
    subject: str
    date: Timestamp | None
    direction: Literal["inbound", "outbound"]


class PrefillMeta(BaseModel):
    mode: Literal["reply", "reply-all", "forward"]
    original: Original = Field(description="The message replied to or forwarded")
    attachments: list[AttachmentView] | None = Field(
        default=None, description="A forward's: the original's attachments, with their sizes"
    )


class Prefill(BaseModel):
    data: ComposeData
    meta: PrefillMeta


_PREFILL: dict[str, Any] = {
    "response_model": Prefill,
    "response_model_by_alias": True,
    "response_model_exclude_unset": True,
    "responses": errors(e404="not_found: no such message in this mailbox"),
}
_UID = Annotated[str, Path(description="The message's id (msg_...)")]


@router.post(
    "/send",
    name="message.send",
    status_code=201,
    response_model=One[SentView],
    response_model_exclude_unset=True,
    summary="Send a message as this mailbox; the Sent copy is stored in its thread",
    responses={
        201: SENT_201,
        **errors(
            e403="mailbox_inactive or mailbox_paused: this mailbox may not send now; domain_inactive: the "
            "From address's domain is deactivated",
            e404="not_found: draft_uid names no message of this mailbox",
            e409="draft_already_sent (the draft was sent, the message names the Sent copy), draft_busy "
            "(another request is sending or saving it)",
            e422="validation_error (with the field), invalid_from, reserved_header, too_many_recipients "
            "(50 in all), message_too_large, unknown_attachment, recipient_suppressed (on the "
            "suppression list), mailbox_over_quota, send_rejected (SES refused it), not_a_draft, "
            "unknown_identity, identity_not_allowed, unknown_template, template_variable_missing, "
            "template_refused, template_timeout, template_output_too_large, tls_required (the mailbox "
            "enforces TLS and its domain's SMTP relay has none); nothing was sent",
            e502="ses_unavailable: SES could not be reached; nothing was sent (retryable)",
            e503="send_throttled or sending_paused: SES refuses sends for now; tls_required_unavailable: the "
            "mailbox enforces TLS and the deployment has no TLS configuration set; nothing was sent",
        ),
    },
)
@admission.with_claim
async def send_message(
    body: SendBody,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(SEND_TOKEN)],
) -> dict[str, Any]:
    """Send an email from this mailbox (or an alias that delivers to it) through SES, and keep a
    Sent copy in the mailbox, threaded with the message it replies to (`in_reply_to`,
    `references`). Give `text`, `html` or both (or a `template_id` with its `variables`), and
    `identity_id` to send as an identity with its signature; attachments as base64 `content`, or as
    `{message_id, index}` references to attachments of this mailbox's messages. With `draft_uid`
    alone, the draft is sent as saved and leaves Drafts. The answer's
    `delivery` starts with every recipient `sending`; SES's delivery events update it later."""
    table = Table()
    send_request = body.to_request() if body.draft_uid is None else None
    # The token's mailbox, the checks the send will make and the request's rate-limit window (counted
    # with the idempotency claim: api/admission.py) in one read (services/send_ahead.py).
    window = admission.window_to_read(request)
    mailbox, ahead = send_ahead.read_ahead(table, principal, send_request, also=window)
    if window is not None:
        admission.window_read(request, ahead.also)
    if mailbox is None:
        raise unauthenticated(MAILBOX_GONE)
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    if send_request is None:
        sent = drafts.send(table, mailbox, str(body.draft_uid), ahead=ahead)
    else:
        sent = composing.send(table, mailbox, send_request, body.compose_options(), ahead=ahead)
    audit_target(
        request, "message", sent.message_id, mailbox_id=mailbox["id"], ses_message_id=sent.ses_message_id
    )
    response.headers["Location"] = f"/api/v1/messages/{sent.message_id}"
    return one(sent_view(sent.message, sent.ses_message_id))


@router.get(
    "/{uid}/reply",
    name="message.reply_prefill",
    summary="Compose data for a reply (post it back to /messages/send)",
    **_PREFILL,
)
async def reply(uid: _UID, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    """A reply to the sender (its Reply-To when set), with `Re:` subject, the original quoted, and
    the threading headers set. Edit `data` and POST it to /api/v1/messages/send. Nothing is sent."""
    return prefill.reply(Table(), bound.mailbox, uid, reply_all=False)


@router.get(
    "/{uid}/reply-all",
    name="message.reply_all_prefill",
    summary="Compose data for a reply to the sender and every other recipient",
    **_PREFILL,
)
async def reply_all(uid: _UID, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    """As /reply, with the original's other To and Cc recipients too (never this mailbox). Nothing
    is sent."""
    return prefill.reply(Table(), bound.mailbox, uid, reply_all=True)


@router.get(
    "/{uid}/forward",
    name="message.forward_prefill",
    summary="Compose data for a forward, with the original's attachments as references",
    **_PREFILL,
)
async def forward(uid: _UID, bound: Annotated[BoundMailbox, Depends(READ)]) -> dict[str, Any]:
    """A forward with `Fwd:` subject, the original's header block and body, and its attachments
    as references (their bytes never pass through the client). Add recipients in `to` and POST it
    to /api/v1/messages/send. Nothing is sent."""
    return prefill.forward(Table(), bound.mailbox, uid)
