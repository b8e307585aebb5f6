"""Contacts and contact groups of a mailbox, in the mailbox's partition (``ORG#<org>#MBX#<mbx>``), so
the mailbox purge removes them with its mail. Key design (also in ``store/keys.py``):

contact        SK CONTACT#<cid>             the fields, ``terms`` (its search terms), ``groups`` (set)
address        SK CADDR#<address>           {contact_id}: an address belongs to one contact of the
                                            mailbox; ``attribute_not_exists`` on it is the check
search term    SK CFIND#<term>#<cid>        {contact_id}: a prefix search is ``begins_with`` on these
group          SK CGROUP#<gid>              {name, members (set of contact ids), member_count}

A contact, its address items and its term items are written in one transaction (with the
mailbox's ``contact_count`` under its limit), so a search never finds a term of a contact that is
not there, and two contacts can never share an address. Updates carry the contact's ``version``
(optimistic: a concurrent change makes the second one 409 instead of losing the first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailroom import clock, ids
from mailroom.domain.contacts import first_match
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import (
    InvalidCursor,
    Item,
    Page,
    Table,
    _decode_cursor,
    _encode_cursor,
    deserialize,
)
from mailroom.store.txn import Op, Rejected, Update, delete, put, put_new, run

MAX_CONTACTS = 50_000
MAX_GROUPS = 200
MAX_GROUP_MEMBERS = 1000
MAX_GROUPS_PER_CONTACT = 20


class LimitReached(Exception):
    """A per-mailbox limit (contacts, groups) or a group's member limit is reached."""


class AddressTaken(Exception):
    """An address is already another contact's; ``addresses`` names them."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(", ".join(addresses))
        self.addresses = addresses


def contact_sk(contact_id: str) -> str:
    return f"CONTACT#{contact_id}"


def address_sk(address: str) -> str:
    return f"CADDR#{address.lower()}"


def term_sk(term: str, contact_id: str) -> str:
    return f"CFIND#{term}#{contact_id}"


def group_sk(group_id: str) -> str:
    return f"CGROUP#{group_id}"


def _pk(org_id: str, mailbox_id: str) -> str:
    return keys.mailbox_pk(org_id, mailbox_id)


def _mailbox_counter(org_id: str, mailbox_id: str) -> Update:
    return Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))


# ----------------------------------------------------------------------------- contacts


def get(table: Table, org_id: str, mailbox_id: str, contact_id: str) -> Item | None:
    return table.get(_pk(org_id, mailbox_id), contact_sk(contact_id))


def get_many(table: Table, org_id: str, mailbox_id: str, contact_ids: Iterable[str]) -> dict[str, Item]:
    pk = _pk(org_id, mailbox_id)
    found = table.batch_get([(pk, contact_sk(c)) for c in contact_ids])
    return {str(item["id"]): item for item in found}


def owners(table: Table, org_id: str, mailbox_id: str, addresses: Iterable[str]) -> dict[str, str]:
    """address → the id of the contact that has it, for those of ``addresses`` some contact has."""
    pk = _pk(org_id, mailbox_id)
    found = table.batch_get([(pk, address_sk(a)) for a in addresses])
    return {str(item["address"]): str(item["contact_id"]) for item in found}


def _address_item(pk: str, address: str, contact_id: str) -> Item:
    return {
        "PK": pk,
        "SK": address_sk(address),
        "type": "contact_address",
        "address": address,
        "contact_id": contact_id,
    }


def _term_item(pk: str, term: str, contact_id: str) -> Item:
    return {"PK": pk, "SK": term_sk(term, contact_id), "type": "contact_term", "contact_id": contact_id}


def _raise_taken(rejected: Rejected) -> None:
    taken = [role.removeprefix("address:") for role in rejected.by("address:")]
    if taken:
        raise AddressTaken(taken) from rejected


def create(
    table: Table,
    org_id: str,
    mailbox_id: str,
    values: dict[str, Any],
    *,
    addresses: list[str],
    terms: list[str],
) -> Item:
    pk = _pk(org_id, mailbox_id)
    now = clock.now_iso()
    contact_id = ids.new_id("ct")
    item: Item = {
        "PK": pk,
        "SK": contact_sk(contact_id),
        "type": "contact",
        "id": contact_id,
        **values,
        "terms": terms,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    count = _mailbox_counter(org_id, mailbox_id).add(contact_count=1)
    count.at_most("contact_count", MAX_CONTACTS - 1)
    operations = [put_new("contact", item), count.op("mailbox")]
    operations += [put_new(f"address:{a}", _address_item(pk, a, contact_id)) for a in addresses]
    operations += [put_new(f"term:{t}", _term_item(pk, t, contact_id)) for t in terms]
    try:
        run(table, operations)
    except Rejected as rejected:
        _raise_taken(rejected)
        if "mailbox" in rejected.roles:
            raise LimitReached(f"at most {MAX_CONTACTS} contacts per mailbox") from rejected
        raise
    return item


def replace(
    table: Table,
    org_id: str,
    mailbox_id: str,
    current: Item,
    values: dict[str, Any],
    *,
    addresses: list[str],
    terms: list[str],
) -> Item:
    """Write ``values`` over ``current`` (read before): ConditionFailed if it changed meanwhile."""
    pk = _pk(org_id, mailbox_id)
    contact_id = str(current["id"])
    old_addresses = {e["address"] for e in current.get("emails") or []}
    old_terms = set(current.get("terms") or [])
    item: Item = {
        **{k: v for k, v in current.items() if k not in values},
        **values,
        "terms": terms,
        "version": int(current.get("version", 1)) + 1,
        "updated_at": clock.now_iso(),
    }
    operations: list[Op] = [
        Op(
            "contact",
            {
                "Put": {
                    **put("contact", item).body["Put"],
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(int(current.get("version", 1)))}},
                }
            },
        )
    ]
    operations += [
        put_new(f"address:{a}", _address_item(pk, a, contact_id)) for a in addresses if a not in old_addresses
    ]
    operations += [
        delete(f"unaddress:{a}", pk, address_sk(a), condition="contact_id = :c", c=contact_id)
        for a in old_addresses - set(addresses)
    ]
    operations += [put(f"term:{t}", _term_item(pk, t, contact_id)) for t in terms if t not in old_terms]
    operations += [delete(f"unterm:{t}", pk, term_sk(t, contact_id)) for t in old_terms - set(terms)]
    try:
        run(table, operations)
    except Rejected as rejected:
        _raise_taken(rejected)
        raise ConditionFailed("the contact changed meanwhile") from rejected
    return item


def remove(table: Table, org_id: str, mailbox_id: str, current: Item) -> None:
    """The contact, its addresses and terms, and its place in its groups; ConditionFailed if it
    changed meanwhile (or is gone)."""
    pk = _pk(org_id, mailbox_id)
    contact_id = str(current["id"])
    operations: list[Op] = [
        delete(
            "contact", pk, contact_sk(contact_id), condition="version = :v", v=int(current.get("version", 1))
        ),
        _mailbox_counter(org_id, mailbox_id).add(contact_count=-1).op("mailbox"),
    ]
    operations += [
        delete(f"unaddress:{e['address']}", pk, address_sk(e["address"])) for e in current.get("emails") or []
    ]
    operations += [delete(f"unterm:{t}", pk, term_sk(t, contact_id)) for t in current.get("terms") or []]
    for group_id in current.get("groups") or set():
        update = Update(pk, group_sk(group_id)).remove_from_set(members={contact_id}).add(member_count=-1)
        operations.append(update.op(f"group:{group_id}"))
    try:
        run(table, operations)
    except Rejected as rejected:
        raise ConditionFailed("the contact changed meanwhile") from rejected


def list_page(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=_pk(org_id, mailbox_id), sk_prefix="CONTACT#", per_page=per_page, cursor=cursor
    )


def search(
    table: Table, org_id: str, mailbox_id: str, prefix: str, *, per_page: int, cursor: str | None
) -> tuple[list[Item], str | None]:
    """Contacts with a search term starting with ``prefix``, in term order, each once (at its
    smallest matching term), from ``cursor``; the next page's cursor if there may be more.

    Reads term items a Query page at a time and the contacts they name with one BatchGetItem per
    page; a term item whose contact is gone meanwhile (a concurrent delete) is passed over.
    """
    pk = _pk(org_id, mailbox_id)
    start_sk: str | None = None
    if cursor:
        payload = _decode_cursor(cursor)
        start_sk = str(payload["k"].get("SK", ""))
        if payload["k"].get("PK") != pk or not start_sk.startswith(f"CFIND#{prefix}"):
            raise InvalidCursor("cursor belongs to another listing")
    found: list[Item] = []
    seen: set[str] = set()
    last_sk: str | None = None
    for _read in range(20):
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": f"CFIND#{prefix}"}},
            "Limit": max(per_page * 2, 20),
        }
        if start_sk:
            kwargs["ExclusiveStartKey"] = {"PK": {"S": pk}, "SK": {"S": start_sk}}
        response = table.client.query(**kwargs)
        hits = []
        for wire in response.get("Items", []):
            sk = deserialize(wire)["SK"]
            term, _, contact_id = str(sk).removeprefix("CFIND#").rpartition("#")
            hits.append((str(sk), term, contact_id))
        contacts = get_many(table, org_id, mailbox_id, {h[2] for h in hits}) if hits else {}
        for sk, term, contact_id in hits:
            if len(found) == per_page:
                return found, _encode_cursor({"k": {"PK": pk, "SK": last_sk}, "d": "next"})
            last_sk = sk
            contact = contacts.get(contact_id)
            if contact is None or contact_id in seen:
                continue
            if first_match(list(contact.get("terms") or []), prefix) == term:
                seen.add(contact_id)
                found.append(contact)
        last = response.get("LastEvaluatedKey")
        if not last:
            return found, None
        start_sk = str(last["SK"]["S"])
        if len(found) == per_page:
            return found, _encode_cursor({"k": {"PK": pk, "SK": last_sk}, "d": "next"})
    # Many stale or repeated terms in a row: the page ends early, the cursor continues from there.
    return found, _encode_cursor({"k": {"PK": pk, "SK": start_sk}, "d": "next"})


def all_contacts(table: Table, org_id: str, mailbox_id: str) -> Iterable[Item]:
    """Every contact of the mailbox, a Query page at a time (export)."""
    cursor = None
    while True:
        page = table.query_page(
            partition=_pk(org_id, mailbox_id), sk_prefix="CONTACT#", per_page=100, cursor=cursor
        )
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# ----------------------------------------------------------------------------- groups


def get_group(table: Table, org_id: str, mailbox_id: str, group_id: str) -> Item | None:
    return table.get(_pk(org_id, mailbox_id), group_sk(group_id))


def create_group(table: Table, org_id: str, mailbox_id: str, name: str, description: str | None) -> Item:
    now = clock.now_iso()
    group_id = ids.new_id("cg")
    item: Item = {
        "PK": _pk(org_id, mailbox_id),
        "SK": group_sk(group_id),
        "type": "contact_group",
        "id": group_id,
        "name": name,
        "description": description,
        "member_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    count = _mailbox_counter(org_id, mailbox_id).add(contact_group_count=1)
    count.at_most("contact_group_count", MAX_GROUPS - 1)
    try:
        run(table, [put_new("group", item), count.op("mailbox")])
    except Rejected as rejected:
        raise LimitReached(f"at most {MAX_GROUPS} contact groups per mailbox") from rejected
    return item


def rename_group(table: Table, org_id: str, mailbox_id: str, group_id: str, changes: dict[str, Any]) -> Item:
    """ConditionFailed when the group is gone."""
    return (
        Update(_pk(org_id, mailbox_id), group_sk(group_id))
        .set(**changes, updated_at=clock.now_iso())
        .apply(table)
    )


def delete_group(table: Table, org_id: str, mailbox_id: str, group: Item) -> None:
    pk = _pk(org_id, mailbox_id)
    group_id = str(group["id"])
    members = sorted(group.get("members") or set())
    # The group first (with the count), then each member's back-reference, in chunks: a group of
    # 1000 members is more than one transaction. A member left pointing to a deleted group is
    # harmless (reads ignore groups that are gone) and is cleared here on the way.
    try:
        run(
            table,
            [
                delete("group", pk, group_sk(group_id), condition="attribute_exists(PK)"),
                _mailbox_counter(org_id, mailbox_id).add(contact_group_count=-1).op("mailbox"),
            ],
        )
    except Rejected as rejected:
        raise ConditionFailed("the group is gone") from rejected
    for start in range(0, len(members), 99):
        chunk = members[start : start + 99]
        operations = [
            Update(pk, contact_sk(c)).remove_from_set(groups={group_id}).op(f"contact:{c}") for c in chunk
        ]
        try:
            run(table, operations)
        except Rejected:
            for contact_id in chunk:  # one of them is gone: the others one by one
                try:
                    Update(pk, contact_sk(contact_id)).remove_from_set(groups={group_id}).apply(table)
                except ConditionFailed:
                    continue


def add_members(table: Table, org_id: str, mailbox_id: str, group_id: str, contact_ids: list[str]) -> Item:
    """Raises LimitReached (the group is full, or a contact is in too many groups), KeyError with
    the missing ids (no such contact), ConditionFailed (no such group)."""
    pk = _pk(org_id, mailbox_id)
    group = (
        Update(pk, group_sk(group_id)).add_to_set(members=set(contact_ids)).add(member_count=len(contact_ids))
    )
    group.at_most("member_count", MAX_GROUP_MEMBERS - len(contact_ids))
    operations = [group.op("group")]
    for contact_id in contact_ids:
        member = Update(pk, contact_sk(contact_id)).add_to_set(groups={group_id})
        ref = member.name("groups")
        member.when(f"(attribute_not_exists({ref}) OR size({ref}) < {member.value(MAX_GROUPS_PER_CONTACT)})")
        operations.append(member.op(f"contact:{contact_id}"))
    try:
        run(table, operations)
    except Rejected as rejected:
        if "group" in rejected.roles:
            current = get_group(table, org_id, mailbox_id, group_id)
            if current is None:
                raise ConditionFailed("no such group") from rejected
            raise LimitReached(f"a group has at most {MAX_GROUP_MEMBERS} members") from rejected
        failed = [r.removeprefix("contact:") for r in rejected.by("contact:")]
        existing = get_many(table, org_id, mailbox_id, failed)
        missing = [c for c in failed if c not in existing]
        if missing:
            raise KeyError(missing) from rejected
        raise LimitReached(f"a contact is in at most {MAX_GROUPS_PER_CONTACT} groups") from rejected
    found = get_group(table, org_id, mailbox_id, group_id)
    if found is None:
        raise ConditionFailed("no such group")
    return found


def remove_members(table: Table, org_id: str, mailbox_id: str, group: Item, contact_ids: list[str]) -> Item:
    pk = _pk(org_id, mailbox_id)
    group_id = str(group["id"])
    present = [c for c in contact_ids if c in (group.get("members") or set())]
    if present:
        update = (
            Update(pk, group_sk(group_id))
            .remove_from_set(members=set(present))
            .add(member_count=-len(present))
        )
        # Only the members read are removed and counted: after a concurrent change the caller
        # reads the group again (ConditionFailed) rather than counting a member twice.
        ref = update.name("members")
        for contact_id in present:
            update.when(f"contains({ref}, {update.value(contact_id)})")
        operations = [update.op("group")]
        operations += [
            Update(pk, contact_sk(c)).remove_from_set(groups={group_id}).op(f"contact:{c}") for c in present
        ]
        try:
            run(table, operations)
        except Rejected as rejected:
            raise ConditionFailed("the group changed meanwhile") from rejected
    found = get_group(table, org_id, mailbox_id, group_id)
    if found is None:
        raise ConditionFailed("no such group")
    return found


def list_groups(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=_pk(org_id, mailbox_id), sk_prefix="CGROUP#", per_page=per_page, cursor=cursor
    )
