"""A message as the message APIs answer it: its summary, bodies, attachments and delivery (the
messages, send and compose functions, and MailTrigger's mailbox, answer these). What only the
messages router takes and answers is in ``message_actions``.

Views are built by ``services.mail_views`` (and the message services); fields that only some
messages have (``bcc`` and ``delivery`` on sent mail) are optional and left out when absent, which
is why the routes answering these models set ``response_model_exclude_unset``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.api.models import Timestamp


class Flags(BaseModel):
    seen: bool
    flagged: bool
    answered: bool = Field(description="Replied to from this mailbox")
    draft: bool


class AttachmentView(BaseModel):
    index: int = Field(description="Its position: GET /api/v1/messages/{id}/attachments/{index}")
    attachment_id: str
    filename: str | None
    content_type: str
    size: int = Field(description="Bytes")
    content_id: str | None = Field(description="For inline parts referenced as cid: in the HTML")
    disposition: Literal["attachment", "inline"]
    url: str = Field(description="Path of its bytes")


class AttachmentList(BaseModel):
    data: list[AttachmentView]


class MessageLinks(BaseModel):
    self: str
    raw: str
    attachments: str
    thread: str


class Verdicts(BaseModel):
    """SES's verdicts on inbound mail (PASS, FAIL, GRAY, PROCESSING_FAILED, DISABLED) and the user's
    own report; sent mail has none."""

    spam: str | None = None
    virus: str | None = None
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = Field(default=None, description="With a DMARC FAIL: the sender's policy")
    user_report: Literal["spam", "ham"] | None = Field(default=None, description="Set by :spam / :ham")


DeliveryStatus = Literal[
    "sending", "delayed", "delivered", "partially_delivered", "bounced", "complained", "rejected"
]
RecipientStatus = Literal["sending", "delayed", "delivered", "bounced", "complained", "rejected"]


class RecipientDelivery(BaseModel):
    """One recipient's state, with what SES reported (smtp_response, bounce_type, ...)."""

    model_config = ConfigDict(extra="allow")

    status: RecipientStatus
    at: Timestamp | None = None


class Delivery(BaseModel):
    """Sent mail only: SES's delivery events, per recipient and overall."""

    status: DeliveryStatus
    recipients: dict[str, RecipientDelivery] | None = Field(default=None, description="By address")
    counts: dict[str, int] | None = Field(default=None, description="Recipients per status")
    updated_at: Timestamp | None = None


class MessageSummary(BaseModel):
    """A message's metadata, preview and links (no bodies)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="msg_...")
    mailbox_id: str
    thread_id: str
    folder: str | None = Field(description="The folder's path")
    folder_key: str
    direction: Literal["inbound", "outbound"]
    from_: str | None = Field(alias="from", description="The From header")
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    bcc: list[str] | None = Field(default=None, description="Sent mail only")
    subject: str
    date: Timestamp | None = Field(description="The Date header, when it parses")
    received_at: Timestamp
    message_id: str | None = Field(description="The RFC 5322 Message-ID")
    in_reply_to: str | None
    references: list[str]
    preview: str
    size: int = Field(description="Bytes of the raw message")
    flags: Flags
    labels: list[str]
    has_attachments: bool
    attachments: list[AttachmentView]
    verdicts: Verdicts
    delivery: Delivery | None = Field(default=None, description="Sent mail only")
    links: MessageLinks


BodyField = Literal["text", "html", "html_sanitized"]


class MessageBodies(BaseModel):
    text: str | None
    html: str | None = Field(description="The HTML as sent: never display it as is")
    html_sanitized: str | None = Field(
        description="The HTML safe to display (scripts, styles, remote content removed)"
    )
    headers: dict[str, str] = Field(description="Header name to its first value")
    truncated: list[BodyField] = Field(
        description="Bodies cut at the parser's limit (the raw message has all)"
    )


class MessageFull(MessageSummary, MessageBodies):
    omitted: list[BodyField] = Field(
        description="Bodies left out to keep the response under 4 MB (GET .../raw has everything)"
    )
    rules_applied: list[str] | None = Field(
        default=None,
        description="Received mail that the mailbox's rules ran on: the ids of the rules that matched, "
        "in the order they ran (see GET /api/v1/mailboxes/{id}/logs)",
    )
