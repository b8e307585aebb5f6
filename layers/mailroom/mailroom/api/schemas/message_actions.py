"""What the Messages API's own routes take and answer besides a message's view
(``/api/v1/messages...``, ``/api/v1/threads...``): patches, moves, bulk actions, folders, threads,
blocked senders. Apart from ``messages``, so that the functions that only answer a message's view
(send, compose, MailTrigger's mailbox) do not build these models at init."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from mailroom.api.bulk import RowError
from mailroom.api.models import Strict, Timestamp
from mailroom.api.schemas.labels import Label
from mailroom.api.schemas.messages import BodyField, MessageSummary
from mailroom.mail.folders import MAX_PATH_CHARS
from mailroom.services.message_bulk import MAX_BULK, Action
from mailroom.services.message_changes import MAX_LABELS

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


class ThreadMessageView(MessageSummary):
    """A message of a thread: with its bodies while they fit the thread's 2 MB budget."""

    body_included: bool = Field(description="false: GET the message for its bodies")
    text: str | None = None
    html: str | None = None
    html_sanitized: str | None = None
    headers: dict[str, str] | None = None
    truncated: list[BodyField] | None = None


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
