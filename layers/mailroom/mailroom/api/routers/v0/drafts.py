"""``/api/v0/inboxes/{inboxId}/drafts``: create, list, read, change, delete and send drafts, as agent
inbox APIs offer them (beyond agentmail-v0-api.txt; shapes follow its messages). A draft is a
message in the inbox's Drafts folder (``services.v0_drafts``, docs/compose.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import Field

from mailroom import ids
from mailroom.api.mailbox_access import BoundMailbox, require_inbox
from mailroom.api.models import Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.v0_messages import (
    MAX_ATTACHMENTS,
    SENDS,
    Addresses,
    Aliased,
    Exact,
    Labels,
    V0AttachmentIn,
    V0AttachmentMeta,
    V0Sent,
    listed,
    sent_view,
)
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.services import drafts, sending, v0_drafts, v0_mail
from mailroom.services.sending import SendRequest
from mailroom.store.table import Item, Table

router = api_router("/api/v0/inboxes/{inboxId}/drafts", tags=["v0 drafts"])
Reader = Annotated[BoundMailbox, Depends(require_inbox("read"))]
Writer = Annotated[BoundMailbox, Depends(require_inbox("write"))]
Sender = Annotated[BoundMailbox, Depends(require_inbox("send"))]
Pages = Annotated[PageParams, Depends(page_params)]
DraftId = Annotated[
    str, Path(alias="draftId", min_length=1, max_length=64, description="A draft_id of the inbox (msg_...)")
]
NOT_FOUND = "not_found: no such inbox, or no such draft in it"
SAVES = (
    "validation_error (`errors` names the field: an address, a header, an attachment), "
    "too_many_recipients, reserved_header, message_too_large, mailbox_over_quota"
)


class V0DraftBody(Exact):
    """Every field is optional: a draft may be saved incomplete; the send checks the recipients."""

    to: Addresses | None = Field(default=None, description="string or string[]")
    cc: Addresses | None = Field(default=None, description="string or string[]")
    bcc: Addresses | None = Field(default=None, description="string or string[]")
    reply_to: Addresses | None = Field(default=None, description="string or string[]")
    subject: str | None = Field(default=None, description="One line")
    text: str | None = Field(default=None, description="Plain text body")
    html: str | None = Field(default=None, description="HTML body")
    labels: Labels | None = Field(default=None, description="Kept on the draft and on the sent message")
    attachments: list[V0AttachmentIn] | None = Field(default=None, max_length=MAX_ATTACHMENTS)
    headers: dict[str, str] | None = Field(default=None, description="Custom headers (X-...), one line each")


class V0NewDraft(V0DraftBody):
    in_reply_to: str | None = Field(
        default=None,
        max_length=64,
        description="A message_id of this inbox the draft replies to: to (when not given), 'Re:' subject "
        "(when not given), In-Reply-To and References are set; the draft joins its thread",
    )


class V0DraftItem(Aliased):
    inbox_id: str
    draft_id: str
    thread_id: str
    labels: list[str]
    to: list[str]
    cc: list[str] | None
    subject: str
    preview: str
    updated_at: Timestamp


class V0Draft(Aliased):
    inbox_id: str
    draft_id: str = Field(examples=["msg_01JABCDEF0123456789ABCDEFG"])
    thread_id: str
    labels: list[str]
    from_: str | None = Field(alias="from")
    to: list[str]
    cc: list[str] | None
    bcc: list[str] | None
    reply_to: list[str] | None
    subject: str
    preview: str
    text: str | None
    html: str | None
    in_reply_to: str | None = Field(description="The Message-ID it answers, if any")
    references: list[str] | None
    headers: dict[str, str] = Field(description="The custom headers it will be sent with")
    attachments: list[V0AttachmentMeta]
    created_at: Timestamp
    updated_at: Timestamp


def _changes(body: V0DraftBody) -> dict[str, Any]:
    given = body.model_fields_set
    converted: dict[str, Any] = {}
    for name in ("to", "cc", "bcc", "reply_to"):
        if name in given:
            converted[name] = listed(getattr(body, name))
    for name in ("subject",):
        if name in given:
            converted[name] = body.subject or ""
    for name in ("text", "html"):
        if name in given:
            converted[name] = getattr(body, name)
    if "labels" in given:
        converted["labels"] = list(body.labels or [])
    if "headers" in given:
        v0_mail.check_headers(body.headers or {})
        converted["headers"] = dict(body.headers or {})
    return converted


async def _attachments(body: V0DraftBody) -> list[Any] | None:
    if "attachments" not in body.model_fields_set:
        return None
    return await v0_mail.resolve_attachments([a.as_new() for a in body.attachments or []])


def _draft(bound: BoundMailbox, draft_id: str) -> Item:
    return v0_drafts.load(Table(), bound.mailbox, draft_id)


_DRAFT: dict[str, Any] = {"response_model": V0Draft, "response_model_by_alias": True}


@router.post(
    "",
    name="v0.draft.create",
    summary="Create a draft (nothing is sent)",
    responses=errors(e404="not_found: no such inbox", e422=SAVES),
    **_DRAFT,
)
async def create_draft(body: V0NewDraft, request: Request, bound: Writer) -> dict[str, Any]:
    """A draft in the inbox: every field optional. With `in_reply_to` (a message_id of this inbox)
    it is a reply draft in that message's thread. Send it with POST .../drafts/{draftId}/send."""
    audit_target(request, "inbox", bound.mailbox["id"])
    changes = _changes(body)
    attachments = await _attachments(body)
    send_request = SendRequest(**{"to": [], **changes})
    if attachments is not None:
        send_request.attachments = attachments
    reply_to = body.in_reply_to
    if reply_to is not None and not ids.is_id(reply_to, "msg"):
        raise sending.invalid("in_reply_to", "a message_id of this inbox (msg_...)")
    return v0_drafts.create(Table(), bound.mailbox, send_request, reply_to_message=reply_to)


@router.get(
    "",
    name="v0.draft.list",
    response_model=PageOf[V0DraftItem],
    summary="List the inbox's drafts",
    responses=errors(e404="not_found: no such inbox"),
)
async def list_drafts(bound: Reader, pages: Pages) -> dict[str, Any]:
    """Drafts newest first, a numbered page at a time; `total` counts them all."""
    data, total = v0_drafts.list_drafts(Table(), bound.mailbox, offset=pages.offset, limit=pages.page_size)
    return page_body(data, total=total, params=pages)


@router.get(
    "/{draftId}", name="v0.draft.get", summary="Get a draft", responses=errors(e404=NOT_FOUND), **_DRAFT
)
async def get_draft(draft_id: DraftId, bound: Reader) -> dict[str, Any]:
    """The draft with its bodies, headers and attachments."""
    return v0_drafts.draft_view(_draft(bound, draft_id))


@router.patch(
    "/{draftId}",
    name="v0.draft.update",
    summary="Change a draft (the fields given)",
    responses=errors(e404=NOT_FOUND, e409="draft_busy: being sent or changed by another request", e422=SAVES),
    **_DRAFT,
)
async def update_draft(
    draft_id: DraftId, body: V0DraftBody, request: Request, bound: Writer
) -> dict[str, Any]:
    """Fields given replace the draft's (`null` clears one); the others stay, attachments too
    unless `attachments` is given. The draft keeps its draft_id."""
    audit_target(request, "message", draft_id, mailbox_id=bound.mailbox["id"])
    table = Table()
    draft = v0_drafts.load(table, bound.mailbox, draft_id)
    changes = _changes(body)
    attachments = await _attachments(body)
    return v0_drafts.update(table, bound.mailbox, draft, changes, attachments)


@router.delete(
    "/{draftId}",
    name="v0.draft.delete",
    status_code=204,
    summary="Delete a draft",
    responses=errors(e404=NOT_FOUND, e409="draft_busy: being sent or changed by another request"),
)
async def delete_draft(draft_id: DraftId, request: Request, bound: Writer) -> Response:
    """Removes the draft for good (it is not moved to a trash)."""
    audit_target(request, "message", draft_id, mailbox_id=bound.mailbox["id"])
    table = Table()
    v0_drafts.delete(table, v0_drafts.load(table, bound.mailbox, draft_id))
    return Response(status_code=204)


@router.post(
    "/{draftId}/send",
    name="v0.draft.send",
    response_model=V0Sent,
    summary="Send a draft as saved; it stops being a draft",
    responses=errors(
        **{**SENDS, "e404": NOT_FOUND},
        e409="draft_already_sent (sent before), draft_busy (another request is sending it)",
    ),
)
async def send_draft(draft_id: DraftId, request: Request, bound: Sender) -> dict[str, Any]:
    """Sends the draft exactly once (a second send is 409) and returns the sent message's ids; the
    sent message is stored like any sent message, in the draft's thread."""
    audit_target(request, "message", draft_id, mailbox_id=bound.mailbox["id"])
    table = Table()
    v0_drafts.load(table, bound.mailbox, draft_id)
    return sent_view(drafts.send(table, bound.mailbox, draft_id))
