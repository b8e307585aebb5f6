"""A delete intent as the delete-intent routes and MailTrigger's mailbox answer it (two functions):
here so that the MailTrigger function does not build the delete-intent routes at init."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mailroom.api.models import Timestamp


class Purge(BaseModel):
    """The asynchronous removal of the deleted mailbox's stored mail."""

    status: Literal["queued", "running", "completed"]
    deleted_items: int
    deleted_objects: int
    queued_at: Timestamp | None
    completed_at: Timestamp | None


class IntentView(BaseModel):
    id: str
    mailbox_id: str
    address: str
    status: Literal["pending", "confirmed", "expired"]
    expires_at: Timestamp = Field(description="Confirm before this (15 minutes after creation)")
    created_at: Timestamp
    created_by: str | None
    confirmed_at: Timestamp | None
    confirmed_by: str | None
    confirm_path: str = Field(description="POST here to delete the mailbox")
    purge: Purge | None = Field(description="Once confirmed: the progress of the purge")


class ConfirmedIntent(IntentView):
    mailbox_deleted: Literal[True]
