"""The address book of a message token's mailbox: contacts (``/api/v1/messages/contacts``, search,
import and export) and contact groups (``/api/v1/messages/contact-groups``). Served by
ContactsFunction; see docs/contacts-calendar.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response

from mailroom.api import downloads, pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.contacts import (
    ContactBody,
    ContactPatch,
    ContactView,
    GroupBody,
    GroupPatch,
    GroupView,
    ImportBody,
    ImportReport,
    MembersBody,
)
from mailroom.services import contact_groups, contact_import, contacts
from mailroom.store.table import Item, Table

router = api_router("/api/v1/messages", tags=["contacts"])
groups_router = api_router("/api/v1/messages", tags=["contact groups"])

Reader = Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]
Writer = Annotated[BoundMailbox, Depends(require_mailbox("messages:write"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
ContactIdPath = Annotated[str, Path(description="The contact's id (ct_...)")]
GroupIdPath = Annotated[str, Path(description="The contact group's id (cg_...)")]
EXPORT_RESPONSES = downloads.documented(
    "text/vcard", "vCard 4.0 (text/vcard), or CSV in the Google layout (text/csv)"
)
EXPORT_RESPONSES[200]["content"]["text/csv"] = {"schema": {"type": "string", "format": "binary"}}
CONTACT_404 = "not_found: no such contact in this mailbox"
GROUP_404 = "not_found: no such contact group in this mailbox"


@dataclass(frozen=True, slots=True)
class Opened:
    mailbox: Item
    item: Item


def _readable_contact(bound: Reader, contact_id: ContactIdPath) -> Opened:
    return Opened(bound.mailbox, contacts.load(Table(), bound.mailbox, contact_id))


def _writable_contact(request: Request, bound: Writer, contact_id: ContactIdPath) -> Opened:
    audit_target(request, "contact", contact_id)
    return Opened(bound.mailbox, contacts.load(Table(), bound.mailbox, contact_id))


def _readable_group(bound: Reader, group_id: GroupIdPath) -> Opened:
    return Opened(bound.mailbox, contact_groups.load(Table(), bound.mailbox, group_id))


def _writable_group(request: Request, bound: Writer, group_id: GroupIdPath) -> Opened:
    audit_target(request, "contact_group", group_id)
    return Opened(bound.mailbox, contact_groups.load(Table(), bound.mailbox, group_id))


ReadableContact = Annotated[Opened, Depends(_readable_contact)]
WritableContact = Annotated[Opened, Depends(_writable_contact)]
ReadableGroup = Annotated[Opened, Depends(_readable_group)]
WritableGroup = Annotated[Opened, Depends(_writable_group)]


# --- contacts ------------------------------------------------------------------------------------


@router.get(
    "/contacts",
    name="contact.list",
    response_model=ListOf[ContactView],
    summary="List or search the mailbox's contacts",
    responses=errors(e422="invalid_cursor, or validation_error (q longer than 120 characters)"),
)
async def list_contacts(
    request: Request,
    bound: Reader,
    page_query: PageParams,
    q: Annotated[
        str | None,
        Query(
            max_length=120,
            description="A prefix of a name, of a word of it, of an address or of the organization "
            "(case and accents ignored); without it every contact, oldest first",
        ),
    ] = None,
) -> dict[str, Any]:
    """Contacts of the token's mailbox, a cursor page at a time. With `q`, those whose name, a word
    of the name, an address or the organization starts with it, in that term's alphabetical order
    (a search has no total and links forward only)."""
    listing = contacts.list_contacts(
        Table(), bound.mailbox, query=q, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@router.post(
    "/contacts",
    name="contact.create",
    status_code=201,
    response_model=One[ContactView],
    summary="Add a contact",
    responses=errors(
        e409="contact_address_taken: another contact of this mailbox has one of the addresses",
        e422="validation_error naming the field (an invalid address, birthday or URL; no name, address "
        "or phone), contact_limit_reached (50,000 per mailbox)",
    ),
)
async def create_contact(body: ContactBody, request: Request, bound: Writer) -> dict[str, Any]:
    """A new contact. Each email address belongs to at most one contact of the mailbox."""
    item = contacts.create(Table(), bound.mailbox, body.contact())
    audit_target(request, "contact", str(item["id"]))
    return one(contacts.contact_view(item))


@router.post(
    "/contacts:import",
    name="contact.import",
    response_model=One[ImportReport],
    summary="Import contacts from vCard (3.0, 4.0) or CSV (Google, Outlook, plain)",
    responses=errors(
        e422="invalid_vcard (no BEGIN:VCARD), unknown_csv_layout (the header row is not a known layout), "
        "too_many_contacts (over 10,000 in one file)"
    ),
)
async def import_contacts(body: ImportBody, request: Request, bound: Writer) -> dict[str, Any]:
    """Reads every card or row and reports each one: `imported`, `merged` (into the contact that
    already has one of its addresses, or that its vCard UID names, so an export re-imported merges),
    or `skipped` with the reason. A malformed card or field skips that record only."""
    audit_target(request, "contacts", str(bound.mailbox["id"]), format=body.format)
    report = contact_import.import_contacts(Table(), bound.mailbox, body.format, body.content)
    return one(report.view())


@router.get(
    "/contacts:export",
    name="contact.export",
    summary="Export every contact as vCard 4.0 or CSV (Google Contacts layout)",
    response_class=Response,
    responses=EXPORT_RESPONSES,
)
async def export_contacts(
    bound: Reader,
    format: Annotated[Literal["vcard", "csv"], Query(description="vcard (default) or csv")] = "vcard",
) -> Response:
    """The whole address book as one file (a download). Larger than 4 MiB: a redirect to a
    pre-signed link valid 15 minutes."""
    return downloads.response(contact_import.export_contacts(Table(), bound.mailbox, format))


@router.get(
    "/contacts/{contact_id}",
    name="contact.get",
    response_model=One[ContactView],
    summary="One contact",
    responses=errors(e404=CONTACT_404),
)
async def get_contact(opened: ReadableContact) -> dict[str, Any]:
    """The contact with every field and the groups it belongs to."""
    return one(contacts.contact_view(opened.item))


@router.patch(
    "/contacts/{contact_id}",
    name="contact.update",
    response_model=One[ContactView],
    summary="Change a contact's fields",
    responses=errors(
        e404=CONTACT_404,
        e409="contact_address_taken (another contact has the address), concurrent_update",
        e422="validation_error naming the field",
    ),
)
async def update_contact(body: ContactPatch, opened: WritableContact) -> dict[str, Any]:
    """Only the fields given change; a list (emails, phones, addresses) replaces the whole list."""
    item = contacts.update(Table(), opened.mailbox, opened.item, body.changes())
    return one(contacts.contact_view(item))


@router.delete(
    "/contacts/{contact_id}",
    name="contact.delete",
    status_code=204,
    summary="Delete a contact (it leaves its groups)",
    responses=errors(e404=CONTACT_404, e409="concurrent_update"),
)
async def delete_contact(opened: WritableContact) -> Response:
    """The contact, its addresses (free for another contact again) and its group memberships."""
    contacts.remove(Table(), opened.mailbox, opened.item)
    return Response(status_code=204)


# --- contact groups ------------------------------------------------------------------------------


@groups_router.get(
    "/contact-groups",
    name="contact_group.list",
    response_model=ListOf[GroupView],
    summary="List the mailbox's contact groups",
)
async def list_groups(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    """Groups with their member ids, oldest first, with a maintained total."""
    listing = contact_groups.list_groups(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@groups_router.post(
    "/contact-groups",
    name="contact_group.create",
    status_code=201,
    response_model=One[GroupView],
    summary="Create a contact group (send to it with group:<id> as a recipient)",
    responses=errors(e422="validation_error, contact_group_limit_reached (200 per mailbox)"),
)
async def create_group(body: GroupBody, request: Request, bound: Writer) -> dict[str, Any]:
    """An empty group; add contacts with POST .../contact-groups/{id}/members. A send naming
    `group:<id>` in to, cc or bcc goes to each member's first address."""
    view = contact_groups.create(Table(), bound.mailbox, body.name, body.description)
    audit_target(request, "contact_group", str(view["id"]))
    return one(view)


@groups_router.get(
    "/contact-groups/{group_id}",
    name="contact_group.get",
    response_model=One[GroupView],
    summary="One contact group",
    responses=errors(e404=GROUP_404),
)
async def get_group(opened: ReadableGroup) -> dict[str, Any]:
    """The group and its member ids."""
    return one(contact_groups.group_view(opened.item))


@groups_router.patch(
    "/contact-groups/{group_id}",
    name="contact_group.update",
    response_model=One[GroupView],
    summary="Rename a contact group or change its description",
    responses=errors(e404=GROUP_404),
)
async def update_group(body: GroupPatch, opened: WritableGroup) -> dict[str, Any]:
    """Only the fields given change."""
    return one(contact_groups.update(Table(), opened.mailbox, opened.item, body.changes()))


@groups_router.delete(
    "/contact-groups/{group_id}",
    name="contact_group.delete",
    status_code=204,
    summary="Delete a contact group (its contacts stay)",
    responses=errors(e404=GROUP_404),
)
async def delete_group(opened: WritableGroup) -> Response:
    """The group goes; its member contacts are not deleted."""
    contact_groups.delete(Table(), opened.mailbox, opened.item)
    return Response(status_code=204)


@groups_router.post(
    "/contact-groups/{group_id}/members",
    name="contact_group.add_members",
    response_model=One[GroupView],
    summary="Add contacts to a group",
    responses=errors(
        e404=GROUP_404,
        e422="unknown_contact (no such contact), contact_group_member_limit_reached (1,000 members, or a "
        "contact in 20 groups)",
    ),
)
async def add_members(body: MembersBody, opened: WritableGroup) -> dict[str, Any]:
    """Adds up to 50 contacts at once (already members are ignored), all or none."""
    return one(contact_groups.add_members(Table(), opened.mailbox, opened.item, body.contact_ids))


@groups_router.delete(
    "/contact-groups/{group_id}/members",
    name="contact_group.remove_members",
    response_model=One[GroupView],
    summary="Remove contacts from a group",
    responses=errors(e404=GROUP_404, e409="concurrent_update"),
)
async def remove_members(body: MembersBody, opened: WritableGroup) -> dict[str, Any]:
    """Removes up to 50 contacts (ids that are not members are ignored); the contacts stay."""
    return one(contact_groups.remove_members(Table(), opened.mailbox, opened.item, body.contact_ids))
