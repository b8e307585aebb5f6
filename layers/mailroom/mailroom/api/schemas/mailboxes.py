"""The mailbox models more than one router answers or takes: the mailbox view (the mailboxes
router's, the mailbox's own sign-in, MailTrigger's mailbox), the password and local-part rules
(mailboxes, invites, MailTrigger). Here rather than in the mailboxes router, so that the functions
serving those other routers do not build the mailboxes routes at init."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailroom.api.models import Timestamp

LOCAL_PART_PATTERN = r"^[a-zA-Z0-9._%+-]{1,64}$"
LOCAL_PART_RULES = (
    "1 to 64 characters of a-z A-Z 0-9 . _ % + -, not starting or ending with a dot nor with two dots "
    "in a row (422 invalid_address); stored lower case."
)
# A password a mailbox gets, taken byte for byte (the models' whitespace stripping must not apply).
# The schema states the policy, which the service enforces with its own code (422 weak_password),
# so the lengths in the schema are documented rather than checked by the model.
NewPassword = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=1024),
    Field(
        json_schema_extra={"minLength": 10, "maxLength": 256},
        description="10 to 256 characters mixing at least two of lower case, upper case, digits and "
        "symbols, not a repetition of a few characters, not containing the local part (else 422 "
        "weak_password). Taken byte for byte: whitespace is not stripped.",
    ),
]
StorageAllocation = Annotated[
    int | None,
    Field(
        ge=1,
        le=100_000_000,
        description="MB carved out of the organization's storage pool for this mailbox alone; "
        "omit or null for the shared pool (default). 422 storage_pool_exceeded when the pool has not "
        "that much left.",
    ),
]


TLS_IN = (
    "Recorded, not enforced per mailbox: inbound TLS is the deployment's InboundTlsPolicy (Require refuses "
    "mail not sent over TLS, for every recipient; docs/mailcow-api.md says why)"
)
TLS_OUT = "Send only over TLS: SES's TLS-requiring configuration set, or an SMTP relay reached over TLS"

LIMIT_ERRORS = (
    "validation_error, unknown_domain, invalid_address, weak_password, quota_exceeds_maxquota, "
    "quota_exceeds_allocation: a field is wrong (`fields`); mailbox_limit_reached, "
    "domain_mailbox_limit_reached, domain_quota_exceeded, storage_pool_exceeded: a limit would be exceeded"
)


class ForwardingView(BaseModel):
    enabled: bool
    targets: list[str]
    keep_copy: bool
    updated_at: Timestamp | None


class MailboxView(BaseModel):
    id: str
    address: str
    local_part: str
    domain: str
    domain_id: str
    name: str | None
    quota: int = Field(description="MB")
    used_bytes: int
    active: bool
    paused: bool = Field(description="A paused mailbox cannot send")
    paused_at: Timestamp | None
    pause_reason: str | None
    note: str | None
    storage_allocation_mb: int | None
    storage_mode: Literal["shared", "dedicated"]
    force_pw_update: bool
    tls_enforce_in: bool = Field(description=TLS_IN)
    tls_enforce_out: bool = Field(description=TLS_OUT)
    forwarding: ForwardingView
    message_token_count: int
    created_via: Literal["api", "invite"]
    invite_id: str | None
    password_updated_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
