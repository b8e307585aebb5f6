"""Contact groups of a mailbox (``/api/v1/messages/contact-groups``), and a group as a recipient.

A send names a group as ``group:<id>`` in ``to``, ``cc`` or ``bcc``; ``expand_recipients`` (the one
call ``services.sending`` makes) replaces it by its members' first addresses before the message is
composed. The 50-recipient limit holds for the expanded message: a group that takes a send over it
is refused with 422 ``too_many_recipients`` saying so (before anything is sent).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mailroom import errors, ids
from mailroom.mail.compose import MAX_RECIPIENTS
from mailroom.store import contacts as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

if TYPE_CHECKING:
    from mailroom.services.sending import SendRequest

GROUP_PREFIX = "group:"
MAX_MEMBERS_PER_CALL = 50
MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class GroupListing:
    views: list[dict[str, Any]]
    page: Page
    total: int


def group_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "description": item.get("description"),
        "member_ids": sorted(item.get("members") or []),
        "member_count": len(item.get("members") or []),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def load(table: Table, mailbox: Item, group_id: str) -> Item:
    found = (
        store.get_group(table, mailbox["org_id"], mailbox["id"], group_id)
        if ids.is_id(group_id, "cg")
        else None
    )
    if found is None:
        raise errors.not_found("Contact group")
    return found


def list_groups(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> GroupListing:
    page = store.list_groups(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)
    total = max(0, int(mailbox.get("contact_group_count", 0)))
    return GroupListing([group_view(i) for i in page.items], page, total)


def create(table: Table, mailbox: Item, name: str, description: str | None) -> dict[str, Any]:
    try:
        item = store.create_group(table, mailbox["org_id"], mailbox["id"], name, description)
    except store.LimitReached as exc:
        raise errors.LimitReached("contact_group_limit_reached", str(exc)) from exc
    return group_view(item)


def update(table: Table, mailbox: Item, group: Item, changes: dict[str, Any]) -> dict[str, Any]:
    try:
        item = store.rename_group(table, mailbox["org_id"], mailbox["id"], str(group["id"]), changes)
    except ConditionFailed as exc:
        raise errors.not_found("Contact group") from exc
    return group_view(item)


def delete(table: Table, mailbox: Item, group: Item) -> None:
    try:
        store.delete_group(table, mailbox["org_id"], mailbox["id"], group)
    except ConditionFailed as exc:
        raise errors.not_found("Contact group") from exc


def _checked_ids(contact_ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(contact_ids))
    for position, contact_id in enumerate(unique):
        if not ids.is_id(contact_id, "ct"):
            raise errors.validation(
                f"'{contact_id[:40]}' is not a contact id (ct_...)", field=f"contact_ids.{position}"
            )
    return unique


def add_members(table: Table, mailbox: Item, group: Item, contact_ids: list[str]) -> dict[str, Any]:
    wanted = [c for c in _checked_ids(contact_ids) if c not in (group.get("members") or set())]
    if not wanted:
        return group_view(group)
    try:
        item = store.add_members(table, mailbox["org_id"], mailbox["id"], str(group["id"]), wanted)
    except KeyError as exc:
        missing = exc.args[0]
        raise errors.Invalid(
            "unknown_contact",
            f"no such contact in this mailbox: {', '.join(missing)}",
            fields=[{"field": "contact_ids", "message": f"{c} does not exist"} for c in missing],
        ) from exc
    except store.LimitReached as exc:
        raise errors.LimitReached("contact_group_member_limit_reached", str(exc)) from exc
    except ConditionFailed as exc:
        raise errors.not_found("Contact group") from exc
    return group_view(item)


def remove_members(table: Table, mailbox: Item, group: Item, contact_ids: list[str]) -> dict[str, Any]:
    wanted = _checked_ids(contact_ids)
    current = group
    for _attempt in range(3):
        try:
            item = store.remove_members(table, mailbox["org_id"], mailbox["id"], current, wanted)
            return group_view(item)
        except ConditionFailed:
            # A member went meanwhile (a concurrent removal or its contact deleted): read again.
            current = load(table, mailbox, str(group["id"]))
    raise errors.concurrent_update()


# ----------------------------------------------------------------------------- groups as recipients


def _group_ids(values: list[str]) -> list[str]:
    return [v.strip()[len(GROUP_PREFIX) :] for v in values if v.strip().lower().startswith(GROUP_PREFIX)]


def expand_recipients(table: Table, mailbox: Item, request: SendRequest) -> SendRequest:
    """``request`` with every ``group:<id>`` in to, cc and bcc replaced by its members' first
    addresses (members without an address are left out). 422 for an unknown group, a group
    without any address, or an expansion over the recipient limit."""
    fields = {"to": request.to, "cc": request.cc, "bcc": request.bcc}
    named = {g for values in fields.values() for g in _group_ids(values)}
    if not named:
        return request
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    groups: dict[str, Item] = {}
    for field_name, values in fields.items():
        for group_id in _group_ids(values):
            group = (
                store.get_group(table, org_id, mailbox_id, group_id) if ids.is_id(group_id, "cg") else None
            )
            if group is None:
                raise errors.Invalid(
                    "unknown_contact_group",
                    f"{GROUP_PREFIX}{group_id[:40]} is not a contact group of this mailbox",
                    fields=[{"field": field_name, "message": f"no contact group {group_id[:40]}"}],
                )
            groups[group_id] = group
    members = store.get_many(
        table, org_id, mailbox_id, {m for g in groups.values() for m in g.get("members") or []}
    )

    def addresses_of(group: Item) -> list[str]:
        found = []
        for contact_id in sorted(group.get("members") or []):
            contact = members.get(contact_id)
            emails = (contact or {}).get("emails") or []
            if emails:
                name = (contact or {}).get("name")
                address = str(emails[0]["address"])
                found.append(f"{name} <{address}>" if name and _plain_name(name) else address)
        return found

    expanded: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for field_name, values in fields.items():
        result: list[str] = []
        for value in values:
            group_ids = _group_ids([value])
            if not group_ids:
                result.append(value)
                continue
            addresses = addresses_of(groups[group_ids[0]])
            if not addresses:
                raise errors.Invalid(
                    "empty_contact_group",
                    f"contact group {groups[group_ids[0]]['name']!r} has no member with an email address",
                    fields=[{"field": field_name, "message": "the group has no addresses"}],
                )
            sizes[group_ids[0]] = len(addresses)
            result += addresses
        expanded[field_name] = result
    total = sum(len(v) for v in expanded.values())
    if total > MAX_RECIPIENTS:
        described = ", ".join(f"{groups[g]['name']!r} has {n}" for g, n in sizes.items())
        raise errors.Invalid(
            "too_many_recipients",
            f"with its contact groups expanded ({described}) this message has {total} recipients; "
            f"at most {MAX_RECIPIENTS} per message",
            fields=[{"field": "to", "message": f"{total} recipients after expanding groups"}],
            hint="Send to the group in several messages, or to a smaller group.",
        )
    return replace(request, to=expanded["to"], cc=expanded["cc"], bcc=expanded["bcc"])


def _plain_name(name: str) -> bool:
    # A name is written into the address only when it needs no quoting; otherwise the bare address
    # (the composer would refuse a name holding what a header cannot carry).
    return all(ch.isalnum() or ch in " .'-" for ch in name)
