"""``/api/v0/inboxes`` and ``/api/v0/inboxes/{inboxId}`` (agentmail-v0-api.txt).

An inbox is a mailbox: the same item, the same services, visible as ``/api/v1/mailboxes/{id}``
(``inbox_id`` is the mailbox id; ``username`` its local part; ``display_name`` its name). Without
a ``domain`` the inbox goes on the platform domain (services/platform_domain.py). A v0 inbox has no
password: agents reach it with the organization's API key (an administrator may give it one with
``POST /api/v1/mailboxes/{id}/password``). Deleting one is v1's deletion without the intent step
(services/deletion.py): its address is free at once and its mail is purged in the background.

Scopes, for v1 ops tokens used here: the mailbox scope of the same action (``mailboxes:create``,
``:read``, ``:write``, ``:delete``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field

from mailroom import errors
from mailroom.api.models import DisplayName, Strict
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.principal import Principal
from mailroom.services import deletion, platform_domain
from mailroom.services import mailboxes as service
from mailroom.store import mailboxes as store
from mailroom.store.table import Item, Table

router = api_router("/api/v0/inboxes", tags=["v0 inboxes"])
Pages = Annotated[PageParams, Depends(page_params)]
InboxId = Annotated[str, Path(alias="inboxId")]
MAX_ID_LENGTH = 64  # longer is no id of ours: 404 like any unknown id, without asking DynamoDB


class CreateInbox(Strict):
    username: str = Field(min_length=1, max_length=64, description="a-zA-Z0-9._%+-")
    domain: str | None = Field(
        default=None, max_length=300, description="A domain of the organization; default: the platform domain"
    )
    display_name: DisplayName | None = Field(default=None, max_length=255)
    client_id: str | None = Field(default=None, max_length=128, description="For your own tracking")


class UpdateInbox(Strict):
    display_name: DisplayName | None = Field(default=None, max_length=255)


class Inbox(BaseModel):
    inbox_id: str
    email_address: str
    username: str
    domain: str
    display_name: str | None
    client_id: str | None
    created_at: str
    updated_at: str


def inbox_view(mailbox: Item) -> dict[str, Any]:
    return {
        "inbox_id": mailbox["id"],
        "email_address": mailbox["address"],
        "username": mailbox["local_part"],
        "domain": mailbox["domain"],
        "display_name": mailbox.get("name"),
        "client_id": mailbox.get("client_id"),
        "created_at": mailbox["created_at"],
        "updated_at": mailbox["updated_at"],
    }


def _load(table: Table, principal: Principal, inbox_id: str) -> Item:
    mailbox = store.get(table, principal.org_id, inbox_id) if len(inbox_id) <= MAX_ID_LENGTH else None
    if mailbox is None:
        raise errors.not_found("Inbox")
    return mailbox


def _on_platform(domain: str | None) -> bool:
    return domain is None or domain.strip().rstrip(".").lower() == platform_domain.name()


@router.post("", name="v0.inbox.create", response_model=Inbox, summary="Create an inbox (a mailbox)")
async def create_inbox(
    body: CreateInbox, request: Request, principal: Annotated[Principal, Depends(require("mailboxes:create"))]
) -> dict[str, Any]:
    table = Table()
    audit_target(request, "mailbox", "-", username=body.username, domain=body.domain)
    domain = platform_domain.domain_for(table, principal.org_id) if _on_platform(body.domain) else None
    mailbox = service.create_mailbox(
        table,
        principal.org_id,
        service.NewMailbox(
            local_part=body.username,
            domain=domain["domain"] if domain else str(body.domain),
            password=None,
            name=body.display_name,
        ),
        domain=domain,
        extra={"client_id": body.client_id},
        local_part_field="username",
    )
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    return inbox_view(mailbox)


@router.get("", name="v0.inbox.list", response_model=PageOf[Inbox], summary="List the organization's inboxes")
async def list_inboxes(
    principal: Annotated[Principal, Depends(require("mailboxes:read"))],
    params: Pages,
) -> dict[str, Any]:
    table = Table()
    items = store.window(table, principal.org_id, offset=params.offset, limit=params.page_size)
    org = service.load_org(table, principal.org_id)
    return page_body([inbox_view(m) for m in items], total=int(org.get("mailbox_count", 0)), params=params)


@router.get("/{inboxId}", name="v0.inbox.get", response_model=Inbox, summary="Get an inbox")
async def get_inbox(
    inbox_id: InboxId, principal: Annotated[Principal, Depends(require("mailboxes:read"))]
) -> dict[str, Any]:
    return inbox_view(_load(Table(), principal, inbox_id))


@router.patch("/{inboxId}", name="v0.inbox.update", response_model=Inbox, summary="Change the display name")
async def update_inbox(
    inbox_id: InboxId,
    body: UpdateInbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:write"))],
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, inbox_id)
    audit_target(request, "mailbox", inbox_id, address=mailbox["address"])
    if "display_name" not in body.model_fields_set:
        return inbox_view(mailbox)
    return inbox_view(service.set_fields(table, mailbox, {"name": body.display_name}))


@router.delete(
    "/{inboxId}", name="v0.inbox.delete", status_code=204, summary="Delete an inbox and all of its mail"
)
async def delete_inbox(
    inbox_id: InboxId, request: Request, principal: Annotated[Principal, Depends(require("mailboxes:delete"))]
) -> Response:
    audit_target(request, "mailbox", inbox_id)
    _load(Table(), principal, inbox_id)  # 404 for an id of another organization or none at all
    deletion.delete_now(Table(), principal.org_id, inbox_id, what="Inbox")
    return Response(status_code=204)
