"""The migration fields, error texts and estimate basis that single migrations and bulk migrations
share (two functions): here so that the bulk function does not build the single-migration routes at
init."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailroom.api.models import errors
from mailroom.api.openapi import COMMON_ERRORS

# Passwords are taken byte for byte: the models' whitespace stripping must not apply to them.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]
Provider = Literal["gmail", "outlook", "yahoo", "icloud", "generic_imap"]
Security = Literal["ssl", "tls", "none"]
FolderStrategy = Literal["all", "standard", "inbox_only"]
FolderName = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
JobStatus = Literal["pending", "validating", "planning", "processing", "completed", "failed", "cancelled"]
ErrorCode = Literal[
    "connection_failed", "target_unavailable", "source_password_missing", "internal_error", "timeout"
]
ErrorReason = Literal["auth_failed", "connection_failed", "tls_failed", "timeout", "protocol_error"]

SOURCE_ERRORS = (
    "validation_error: a field is not valid, or the provider needs the server (generic_imap: source_host, "
    "source_port and source_security); `fields` names it"
)
RATE_LIMITED = (
    "rate_limited: over the token's requests per minute, or over its 10 migration writes a minute "
    "(then with X-Migration-RateLimit-Limit, -Remaining and -Reset); Retry-After says when to retry"
)
CAPACITY = (
    "migration_capacity_reached: the platform runs as many migrations as it allows (retryable: retry in a "
    "few minutes); workflow_unavailable: the workflow could not be started (the job failed; retry it)"
)


def documented(**described: str) -> dict[int | str, dict[str, Any]]:
    """``errors(...)`` for a route's own statuses, each keeping what every such route can answer
    too (a reused Idempotency-Key's 409, the body's 422, a busy dependency's 503)."""
    kept = {409, 422, 503}
    return errors(
        **{
            key: f"{text}. Also {COMMON_ERRORS[int(key[1:])]}" if int(key[1:]) in kept else text
            for key, text in described.items()
        }
    )


class EstimateBasis(BaseModel):
    """Where an estimate's figures come from: measured, or the defaults standing in for them."""

    messages: Literal["counted", "sampled", "default"] = Field(
        description="counted: the source's message counts (STATUS, or the plan's UIDs); sampled (bulk): some "
        "rows' sources counted, the others taken as their mean; default: 5,000 per mailbox, nothing counted"
    )
    size: Literal["counted", "sampled", "default"] = Field(
        description="counted: every message's size known (STATUS=SIZE, or every RFC822.SIZE read); sampled: "
        "the RFC822.SIZE of a bounded sample (at most 300 messages in 10 folders, 5 s), its mean standing "
        "for the rest; default: 75 KB a message"
    )
    throughput: Literal["measured", "default"] = Field(
        description="measured: the rate and per-job overhead this deployment recorded on its completed "
        "migrations; default (before the first): 10 messages/s and 30 s a job"
    )
    jobs_measured: int = Field(ge=0, description="Completed migrations the measured throughput comes from")
