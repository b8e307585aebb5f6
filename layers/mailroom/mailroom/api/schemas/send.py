"""What a send takes and answers, shared by the routes that send or keep a message to send: the
send router, drafts and scheduled sends (the compose function) and MailTrigger's mailbox. Here
rather than in the send router, so that those functions do not build the send routes at init."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from mailroom.api.schemas.messages import Delivery, MessageSummary
from mailroom.services import composing, sending

MAX_LIST = 100  # per address field; compose caps the total at 50 recipients with a precise error


class _Exact(BaseModel):
    # Unknown fields are refused, and nothing is stripped: a trailing CR/LF in a subject or header
    # must reach the injection check rather than silently disappear.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class SendAttachment(_Exact):
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


# The 100-entry bound is the ``bounded`` validator's; the schema states it for clients.
Addresses = (
    str
    | Annotated[
        list[str], WithJsonSchema({"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST})
    ]
)


class SendMessageBody(_Exact):
    """At least one recipient in to, cc or bcc (50 in all); addresses as `a@example.org` or
    `Name <a@example.org>`. No field may hold CR, LF or NUL (422, the field named)."""

    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=998,
        description="The mailbox's address (default) or an alias that delivers to it",
    )
    to: Addresses | None = Field(default=None, description="An address, or a list of them")
    cc: Addresses | None = None
    bcc: Addresses | None = Field(default=None, description="Kept on the Sent copy, never in the MIME")
    reply_to: Addresses | None = None
    subject: str = Field(default="", description="At most 998 characters")
    text: str | None = Field(default=None, description="The plain text body")
    html: str | None = Field(default=None, description="The HTML body")
    attachments: list[SendAttachment] = Field(
        default_factory=list,
        max_length=100,
        description="The whole message, encoded, is at most 10 MB (422 message_too_large)",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Custom headers, at most 50; those Mailroom sets (From, To, Message-ID, ...) are "
        "reserved (422 reserved_header)",
    )
    labels: list[str] = Field(
        default_factory=list,
        description="Applied to the Sent copy: at most 50, each 1-100 characters without control characters",
    )
    in_reply_to: str | None = Field(default=None, max_length=998, description="Message-ID replied to")
    references: Addresses | None = Field(default=None, description="Message-IDs of the thread")
    # Compose options (services/composing.py): resolved into the fields above before the send.
    identity_id: str | None = Field(
        default=None,
        max_length=64,
        description="A sending identity of this mailbox (idn_...): its From, Reply-To (when none is "
        "given) and signature; without it and without `from`, the default identity if there is one",
    )
    template_id: str | None = Field(
        default=None,
        max_length=64,
        description="A template of this mailbox (tpl_...) giving subject, text and html (then give none "
        "of them); rendered with `variables` (422 template_variable_missing naming a missing one)",
    )
    variables: dict[str, Any] | None = Field(
        default=None, max_length=200, description="The template's variables (JSON values)"
    )

    def compose_options(self) -> composing.ComposeOptions:
        return composing.ComposeOptions(
            identity_id=self.identity_id, template_id=self.template_id, variables=self.variables
        )

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


# The 201 of every send (also POST /api/v1/mailbox/{id}/mail/send): where the Sent copy is.
SENT_201: dict[str, Any] = {
    "description": "Sent (SES accepted it); the Sent copy is stored",
    "headers": {
        "Location": {
            "description": "The Sent copy: /api/v1/messages/{message_id}",
            "required": True,
            "schema": {"type": "string"},
        }
    },
}


class SentView(BaseModel):
    message_id: str = Field(description="The Sent copy's id (msg_...): GET /api/v1/messages/{id}")
    thread_id: str
    rfc_message_id: str | None = Field(description="The Message-ID header the message went out with")
    ses_message_id: str = Field(description="SES's id of the send (its delivery events carry it)")
    delivery: Delivery = Field(description="Every recipient sending, until SES reports")
    message: MessageSummary = Field(description="The Sent copy, stored in the folder Sent")


# The 422 codes of composing a message (drafts, scheduled sends): what the send refuses, plus the
# identities and templates a draft may name.
COMPOSE_422 = (
    "validation_error (with the field), invalid_from, reserved_header, too_many_recipients, "
    "message_too_large, unknown_attachment, mailbox_over_quota, unknown_identity, identity_not_allowed, "
    "unknown_template, template_variable_missing (naming it), template_refused, template_timeout, "
    "template_output_too_large"
)
