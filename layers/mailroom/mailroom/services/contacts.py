"""A mailbox's address book: contacts (``/api/v1/messages/contacts``), searched by a prefix of a
name, a word of it, an address or the organization (``store.contacts``: sort-key prefixes of the
mailbox partition, no Scan). Addresses are unique per mailbox; see docs/contacts-calendar.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import errors, ids
from mailroom.domain import contacts as rules
from mailroom.domain.contacts import Contact, InvalidContact
from mailroom.store import contacts as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

FIELDS = (
    "name",
    "given_name",
    "family_name",
    "nickname",
    "emails",
    "phones",
    "organization",
    "title",
    "notes",
    "birthday",
    "addresses",
    "photo_url",
)


@dataclass(frozen=True, slots=True)
class ContactListing:
    views: list[dict[str, Any]]
    page: Page
    total: int | None


def contact_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        **{name: item.get(name) for name in FIELDS},
        "emails": item.get("emails") or [],
        "phones": item.get("phones") or [],
        "addresses": item.get("addresses") or [],
        "groups": sorted(item.get("groups") or []),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def contact_of(item: Item) -> Contact:
    return rules.from_values({name: item.get(name) for name in FIELDS})


def checked(contact: Contact) -> Contact:
    """The contact normalized, or 422 naming the field; a contact needs a name or an address."""
    try:
        cleaned = rules.normalize(contact)
    except InvalidContact as exc:
        raise errors.validation(exc.message, field=exc.field) from exc
    if cleaned.is_empty():
        raise errors.validation("a contact needs a name, an email address or a phone number", field="name")
    return cleaned


def _taken(exc: store.AddressTaken) -> errors.MailroomError:
    listed = ", ".join(exc.addresses)
    return errors.conflict(
        f"{listed} already belong{'s' if len(exc.addresses) == 1 else ''} to another contact of this mailbox",
        code="contact_address_taken",
        hint="Update that contact instead, or import: an import merges by address.",
    )


def load(table: Table, mailbox: Item, contact_id: str) -> Item:
    found = (
        store.get(table, mailbox["org_id"], mailbox["id"], contact_id)
        if ids.is_id(contact_id, "ct")
        else None
    )
    if found is None:
        raise errors.not_found("Contact")
    return found


def create(table: Table, mailbox: Item, contact: Contact) -> Item:
    cleaned = checked(contact)
    return write_new(table, mailbox, cleaned)


def write_new(table: Table, mailbox: Item, cleaned: Contact) -> Item:
    try:
        return store.create(
            table,
            mailbox["org_id"],
            mailbox["id"],
            rules.to_values(cleaned),
            addresses=cleaned.email_addresses,
            terms=rules.search_terms(cleaned),
        )
    except store.AddressTaken as exc:
        raise _taken(exc) from exc
    except store.LimitReached as exc:
        raise errors.LimitReached("contact_limit_reached", str(exc)) from exc


def write_over(table: Table, mailbox: Item, current: Item, cleaned: Contact) -> Item:
    try:
        return store.replace(
            table,
            mailbox["org_id"],
            mailbox["id"],
            current,
            rules.to_values(cleaned),
            addresses=cleaned.email_addresses,
            terms=rules.search_terms(cleaned),
        )
    except store.AddressTaken as exc:
        raise _taken(exc) from exc
    except ConditionFailed as exc:
        raise errors.concurrent_update() from exc


def update(table: Table, mailbox: Item, current: Item, changes: dict[str, Any]) -> Item:
    """PATCH: the given fields replace the stored ones (a list replaces the whole list; null clears)."""
    values = {name: current.get(name) for name in FIELDS}
    values.update(changes)
    cleaned = checked(rules.from_values(values))
    return write_over(table, mailbox, current, cleaned)


def remove(table: Table, mailbox: Item, current: Item) -> None:
    try:
        store.remove(table, mailbox["org_id"], mailbox["id"], current)
    except ConditionFailed as exc:
        raise errors.concurrent_update() from exc


def list_contacts(
    table: Table, mailbox: Item, *, query: str | None, per_page: int, cursor: str | None
) -> ContactListing:
    """Every contact (newest last), or those found by ``query`` (in the order of the term matched)."""
    total = max(0, int(mailbox.get("contact_count", 0)))
    prefix = rules.search_prefix(query or "")
    if not prefix:
        page = store.list_page(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)
        return ContactListing([contact_view(i) for i in page.items], page, total)
    found, next_cursor = store.search(
        table, mailbox["org_id"], mailbox["id"], prefix, per_page=per_page, cursor=cursor
    )
    # Search pages link forward only (like every filtered listing) and have no known total.
    page = Page(items=found, number=1, next_cursor=next_cursor, prev_cursor=None)
    return ContactListing([contact_view(i) for i in found], page, None)
