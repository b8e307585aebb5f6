"""The platform domain: one domain name every organization's v0 inboxes may use (store/keys.py).

A hosted domain belongs to one organization and routes inbound mail by its claim. The platform
domain cannot: it is shared. So its claim is marked ``shared`` and each address on it is claimed
globally (``PLATFORMADDR#<address>``) in the same transaction as the mailbox that owns it. A claim
of either kind carries ``org_id`` and ``domain_id``, so routing code reads them alike once
``routing_claim`` has picked the right one.
"""

from __future__ import annotations

import contextlib

from mailroom import clock
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, values
from mailroom.store.txn import Op, Update, put_new

PLATFORM_OWNER = "platform"  # the claim's org_id: no organization (org ids are org_<ulid>)
PLATFORM_LIMITS = {
    # Only the organization's own limits bound its platform inboxes: these are the ceilings the
    # v1 validators allow, so the domain item's conditions never refuse first.
    "mailboxes": 1_000_000,
    "aliases": 0,
    "quota": 100_000_000,
}


class PlatformDomainHosted(Exception):
    """An organization hosts the configured platform domain as its own domain."""


def is_platform(domain_id: str) -> bool:
    return domain_id.startswith(keys.PLATFORM_DOMAIN_ID_PREFIX)


def ensure_claim(table: Table, name: str) -> Item:
    """The platform domain's claim, created when missing (first use). PlatformDomainHosted when
    a tenant holds the name (the operator chose a domain someone already added)."""
    claim = table.get(keys.domain_claim_pk(name), keys.DOMAIN_CLAIM_SK)
    if claim is None:
        now = clock.now_iso()
        item = {
            "PK": keys.domain_claim_pk(name),
            "SK": keys.DOMAIN_CLAIM_SK,
            "type": "domain_claim",
            "shared": True,
            "org_id": PLATFORM_OWNER,
            "domain_id": PLATFORM_OWNER,
            "domain": name,
            "created_at": now,
        }
        # Two first uses at once: either write wins, both read the same claim back.
        with contextlib.suppress(ConditionFailed):
            table.put(item, condition="attribute_not_exists(PK)")
        claim = table.get(keys.domain_claim_pk(name), keys.DOMAIN_CLAIM_SK)
    if claim is None or not claim.get("shared"):
        raise PlatformDomainHosted(name)
    return claim


def lease_identity(table: Table, name: str, *, now_epoch: int, lease_seconds: int) -> bool:
    """Take the right to register the SES identity (one registrar at a time, so the DKIM key SES
    signs with is the one the claim shows). False when another registrar holds the lease."""
    change = Update(keys.domain_claim_pk(name), keys.DOMAIN_CLAIM_SK)
    change.set(ses_lease_until=now_epoch + lease_seconds)
    lease = change.name("ses_lease_until")
    change.when(f"(attribute_not_exists({lease}) OR {lease} < {change.value(now_epoch)})")
    try:
        change.apply(table)
    except ConditionFailed:
        return False
    return True


def identity_registered(table: Table, name: str, *, selector: str, public_key: str) -> Item:
    change = Update(keys.domain_claim_pk(name), keys.DOMAIN_CLAIM_SK)
    change.set(dkim_selector=selector, dkim_public_key=public_key, registered_at=clock.now_iso())
    change.remove("ses_lease_until")
    return change.apply(table)


def org_domain_item(org_id: str, name: str) -> Item:
    """An organization's item for the platform domain (verified by the operator, not the tenant)."""
    now = clock.now_iso()
    domain_id = keys.platform_domain_id(name)
    return {
        "PK": keys.org_pk(org_id),
        "SK": keys.domain_sk(domain_id),
        "type": "domain",
        "id": domain_id,
        "org_id": org_id,
        "domain": name,
        "domain_unicode": name,
        "platform": True,
        "status": "verified",
        "active": True,
        "catch_all": None,
        "feedback_enabled": True,
        "limits": dict(PLATFORM_LIMITS),
        "mailbox_count": 0,
        "alias_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def ensure_org_domain(table: Table, org_id: str, name: str) -> Item:
    """The organization's item of the platform domain, created on first use."""
    domain_id = keys.platform_domain_id(name)
    found = table.get(keys.org_pk(org_id), keys.domain_sk(domain_id))
    if found is not None:
        return found
    with contextlib.suppress(ConditionFailed):
        table.put(org_domain_item(org_id, name), condition="attribute_not_exists(PK)")
    created = table.get(keys.org_pk(org_id), keys.domain_sk(domain_id))
    assert created is not None  # just written, read consistently
    return created


def address_claim(org_id: str, domain_id: str, address: str, mailbox_id: str) -> Op:
    """Claim an address of the platform domain for a mailbox; fails (role ``platform_address:<a>``)
    when any organization holds it."""
    return put_new(
        f"platform_address:{address}",
        {
            "PK": keys.platform_address_pk(address),
            "SK": keys.DOMAIN_CLAIM_SK,
            "type": "platform_address",
            "address": address,
            "org_id": org_id,
            "domain_id": domain_id,
            "mailbox_id": mailbox_id,
        },
    )


def address_release(address: str, mailbox_id: str) -> Op:
    """Free an address of the platform domain, only if ``mailbox_id`` still holds it."""
    return Op(
        f"platform_address:{address}",
        {
            "Delete": {
                "Key": {"PK": {"S": keys.platform_address_pk(address)}, "SK": {"S": keys.DOMAIN_CLAIM_SK}},
                "ConditionExpression": "mailbox_id = :owner",
                "ExpressionAttributeValues": values(owner=mailbox_id),
            }
        },
    )


def address_owner(table: Table, address: str) -> Item | None:
    return table.get(keys.platform_address_pk(address), keys.DOMAIN_CLAIM_SK)


def routing_claim(table: Table, claim: Item | None, address: str) -> Item | None:
    """What routes ``address`` given its domain's claim: the claim itself for a tenant's domain, the
    address's own claim on the shared platform domain (None when nobody holds that address)."""
    if claim is None or not claim.get("shared"):
        return claim
    return address_owner(table, address)
