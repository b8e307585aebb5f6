"""``/api/v0/inboxes/{inboxId}/threads``: list by latest activity, read with every message in
order, delete with every message (204), as agentmail-v0-api.txt describes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailroom.api.mailbox_access import BoundMailbox, require_inbox
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.routers.v0.messages import PageOf
from mailroom.api.v0_pages import PageParams, page_body, page_params
from mailroom.services import v0_mail as service
from mailroom.store.table import Table

router = api_router("/api/v0/inboxes/{inboxId}/threads", tags=["v0 threads"])
Reader = Annotated[BoundMailbox, Depends(require_inbox("read"))]
Writer = Annotated[BoundMailbox, Depends(require_inbox("write"))]
Pages = Annotated[PageParams, Depends(page_params)]
ThreadId = Annotated[str, Path(alias="threadId", min_length=1, max_length=64)]


class ThreadItem(BaseModel):
    inbox_id: str
    thread_id: str
    labels: list[str]
    timestamp: str | None
    received_timestamp: str | None
    sent_timestamp: str | None
    senders: list[str]
    recipients: list[str]
    subject: str
    preview: str
    last_message_id: str | None
    message_count: int
    size: int


class ThreadMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    message_id: str
    direction: Literal["inbound", "outbound"]
    from_: str | None = Field(alias="from")
    to: list[str]
    subject: str
    text: str | None
    timestamp: str


class Thread(BaseModel):
    inbox_id: str
    thread_id: str
    subject: str
    message_count: int
    preview: str
    messages: list[ThreadMessage]


@router.get(
    "",
    name="v0.thread.list",
    response_model=PageOf[ThreadItem],
    summary="Threads, most recent activity first",
)
async def list_threads(bound: Reader, pages: Pages) -> dict[str, Any]:
    data, total = service.list_threads(Table(), bound.mailbox, offset=pages.offset, limit=pages.page_size)
    return page_body(data, total=total, params=pages)


@router.get(
    "/{threadId}",
    name="v0.thread.get",
    response_model=Thread,
    response_model_by_alias=True,
    summary="A thread with all its messages, oldest first",
)
async def get_thread(thread_id: ThreadId, bound: Reader) -> dict[str, Any]:
    return service.thread_detail(Table(), bound.mailbox, thread_id)


@router.delete(
    "/{threadId}",
    name="v0.thread.delete",
    status_code=204,
    summary="Delete a thread and all its messages for good",
)
async def delete_thread(thread_id: ThreadId, request: Request, bound: Writer) -> Response:
    audit_target(request, "thread", thread_id, mailbox_id=bound.mailbox["id"])
    service.delete_thread(Table(), bound.mailbox, thread_id)
    return Response(status_code=204)
