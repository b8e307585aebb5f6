"""Request and response models of the MailTrigger mailbox view (``/api/v1/mailbox/``;
api/routers/mailtrigger_mailbox.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from mailroom.api.models import DisplayName, Strict, Timestamp
from mailroom.api.schemas.mailboxes import LOCAL_PART_PATTERN, LOCAL_PART_RULES, NewPassword
from mailroom.api.schemas.rules import LoggedAction
from mailroom.services import testmail

QUOTA_DESCRIPTION = "MB; at most the domain's maxquota (422 quota_exceeds_maxquota)"

# --- mailboxes ----------------------------------------------------------------------------------------


class MailTriggerMailboxLinks(BaseModel):
    self: str
    archives: str = Field(description="The mailbox's stored mail")
    data: str = Field(description="The mailbox data documents rules and actions read")
    logs: str = Field(description="The processing log: rules and routes per message")
    testmail: str = Field(description="POST a test message through the inbound pipeline")
    send: str = Field(description="POST to send mail through the mailbox")


class MailTriggerMailbox(BaseModel):
    """A mailbox as the MailTrigger view shows it (the same mailbox as /api/v1/mailboxes/{id})."""

    id: str = Field(description="mbx_...")
    address: str
    name: str | None = Field(description="Display name")
    domain: str
    domain_id: str
    active: bool = Field(description="An inactive mailbox receives nothing (mail to it is dropped)")
    paused: bool = Field(description="A paused mailbox cannot send")
    quota: int = Field(description="MB")
    used_bytes: int
    message_count: int = Field(description="Messages stored, every folder")
    note: str | None
    created_at: Timestamp
    updated_at: Timestamp
    links: MailTriggerMailboxLinks


class MailTriggerCreateMailbox(Strict):
    """A mailbox on one of the organization's domains. Without a password it can receive and be
    driven by tokens, but cannot sign in until one is set (POST /api/v1/mailboxes/{id}/password)."""

    local_part: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": LOCAL_PART_PATTERN},
        description=LOCAL_PART_RULES,
    )
    domain: str = Field(min_length=1, max_length=300, description="A domain of this organization")
    name: DisplayName | None = Field(default=None, max_length=255)
    password: NewPassword | None = None
    quota: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="MB; defaults to the domain's defquota. " + QUOTA_DESCRIPTION,
    )
    active: bool = True
    note: str | None = Field(default=None, max_length=2000)


class MailTriggerUpdateMailbox(Strict):
    """Only the fields sent change; name and note may be null (cleared), active and quota not."""

    name: DisplayName | None = Field(default=None, max_length=255)
    active: bool | None = None
    quota: int | None = Field(default=None, ge=1, le=10_000_000, description=QUOTA_DESCRIPTION)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("active", "quota")
    @classmethod
    def not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields sent (defaults are not validated): an explicit null is refused.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value


class MailTriggerReplaceMailbox(Strict):
    """The whole editable mailbox: name, active and quota must be sent; note left out is cleared."""

    name: DisplayName | None = Field(max_length=255, description="Display name; null clears it")
    active: bool
    quota: int = Field(ge=1, le=10_000_000, description=QUOTA_DESCRIPTION)
    note: str | None = Field(default=None, max_length=2000)


# --- archives -----------------------------------------------------------------------------------------


class ArchiveLinks(BaseModel):
    message: str = Field(description="The message with its bodies: GET /api/v1/messages/{id}")
    raw: str = Field(description="Its MIME source")


class ArchivedMessage(BaseModel):
    id: str = Field(description="msg_...")
    direction: Literal["received", "sent"]
    sender: str | None = Field(description="The From header")
    receivers: list[str] = Field(description="To and Cc")
    subject: str
    date: Timestamp | None = Field(description="The Date header (when it was sent)")
    created_at: Timestamp = Field(description="When Mailroom received or sent it")
    message_id: str | None = Field(description="The Message-ID header")
    thread_id: str
    folder: str | None
    labels: list[str]
    preview: str
    has_attachments: bool
    size: int = Field(description="Bytes")
    links: ArchiveLinks


# --- the processing log -------------------------------------------------------------------------------


class LogAutomationRoute(BaseModel):
    id: str | None = Field(description="rte_...")
    name: str | None
    matched: bool


class LogAutomationAction(BaseModel):
    route_id: str | None
    action_id: str | None
    action_type: (
        Literal["webhook", "eventbridge", "forward", "reply", "label", "move", "store_data", "delete"] | None
    )
    mode: Literal["inline", "async"] | None = Field(
        description="inline: done while the message was stored; async: run afterwards, with retries"
    )
    status: Literal["done", "failed", "pending", "skipped"] | None
    error: str | None = None
    duration_ms: int | None = None
    attempts: int | None = None
    detail: dict[str, Any] | None = None


class LogAutomation(BaseModel):
    routes: list[LogAutomationRoute] = Field(description="The mailbox's and its domain's routes, in order")
    actions: list[LogAutomationAction] = Field(description="What each matched route's actions did")


class LogLinks(BaseModel):
    self: str
    message: str | None = Field(description="The stored message (null when none was stored)")


class ProcessingLogEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="log_<ulid>: the stored message is msg_<the same ulid>")
    message_id: str | None = Field(description="The stored message (null when none was stored)")
    ses_message_id: str | None = Field(description="SES's id of the message (tst_... for test mail)")
    test: bool = Field(description="A test message (POST .../testmail)")
    from_: str | None = Field(alias="from")
    subject: str | None
    outcome: str = Field(
        description="delivered, moved, discarded, rejected, folder_missing, over_quota, no_mailbox; for "
        "test mail the pipeline did not store: why (mailbox_inactive, blocked_sender, domain_inactive, "
        "forwarded_without_copy, ...)"
    )
    folder: str | None
    rules_matched: list[str] = Field(description="The mailbox rules (/mailboxes/{id}/rules) that matched")
    rule_actions: list[LoggedAction] = Field(description="What the mailbox rules' actions did")
    auto_reply: str | None = Field(description="The auto-reply's outcome (null without one)")
    evaluation_us: int = Field(description="Time the rules took, in microseconds")
    automation: LogAutomation | None = Field(description="Routes and actions; null where none ran")
    automation_pending: int = Field(description="Async actions not finished yet: poll until 0")
    created_at: Timestamp
    links: LogLinks


# --- test mail ----------------------------------------------------------------------------------------


class TestMail(BaseModel):
    """Every field optional. No field may hold CR, LF or NUL where it becomes a header (422)."""

    # Not stripped: a trailing line break must reach the header check, not silently disappear.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=998,
        description=f"The From header (default `{testmail.DEFAULT_FROM}`). The envelope sender is always "
        "empty, so nothing ever answers a test message",
    )
    subject: str | None = Field(
        default=None, max_length=998, description=f"Default `{testmail.DEFAULT_SUBJECT}`"
    )
    text: str | None = Field(
        default=None, max_length=testmail.MAX_BODY_CHARS, description="The plain text body"
    )
    html: str | None = Field(
        default=None, max_length=testmail.MAX_BODY_CHARS, description="An HTML alternative"
    )
    headers: dict[
        Annotated[str, StringConstraints(max_length=76)], Annotated[str, StringConstraints(max_length=998)]
    ] = Field(
        default_factory=dict,
        max_length=testmail.MAX_HEADERS,
        description="Extra headers (e.g. List-Id, X-Priority) for conditions to test; those the "
        "pipeline sets (From, To, Date, Received, Authentication-Results, ...) are refused (422 "
        "reserved_header)",
    )

    def request(self) -> testmail.TestMessage:
        return testmail.TestMessage(
            sender=self.from_,
            subject=self.subject,
            text=self.text,
            html=self.html,
            headers=dict(self.headers),
        )


class TestMailResult(BaseModel):
    log_id: str = Field(description="Poll GET .../logs/{log_id} until automation_pending is 0")
    message_id: str | None = Field(description="The stored copy (null when none was stored)")
    status: str = Field(description="The log entry's outcome (delivered, moved, ...)")
    log: ProcessingLogEntry = Field(description="The log entry as it stands now")
