"""What a mailbox rule's action is and what it did, as the rules router and MailTrigger's processing
log answer it (two functions): here so that the MailTrigger function does not build the rules routes
at init."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ActionType = Literal["move", "add_label", "remove_label", "mark_read", "flag", "forward", "discard", "reject"]


class LoggedAction(BaseModel):
    rule_id: str
    type: ActionType
    folder: str | None = None
    label: str | None = None
    to: str | None = None
    result: str | None = Field(default=None, description="forward: forwarded, or why not (spam, loop...)")
