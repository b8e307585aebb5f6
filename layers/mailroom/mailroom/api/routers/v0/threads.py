"""``/api/v0/inboxes/{inboxId}/threads``: list by latest activity, read with every message in
order, delete with every message (204), as agentmail-v0-api.txt describes them (views over
``services.v0_mail``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailroom.api.mailbox_access import BoundMailbox, require_inbox
from mailroom.api.models import Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.services import v0_mail as service
from mailroom.store.table import Item, Table

router = api_router("/api/v0/inboxes/{inboxId}/threads", tags=["v0 threads"])
Reader = Annotated[BoundMailbox, Depends(require_inbox("read"))]
Writer = Annotated[BoundMailbox, Depends(require_inbox("write"))]
Pages = Annotated[PageParams, Depends(page_params)]
ThreadId = Annotated[
    str, Path(alias="threadId", min_length=1, max_length=64, description="A thread_id of the inbox (thr_...)")
]
NOT_FOUND = "not_found: no such inbox, or no such thread in it"


class V0ThreadItem(BaseModel):
    inbox_id: str
    thread_id: str = Field(examples=["thr_01JABCDEF0123456789ABCDEFG"])
    labels: list[str] = Field(description="Every label of its messages")
    timestamp: Timestamp | None = Field(description="Its latest activity")
    received_timestamp: Timestamp | None = Field(description="Its latest received message; null if none")
    sent_timestamp: Timestamp | None = Field(description="Its latest sent message; null if none")
    senders: list[str]
    recipients: list[str]
    subject: str
    preview: str = Field(description="The start of its latest message")
    last_message_id: str | None
    message_count: int = Field(ge=0)
    size: int = Field(ge=0, description="Bytes of its messages as stored")


class V0ThreadMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    message_id: str
    direction: Literal["inbound", "outbound"]
    from_: str | None = Field(alias="from")
    to: list[str]
    subject: str
    text: str | None = Field(
        description="null past the thread's 2 MB body budget (get the message for it), or without a text part"
    )
    timestamp: Timestamp


class V0Thread(BaseModel):
    inbox_id: str
    thread_id: str
    subject: str
    message_count: int = Field(ge=0)
    preview: str
    messages: list[V0ThreadMessage] = Field(description="Every message, oldest first")


@dataclass(frozen=True, slots=True)
class InboxThread:
    mailbox: Item
    thread: Item


def _readable(bound: Reader, thread_id: ThreadId) -> InboxThread:
    return InboxThread(bound.mailbox, service.load_thread(Table(), bound.mailbox, thread_id))


def _writable(bound: Writer, thread_id: ThreadId) -> InboxThread:
    return InboxThread(bound.mailbox, service.load_thread(Table(), bound.mailbox, thread_id))


# The thread named in the path, in an inbox the caller may read (or change).
ReadableThread = Annotated[InboxThread, Depends(_readable)]
WritableThread = Annotated[InboxThread, Depends(_writable)]


@router.get(
    "",
    name="v0.thread.list",
    response_model=PageOf[V0ThreadItem],
    summary="List threads",
    responses=errors(e404="not_found: no such inbox"),
)
async def list_threads(bound: Reader, pages: Pages) -> dict[str, Any]:
    """The inbox's conversations, most recent activity first, a numbered page at a time."""
    data, total = service.list_threads(Table(), bound.mailbox, offset=pages.offset, limit=pages.page_size)
    return page_body(data, total=total, params=pages)


@router.get(
    "/{threadId}",
    name="v0.thread.get",
    response_model=V0Thread,
    summary="Get a thread",
    responses=errors(e404=NOT_FOUND),
)
async def get_thread(thread: ReadableThread) -> dict[str, Any]:
    """A conversation with all its messages (sent and received), oldest first, each with its text."""
    return service.thread_detail(Table(), thread.mailbox, thread.thread)


@router.delete(
    "/{threadId}",
    name="v0.thread.delete",
    status_code=204,
    response_class=Response,
    summary="Delete a thread",
    responses=errors(e404=NOT_FOUND),
)
async def delete_thread(thread: WritableThread, request: Request) -> Response:
    """Delete the conversation and every message in it, for good. Returns 204 No Content."""
    audit_target(request, "thread", thread.thread["id"], mailbox_id=thread.mailbox["id"])
    service.delete_thread(Table(), thread.mailbox, thread.thread)
    return Response(status_code=204)
