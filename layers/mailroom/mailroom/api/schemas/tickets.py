"""What a ticket message is, shared by the tickets router and the operator's support router (two
functions): here so that the support function does not build the tickets routes at init."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mailroom.api.models import Timestamp
from mailroom.domain import tickets as rules

Body = Annotated[
    str,
    Field(
        min_length=1,
        max_length=rules.MAX_BODY,
        description=f"Plain text, up to {rules.MAX_BODY} characters (emailed to the operator as written)",
    ),
]


class TicketMessageView(BaseModel):
    id: str = Field(description="tkm_...")
    ticket_id: str
    author: Literal["organization", "operator"]
    author_name: str | None = Field(description="The token's name, or the operator's name or address")
    via: Literal["api", "email", "cli", "support_api"]
    body: str
    emailed: bool = Field(description="An organization message that was emailed to the operator")
    created_at: Timestamp
    edited_at: Timestamp | None
