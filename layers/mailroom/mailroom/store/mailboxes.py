"""Mailboxes, and the transaction operations every address owner shares: the address directory
entry, the domain's counters and the organization's counters and storage pool.

Limits are enforced by the conditions of these operations, in the same transaction as the write
they guard, so concurrent requests can never push a counter past its limit:

* a limit ``L`` on counter ``c`` for an increase of ``n`` is ``c <= L - n`` (DynamoDB conditions
  cannot do arithmetic, so the caller's arithmetic goes in as a value), guarded by ``limits.x = L``
  so a limit changed since it was read fails the transaction instead of being bypassed;
* the storage pool is ``storage_committed_mb <= pool - request`` (see store/organizations.py).
"""

from __future__ import annotations

from typing import Any

from mailroom.store import keys
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update, delete, put_new

MAILBOX_PREFIX = "MAILBOX#"


def mailbox_item(mailbox: Item) -> Item:
    """A mailbox as stored: its keys added to the plain record."""
    org_id, mailbox_id = mailbox["org_id"], mailbox["id"]
    return {
        **mailbox,
        "PK": keys.org_pk(org_id),
        "SK": keys.mailbox_sk(mailbox_id),
        "GSI1PK": keys.domain_mailboxes_pk(org_id, mailbox["domain_id"]),
        "GSI1SK": keys.mailbox_sk(mailbox_id),
        "type": "mailbox",
    }


def get(table: Table, org_id: str, mailbox_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))


def list_page(
    table: Table, org_id: str, *, per_page: int, cursor: str | None, domain_id: str | None = None
) -> Page:
    if domain_id:
        return table.query_page(
            partition=keys.domain_mailboxes_pk(org_id, domain_id),
            index="GSI1",
            per_page=per_page,
            cursor=cursor,
        )
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=MAILBOX_PREFIX, per_page=per_page, cursor=cursor
    )


def window(table: Table, org_id: str, *, offset: int, limit: int) -> list[Item]:
    """Mailboxes ``offset`` to ``offset + limit`` in id (creation) order: a numbered v0 page."""
    return table.query_window(
        partition=keys.org_pk(org_id), sk_prefix=MAILBOX_PREFIX, offset=offset, limit=limit
    )


def update(org_id: str, mailbox_id: str, *, version: int | None = None) -> Update:
    """An Update of an existing mailbox; with ``version``, only if nobody changed it since it was read
    (every update bumps the version, so read-modify-write of counters stays consistent)."""
    change = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id)).add(version=1)
    if version is not None:
        change.equals("version", version)
    return change


def create_op(mailbox: Item) -> Op:
    return put_new(f"mailbox:{mailbox['id']}", mailbox_item(mailbox))


def delete_op(mailbox: Item) -> Op:
    """Delete the mailbox as it was read: unchanged version and used bytes (mail delivered since
    would otherwise be subtracted from the organization's storage with a stale number)."""
    return delete(
        f"mailbox:{mailbox['id']}",
        keys.org_pk(mailbox["org_id"]),
        keys.mailbox_sk(mailbox["id"]),
        condition="attribute_exists(PK) AND version = :version AND "
        "(attribute_not_exists(used_bytes) OR used_bytes = :used)",
        version=int(mailbox.get("version", 0)),
        used=int(mailbox.get("used_bytes", 0)),
    )


# --- shared by every address owner (mailboxes, aliases, invites) ------------------------------------


def address_claim(org_id: str, address: str, kind: str, owner_id: str) -> Op:
    """Put the directory entry; fails (role ``address:<address>``) when the address is taken."""
    return put_new(
        f"address:{address}",
        {
            "PK": keys.org_pk(org_id),
            "SK": keys.address_sk(address),
            "type": "address",
            "address": address,
            "kind": kind,
            "id": owner_id,
        },
    )


def address_release(org_id: str, address: str, owner_id: str) -> Op:
    """Delete the directory entry, only if it still belongs to ``owner_id``."""
    return Op(
        f"address:{address}",
        {
            "Delete": {
                "Key": {"PK": {"S": keys.org_pk(org_id)}, "SK": {"S": keys.address_sk(address)}},
                "ConditionExpression": "#id = :owner",
                "ExpressionAttributeNames": {"#id": "id"},
                "ExpressionAttributeValues": {":owner": {"S": owner_id}},
            }
        },
    )


def address_transfer(org_id: str, address: str, *, from_id: str, kind: str, owner_id: str) -> Op:
    """Hand an address from one owner to another (an invite's address to the mailbox it became)."""
    change = Update(keys.org_pk(org_id), keys.address_sk(address)).set(kind=kind, id=owner_id)
    change.equals("id", from_id)
    return change.op(f"address:{address}")


def _limit_condition(
    change: Update, stored_limits: dict[str, Any], limit_name: str, limit: int, counter: str, n: int
) -> None:
    change.at_most(counter, limit - n)
    if limit_name in stored_limits:
        change.equals(f"limits.{limit_name}", limit)


def domain_change(
    domain: Item,
    limits: dict[str, int],
    *,
    mailboxes: int = 0,
    aliases: int = 0,
    invites: int = 0,
    quota_mb: int = 0,
    room_for_mailboxes: int = 0,
) -> Op:
    """Move the domain's counters; increases are conditioned on the domain's limits (and new
    addresses on the domain being active).

    ``limits`` are the effective limits (stored ones over the defaults); ``quota_allocated_mb`` is
    the sum of the domain's mailbox quotas, held under ``limits.quota`` (mailcow's domain quota).
    ``room_for_mailboxes``: the mailbox limit must leave room for that many more, without counting
    them (invites, which become mailboxes later).
    """
    stored = domain.get("limits") or {}
    change = Update(keys.org_pk(domain["org_id"]), keys.domain_sk(domain["id"])).add(
        mailbox_count=mailboxes, alias_count=aliases, invite_count=invites, quota_allocated_mb=quota_mb
    )
    if mailboxes > 0 or aliases > 0 or invites > 0:
        # A new address needs an active domain: deactivating it cannot slip between the check
        # and the write (services/mailbox_limits.domain_inactive_error).
        active = change.name("active")
        change.when(f"(attribute_not_exists({active}) OR {active} = {change.value(True)})")
    if mailboxes > 0 or room_for_mailboxes > 0:
        needed = max(mailboxes, room_for_mailboxes)
        _limit_condition(change, stored, "mailboxes", limits["mailboxes"], "mailbox_count", needed)
    if aliases > 0:
        _limit_condition(change, stored, "aliases", limits["aliases"], "alias_count", aliases)
    if quota_mb > 0:
        _limit_condition(change, stored, "quota", limits["quota"], "quota_allocated_mb", quota_mb)
    return change.op(f"domain:{domain['id']}")


def org_change(
    org: Item,
    limits: dict[str, int],
    *,
    mailboxes: int = 0,
    aliases: int = 0,
    dedicated_mb: int = 0,
    reserved_mb: int = 0,
    used_bytes: int = 0,
    committed_at_most: int | None = None,
    room_for_mailboxes: int = 0,
) -> Op:
    """Move the organization's counters. Increases of mailboxes/aliases are conditioned on its
    limits; ``committed_at_most`` (pool minus what this change adds) guards the storage pool;
    ``room_for_mailboxes`` as in ``domain_change``."""
    stored = org.get("limits") or {}
    change = Update(keys.org_pk(org["id"]), keys.ORG_SK).add(
        mailbox_count=mailboxes,
        alias_count=aliases,
        storage_dedicated_mb=dedicated_mb,
        storage_reserved_mb=reserved_mb,
        storage_committed_mb=dedicated_mb + reserved_mb,
        storage_used_bytes=used_bytes,
    )
    if mailboxes > 0 or room_for_mailboxes > 0:
        needed = max(mailboxes, room_for_mailboxes)
        _limit_condition(change, stored, "mailboxes", limits["mailboxes"], "mailbox_count", needed)
    if aliases > 0:
        _limit_condition(change, stored, "aliases", limits["aliases"], "alias_count", aliases)
    if committed_at_most is not None:
        change.at_most("storage_committed_mb", committed_at_most)
        if "storage_mb" in stored:
            change.equals("limits.storage_mb", limits["storage_mb"])
    return change.op("org")
