"""``/api/v0/inboxes`` and ``/api/v0/inboxes/{inboxId}`` (agentmail-v0-api.txt;
services/v0_inboxes.py): an inbox is a mailbox, also visible as ``/api/v1/mailboxes/{id}``.

Scopes, for v1 ops tokens used here: the mailbox scope of the same action (``mailboxes:create``,
``:read``, ``:write``, ``:delete``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field

from mailroom.api.models import DisplayName, Strict, Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.services import v0_inboxes as service
from mailroom.store.table import Item, Table

router = api_router("/api/v0/inboxes", tags=["v0 inboxes"])
Pages = Annotated[PageParams, Depends(page_params)]
InboxId = Annotated[str, Path(alias="inboxId", description="An inbox_id of the organization")]
# a-zA-Z0-9._%+- (agentmail-v0-api.txt), and, as in any address, no leading, trailing or doubled dot.
USERNAME_PATTERN = r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*$"
NOT_FOUND = "not_found: no such inbox in this organization"


class V0CreateInbox(Strict):
    username: str = Field(
        min_length=1,
        max_length=64,
        pattern=USERNAME_PATTERN,
        description="The address's local part: a-zA-Z0-9._%+-, no leading, trailing or doubled dot. "
        "Stored lower case; unique on its domain (on the platform domain: across all organizations).",
        examples=["agent-1"],
    )
    domain: str | None = Field(
        default=None,
        max_length=300,
        description="A domain of the organization (its domain_id). Omitted, or the platform domain's "
        "name: the platform domain.",
        examples=["yourdomain.com"],
    )
    display_name: DisplayName | None = Field(default=None, max_length=255, description="Shown in From")
    client_id: str | None = Field(default=None, max_length=128, description="For your own tracking")


class V0UpdateInbox(Strict):
    display_name: DisplayName | None = Field(default=None, max_length=255, description="null clears it")


class V0Inbox(BaseModel):
    inbox_id: str = Field(examples=["mbx_01JABCDEF0123456789ABCDEFG"])
    email_address: str = Field(examples=["agent-1@yourdomain.com"])
    username: str = Field(description="The local part, lower case", examples=["agent-1"])
    domain: str = Field(examples=["yourdomain.com"])
    display_name: str | None
    client_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


def _readable(principal: Annotated[Principal, Depends(require("mailboxes:read"))], inbox_id: InboxId) -> Item:
    return service.load_inbox(Table(), principal.org_id, inbox_id)


def _writable(
    principal: Annotated[Principal, Depends(require("mailboxes:write"))], inbox_id: InboxId
) -> Item:
    return service.load_inbox(Table(), principal.org_id, inbox_id)


def _deletable(
    principal: Annotated[Principal, Depends(require("mailboxes:delete"))], inbox_id: InboxId
) -> Item:
    return service.load_inbox(Table(), principal.org_id, inbox_id)


# The inbox named in the path, for a caller holding the scope of the action.
ReadableInbox = Annotated[Item, Depends(_readable)]
WritableInbox = Annotated[Item, Depends(_writable)]
DeletableInbox = Annotated[Item, Depends(_deletable)]


@router.post(
    "",
    name="v0.inbox.create",
    response_model=V0Inbox,
    summary="Create an inbox",
    responses=errors(
        e409="address_taken: the address is already a mailbox, alias or pending invite (on the "
        "platform domain: of any organization); concurrent_update: retry",
        e422="validation_error (a field; `errors` names it), invalid_address, unknown_domain (not a "
        "domain of this organization), mailbox_limit_reached, domain_mailbox_limit_reached, "
        "domain_quota_exceeded",
        e503="platform_domain_unavailable: the platform domain is hosted by an organization (name a "
        "domain of yours instead); service_unavailable: retry",
    ),
)
async def create_inbox(
    body: V0CreateInbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:create"))],
) -> dict[str, Any]:
    """A new inbox (a mailbox that receives and sends at once) at `username@domain`, on the
    platform domain unless `domain` names one of the organization's domains. It has no password:
    act on it with the API key (`/api/v0/inboxes/{inboxId}/messages`, `/threads`)."""
    audit_target(request, "mailbox", "-", username=body.username, domain=body.domain)
    mailbox = service.create_inbox(
        Table(),
        principal.org_id,
        service.NewInbox(
            username=body.username,
            domain=body.domain,
            display_name=body.display_name,
            client_id=body.client_id,
        ),
    )
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    return service.inbox_view(mailbox)


@router.get("", name="v0.inbox.list", response_model=PageOf[V0Inbox], summary="List inboxes")
async def list_inboxes(
    principal: Annotated[Principal, Depends(require("mailboxes:read"))], params: Pages
) -> dict[str, Any]:
    """Every inbox of the organization (also those made through `/api/v1/mailboxes`), in creation
    order, a numbered page at a time."""
    data, total = service.list_inboxes(
        Table(), principal.org_id, offset=params.offset, limit=params.page_size
    )
    return page_body(data, total=total, params=params)


@router.get(
    "/{inboxId}",
    name="v0.inbox.get",
    response_model=V0Inbox,
    summary="Get an inbox",
    responses=errors(e404=NOT_FOUND),
)
async def get_inbox(inbox: ReadableInbox) -> dict[str, Any]:
    """One inbox of the organization by its id: its address, username, domain, display name and
    client_id."""
    return service.inbox_view(inbox)


@router.patch(
    "/{inboxId}",
    name="v0.inbox.update",
    response_model=V0Inbox,
    summary="Update an inbox's display name",
    responses=errors(e404=NOT_FOUND),
)
async def update_inbox(inbox: WritableInbox, body: V0UpdateInbox, request: Request) -> dict[str, Any]:
    """Change `display_name` (null clears it); nothing else of an inbox is writable. An empty
    body changes nothing. Returns the inbox."""
    audit_target(request, "mailbox", inbox["id"], address=inbox["address"])
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return service.inbox_view(service.update_inbox(Table(), inbox, changes))


@router.delete(
    "/{inboxId}",
    name="v0.inbox.delete",
    status_code=204,
    response_class=Response,
    summary="Delete an inbox",
    responses=errors(e404=NOT_FOUND, e409="concurrent_update: the inbox changed meanwhile; retry"),
)
async def delete_inbox(inbox: DeletableInbox, request: Request) -> Response:
    """Delete the inbox and all its mail. Its address is free at once; the mail is purged in the
    background. Returns 204 No Content."""
    audit_target(request, "mailbox", inbox["id"])
    service.delete_inbox(Table(), inbox)
    return Response(status_code=204)
