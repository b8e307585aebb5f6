"""The v1 Webhooks API's bodies: what ``/api/v1/webhooks...`` takes and answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, WithJsonSchema, field_validator, model_validator

from mailroom.api.models import Strict, Timestamp
from mailroom.domain.webhooks import EVENT_TYPES, known_event_types, mailbox_filter

MAX_MAILBOX_FILTER = 100
_EVENT_BUS = (
    "An EventBridge destination instead of a URL: the ARN of an event bus "
    "(arn:aws:events:<region>:<account>:event-bus/<name>) in an account the stack's operator allows "
    "(422 invalid_event_bus_arn, event_bus_not_allowed); each event is put on it with source "
    "mailroom, detail-type the event type and detail the webhook payload (docs/events.md)"
)
_URL = "https URL whose host resolves to public addresses only (422 invalid_webhook_url, "
"webhook_url_unresolvable, webhook_url_not_allowed)"
_EVENT_TYPES = "Known event types (unknown ones: 422): " + ", ".join(EVENT_TYPES)
# The validators dedupe and check these lists (one message naming every bad entry); the schema
# states their items for clients.
EventTypeName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(EVENT_TYPES)})]
MailboxRef = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64})]
_MAILBOXES = "Only events of these mailboxes (mbx_...; all mailboxes when empty); each must be a "
"mailbox of the organization (422 unknown_mailbox)"


def _event_types(value: list[str]) -> list[str]:
    return known_event_types(value, EVENT_TYPES)


def _mailbox_ids(value: list[str]) -> list[str]:
    return mailbox_filter(value)


class WebhookCreate(Strict):
    """Exactly one destination: `url` or `event_bus_arn`."""

    url: str | None = Field(default=None, min_length=1, max_length=2048, description=_URL)
    event_bus_arn: str | None = Field(default=None, min_length=1, max_length=1600, description=_EVENT_BUS)
    event_types: list[EventTypeName] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description=_EVENT_TYPES
    )
    mailbox_ids: list[MailboxRef] = Field(
        default_factory=list, max_length=MAX_MAILBOX_FILTER, description=_MAILBOXES
    )
    enabled: bool = Field(default=True, description="false: created disabled (disabled_reason manual)")
    description: str | None = Field(default=None, max_length=500)
    client_id: str | None = Field(default=None, max_length=128, description="Your own reference")

    _types = field_validator("event_types")(_event_types)
    _mailboxes = field_validator("mailbox_ids")(_mailbox_ids)

    @model_validator(mode="after")
    def one_destination(self) -> WebhookCreate:
        if (self.url is None) == (self.event_bus_arn is None):
            raise ValueError("give exactly one destination: url or event_bus_arn")
        return self


class WebhookUpdate(Strict):
    """Only the fields sent change; `description: null` clears it (no other field may be null)."""

    url: str | None = Field(
        default=None, min_length=1, max_length=2048, description=_URL + "; replaces an event_bus_arn"
    )
    event_bus_arn: str | None = Field(
        default=None, min_length=1, max_length=1600, description=_EVENT_BUS + "; replaces a url"
    )
    event_types: list[EventTypeName] | None = Field(
        default=None, min_length=1, max_length=len(EVENT_TYPES), description=_EVENT_TYPES
    )
    mailbox_ids: list[MailboxRef] | None = Field(
        default=None, max_length=MAX_MAILBOX_FILTER, description=_MAILBOXES
    )
    enabled: bool | None = Field(
        default=None, description="true clears disabled_reason and the failure clock; false disables it"
    )
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def known_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _event_types(value)

    @field_validator("mailbox_ids")
    @classmethod
    def mailbox_ids_ok(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _mailbox_ids(value)


class Replay(Strict):
    since: AwareDatetime = Field(
        description="ISO 8601 with a time zone; events from this time, at most 30 days ago, not after until"
    )
    until: AwareDatetime | None = Field(default=None, description="Up to this time (default: now)")
    include_succeeded: bool = Field(default=False, description="Also re-send events already delivered")
    cursor: str | None = Field(default=None, max_length=2048, description="next_cursor of the last call")


class WebhookView(BaseModel):
    id: str = Field(description="wh_...")
    destination: Literal["https", "eventbridge"] = Field(
        description="https: POSTed to url, signed; eventbridge: put on event_bus_arn"
    )
    url: str | None = Field(description="The https endpoint; null for an EventBridge destination")
    event_bus_arn: str | None = Field(description="The event bus; null for an https endpoint")
    event_types: list[str]
    mailbox_ids: list[str] = Field(description="Empty: every mailbox")
    enabled: bool
    description: str | None
    client_id: str | None
    disabled_reason: Literal["manual", "endpoint_gone", "failing_continuously"] | None = Field(
        description="manual (PATCH or created disabled), endpoint_gone (it answered 410), "
        "failing_continuously (every attempt failed for days)"
    )
    disabled_at: Timestamp | None
    failing_since: Timestamp | None = Field(description="First failure with no success since")
    secret_last_four: str | None
    secret_rotated_at: Timestamp | None
    previous_secret_expires_at: Timestamp | None = Field(
        description="Until then the previous secret signs too (after a rotation)"
    )
    delivery_count: int
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(WebhookView):
    secret: str = Field(description="whsec_...: shown once. Verify deliveries with it (Standard Webhooks).")


Trigger = Literal["event", "test", "retry", "replay"]


class Attempt(BaseModel):
    attempt: int = Field(description="1 for the first attempt of the delivery, counting every chain")
    at: Timestamp | None
    status_code: int | None = Field(description="The endpoint's HTTP status; null when none came back")
    duration_ms: int | None
    error: str | None = Field(description="timeout, connection error, ... when no status came back")
    response: str | None = Field(description="The start of the endpoint's answer")
    trigger: Trigger | None


class DeliveryView(BaseModel):
    id: str = Field(description="dlv_...; the webhook-id header of its requests is the event id")
    webhook_id: str
    event_id: str
    event_type: str
    event_created_at: Timestamp | None
    state: Literal["pending", "succeeded", "failed"]
    failure_reason: Literal["endpoint_gone", "retries_exhausted", "webhook_disabled"] | None
    attempt_count: int
    next_attempt_at: Timestamp | None = Field(description="While pending")
    last_attempt_at: Timestamp | None
    completed_at: Timestamp | None
    trigger: Trigger | None = Field(description="What started its current chain of attempts")
    attempts: list[Attempt] = Field(description="The newest 25 attempts")
    created_at: Timestamp
    updated_at: Timestamp


class TestSent(BaseModel):
    event_id: str
    event_type: Literal["webhook.test"]
    delivery_id: str = Field(description="GET .../deliveries/{delivery_id} to follow it")
    webhook_id: str
    created_at: Timestamp


class ReplayView(BaseModel):
    scanned: int = Field(description="Events read")
    matched: int = Field(description="Events this webhook subscribes to")
    replayed: int = Field(description="Deliveries started")
    skipped: int = Field(description="Matched, but delivered already or in flight")
    next_cursor: str | None = Field(description="More events to scan: call again with it")
