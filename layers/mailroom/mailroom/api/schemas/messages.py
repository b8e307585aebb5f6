"""The Messages API's bodies: what ``/api/v1/messages...`` and ``/api/v1/threads...`` take and answer.

Views are built by ``services.mail_views`` (and the message services); fields that only some
messages have (``bcc`` and ``delivery`` on sent mail) are optional and left out when absent, which
is why the routes answering these models set ``response_model_exclude_unset``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from mailroom.api.bulk import RowError
from mailroom.api.models import Strict, Timestamp
from mailroom.mail.folders import MAX_PATH_CHARS
from mailroom.mail.header_text import describe, refused_in_header
from mailroom.services.message_bulk import MAX_BULK, Action
from mailroom.services.message_changes import MAX_LABEL_CHARS, MAX_LABELS

# --- requests ------------------------------------------------------------------------------------


def _no_breaks(value: object) -> object:
    # Before stripping: a trailing line break is refused like any other, not silently dropped.
    if isinstance(value, str):
        refused = refused_in_header(value) or ("\t" if "\t" in value else None)
        if refused:
            raise ValueError(
                "a label holds no control characters, line breaks or unpaired surrogates "
                f"({describe(refused)} is one)"
            )
    return value


Label = Annotated[
    str,
    BeforeValidator(_no_breaks),
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# The path rules (no control characters, no empty segment, at most 255 characters once trimmed) are
# checked by the service, which answers the specific 422 ``invalid_folder``; the schema states the
# pattern so a client can check it first.
_FOLDER_PATTERN: JsonDict = {"pattern": r"^[^\x00-\x1f\x7f]+$"}
FolderRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        description="A folder's path (INBOX, Work/2026; system names in any case) or its key "
        "(inbox, f01J...)",
        json_schema_extra=_FOLDER_PATTERN,
    ),
]


class MessagePatch(Strict):
    """At least one field; those left out do not change."""

    seen: bool | None = Field(default=None, description="Read (true) or unread (false)")
    flagged: bool | None = Field(default=None, description="Starred")
    labels: list[Label] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description=f"Replaces all the labels (at most {MAX_LABELS}; duplicates count once)",
    )

    @model_validator(mode="after")
    def not_empty(self) -> MessagePatch:
        if not self.model_fields_set:
            raise ValueError("send at least one of seen, flagged, labels")
        return self

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


class MoveBody(Strict):
    folder: FolderRef


class BulkBody(Strict):
    """``move`` needs ``folder``; ``add_labels`` and ``remove_labels`` need ``labels``."""

    ids: list[MessageId] = Field(
        min_length=1,
        max_length=MAX_BULK,
        description="Message ids (msg_...); duplicates count once, unknown ones get an error row",
    )
    action: Action = Field(
        description="seen/unseen and flag/unflag set a flag; move needs folder; delete moves to Trash "
        "(removes for good what is already in Trash); spam/ham move to Spam/INBOX and record the "
        "report; add_labels/remove_labels need labels"
    )
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

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"action": {"const": "move"}}},
                    "then": {"required": ["folder"], "properties": {"folder": {"type": "string"}}},
                },
                {
                    "if": {"properties": {"action": {"enum": ["add_labels", "remove_labels"]}}},
                    "then": {
                        "required": ["labels"],
                        "properties": {"labels": {"type": "array", "minItems": 1}},
                    },
                },
            ]
        }
    )


class FolderBody(Strict):
    path: str = Field(
        min_length=1,
        max_length=300,
        description=f"'/' separates levels (Projects/2026); 1-{MAX_PATH_CHARS} characters once each "
        "segment is trimmed, no control characters, no empty segment (422 invalid_folder); not a "
        "system folder's name (409 folder_exists)",
        json_schema_extra=_FOLDER_PATTERN,
    )


class EmptyBody(Strict):
    folder: FolderRef = Field(description="Trash or Spam (any other folder: 422 folder_not_emptiable)")


class BlockBody(Strict):
    pattern: str = Field(
        min_length=3,
        max_length=320,
        description="An address (someone@example.org) or a whole domain (@example.org); stored lower case",
    )


# --- responses -----------------------------------------------------------------------------------


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


_BODY_FIELD = Literal["text", "html", "html_sanitized"]


class MessageBodies(BaseModel):
    text: str | None
    html: str | None = Field(description="The HTML as sent: never display it as is")
    html_sanitized: str | None = Field(
        description="The HTML safe to display (scripts, styles, remote content removed)"
    )
    headers: dict[str, str] = Field(description="Header name to its first value")
    truncated: list[_BODY_FIELD] = Field(
        description="Bodies cut at the parser's limit (the raw message has all)"
    )


class MessageFull(MessageSummary, MessageBodies):
    omitted: list[_BODY_FIELD] = Field(
        description="Bodies left out to keep the response under 4 MB (GET .../raw has everything)"
    )
    rules_applied: list[str] | None = Field(
        default=None,
        description="Received mail that the mailbox's rules ran on: the ids of the rules that matched, "
        "in the order they ran (see GET /api/v1/mailboxes/{id}/logs)",
    )


class ThreadMessageView(MessageSummary):
    """A message of a thread: with its bodies while they fit the thread's 2 MB budget."""

    body_included: bool = Field(description="false: GET the message for its bodies")
    text: str | None = None
    html: str | None = None
    html_sanitized: str | None = None
    headers: dict[str, str] | None = None
    truncated: list[_BODY_FIELD] | None = None


class ThreadView(BaseModel):
    id: str = Field(description="thr_...")
    mailbox_id: str
    subject: str
    preview: str
    message_count: int
    unread_count: int
    size: int
    senders: list[str]
    recipients: list[str]
    labels: list[str] = Field(description="Labels its messages carry or carried")
    last_message_id: str | None
    last_activity_at: Timestamp | None
    received_at: Timestamp | None = Field(description="Latest mail received in it")
    sent_at: Timestamp | None = Field(description="Latest mail sent in it")
    created_at: Timestamp | None


class ThreadLinks(BaseModel):
    messages_next: str | None = Field(description="The rest of its messages, when it has more than 50")


class ThreadDetail(ThreadView):
    messages: list[ThreadMessageView] = Field(description="Its first 50 messages, oldest first")
    links: ThreadLinks


class FolderView(BaseModel):
    key: str = Field(description="inbox, sent, ... or f<ulid> for a custom folder; never changes")
    path: str
    name: str = Field(description="The last segment of the path")
    system: bool
    total: int
    unread: int
    created_at: Timestamp | None = Field(description="null for system folders")


class EmptyResult(BaseModel):
    folder: str
    folder_key: Literal["trash", "spam"]
    removed: int
    remaining: int
    more: bool = Field(description="Call again (with a new Idempotency-Key) while true")


class BlockedSenderView(BaseModel):
    id: str = Field(
        description="The pattern itself: DELETE /api/v1/messages/blocked-senders/{id}, URL-encoded"
    )
    pattern: str
    type: Literal["address", "domain"]
    created_at: Timestamp | None


class BulkRow(BaseModel):
    id: str
    status: Literal["ok", "error"]
    result: Literal["updated", "moved_to_trash", "deleted"] | None
    folder_key: str | None = Field(description="Where the message is now (null once deleted)")
    error: RowError | None


class BulkMeta(BaseModel):
    succeeded: int
    failed: int


class BulkResult(BaseModel):
    data: list[BulkRow] = Field(description="One row per distinct id, in request order")
    meta: BulkMeta
