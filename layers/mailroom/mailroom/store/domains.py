"""Hosted domains: the tenant item, its global name claim, its DNS checks and its recheck schedule."""

from __future__ import annotations

import zlib
from typing import Any

from mailroom.store import keys, organizations
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, serialize, values
from mailroom.store.txn import Rejected, Update, put, put_new, run


class DomainTaken(Exception):
    def __init__(self, *, same_org: bool) -> None:
        super().__init__("domain already hosted")
        self.same_org = same_org


class DomainLimitReached(Exception):
    pass


class DomainNotEmpty(Exception):
    pass


class DomainBelowUsage(Exception):
    """New limits below what the domain uses (or the domain is gone)."""


def _shard(domain_id: str) -> int:
    # Spreads the cross-tenant recheck index over a few partitions instead of one hot key.
    return zlib.crc32(domain_id.encode()) % keys.RECHECK_SHARDS


def recheck_keys(domain_id: str, next_check_at: str) -> dict[str, str]:
    return {"GSI2PK": keys.recheck_pk(_shard(domain_id)), "GSI2SK": f"{next_check_at}#{domain_id}"}


def create(table: Table, domain: Item, *, org: Item, domain_limit: int) -> None:
    """Domain item + global name claim + organization count, all or nothing.

    The organization's limit is a condition of the same transaction (``domain_count`` at most
    ``domain_limit - 1``, and ``limits.domains`` still ``domain_limit`` when ``org`` stores it), so
    concurrent creates can never pass it: the last one is refused, whatever they read before.
    DomainTaken when the name is hosted already; DomainLimitReached when the limit (or the limit
    itself, changed meanwhile) refused it.
    """
    org_id, domain_id, name = domain["org_id"], domain["id"], domain["domain"]
    item = {
        **domain,
        "PK": keys.org_pk(org_id),
        "SK": keys.domain_sk(domain_id),
        "type": "domain",
        **recheck_keys(domain_id, domain["next_check_at"]),
    }
    claim = {
        "PK": keys.domain_claim_pk(name),
        "SK": keys.DOMAIN_CLAIM_SK,
        "type": "domain_claim",
        "org_id": org_id,
        "domain_id": domain_id,
    }
    count = Update(keys.org_pk(org_id), keys.ORG_SK).add(domain_count=1)
    count.at_most("domain_count", domain_limit - 1)
    if "domains" in (org.get("limits") or {}):
        count.equals("limits.domains", domain_limit)
    try:
        run(table, [put_new("domain", item), put_new("claim", claim), count.op("org")])
    except Rejected as rejected:
        if "claim" in rejected.roles:
            existing = claim_of(table, name)
            raise DomainTaken(same_org=bool(existing and existing["org_id"] == org_id)) from rejected
        if "org" in rejected.roles:
            raise DomainLimitReached from rejected
        raise


def claim_of(table: Table, name: str) -> Item | None:
    return table.get(keys.domain_claim_pk(name), keys.DOMAIN_CLAIM_SK)


def get(table: Table, org_id: str, domain_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.domain_sk(domain_id))


def get_by_name(table: Table, org_id: str, name: str) -> Item | None:
    claim = claim_of(table, name)
    if claim is None or claim["org_id"] != org_id:
        return None
    return get(table, org_id, claim["domain_id"])


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    """The organization's own domains (not its item of the shared platform domain)."""
    return table.query_page(
        partition=keys.org_pk(org_id), sk_prefix=keys.DOMAIN_LIST_PREFIX, per_page=per_page, cursor=cursor
    )


def window(table: Table, org_id: str, *, offset: int, limit: int) -> list[Item]:
    """The organization's own domains ``offset`` to ``offset + limit``: a numbered v0 page."""
    return table.query_window(
        partition=keys.org_pk(org_id), sk_prefix=keys.DOMAIN_LIST_PREFIX, offset=offset, limit=limit
    )


def update(
    table: Table, org_id: str, domain_id: str, fields: dict[str, Any], *, remove: tuple[str, ...] = ()
) -> Item:
    """Set (``None`` removes) and remove attributes of an existing domain; returns the new item."""
    change = Update(keys.org_pk(org_id), keys.domain_sk(domain_id)).set(**fields)
    if remove:
        change.remove(*remove)
    return change.apply(table)


def update_limits(
    table: Table, org_id: str, domain_id: str, limits: dict[str, int], fields: dict[str, Any]
) -> Item:
    """Set the domain's ``limits`` (and plain ``fields``) only if its counts fit under them: a
    mailbox, alias or quota added since the caller looked cannot end up over the new limits.
    DomainBelowUsage otherwise (or when the domain is gone)."""
    change = Update(keys.org_pk(org_id), keys.domain_sk(domain_id)).set(limits=limits, **fields)
    change.at_most("mailbox_count", limits["mailboxes"])
    change.at_most("alias_count", limits["aliases"])
    change.at_most("quota_allocated_mb", limits["quota"])
    try:
        return change.apply(table)
    except ConditionFailed as refused:
        raise DomainBelowUsage from refused


def delete(table: Table, domain: Item) -> None:
    """Remove an empty domain, its claim and its count.

    DomainNotEmpty while mailboxes, aliases or pending invites remain."""
    org_id = domain["org_id"]
    try:
        table.transact(
            [
                {
                    "Delete": {
                        "Key": serialize({"PK": keys.org_pk(org_id), "SK": keys.domain_sk(domain["id"])}),
                        "ConditionExpression": "attribute_exists(PK) AND "
                        "(attribute_not_exists(mailbox_count) OR mailbox_count = :zero) AND "
                        "(attribute_not_exists(alias_count) OR alias_count = :zero) AND "
                        "(attribute_not_exists(invite_count) OR invite_count = :zero)",
                        "ExpressionAttributeValues": values(zero=0),
                    }
                },
                {
                    "Delete": {
                        "Key": serialize(
                            {"PK": keys.domain_claim_pk(domain["domain"]), "SK": keys.DOMAIN_CLAIM_SK}
                        )
                    }
                },
                organizations.counter_update(org_id, "domain_count", -1),
            ]
        )
    except ConditionFailed as failed:
        if failed.failed(0):
            raise DomainNotEmpty from failed
        raise


def record_check(
    table: Table, domain: Item, *, fields: dict[str, Any], check: Item, event: Item | None
) -> bool:
    """Store a DNS check and its outcome on the domain, and the ``domain.verified`` event if given.

    The event is written only if the domain has never emitted one (a condition on the domain),
    so concurrent checks cannot emit it twice. Returns whether the event was written.
    """
    org_id, domain_id = domain["org_id"], domain["id"]
    change = Update(keys.org_pk(org_id), keys.domain_sk(domain_id))
    change.set(**fields, **recheck_keys(domain_id, fields["next_check_at"])).add(check_count=1)
    if event is not None:
        change.set(verified_event_id=event["event_id"]).equals("verified_event_id", None)
    check_item = {
        **check,
        "PK": keys.org_pk(org_id),
        "SK": keys.dns_check_sk(check["id"]),
        "type": "dns_check",
    }
    operations = [change.op("domain"), put("check", check_item)]
    if event is not None:
        operations.append(put_new("event", event))
    try:
        run(table, operations)
    except Rejected as rejected:
        if event is not None and "domain" in rejected.roles:
            # Another check emitted the event first: record this one without it.
            record_check(table, domain, fields=fields, check=check, event=None)
            return False
        raise
    return event is not None


def get_check(table: Table, org_id: str, check_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.dns_check_sk(check_id))


def due_for_recheck(table: Table, *, now_iso: str, shard: int, per_page: int, cursor: str | None) -> Page:
    """Domains of every organization whose next check time has come (a GSI2 Query per shard)."""
    return table.query_page(
        partition=keys.recheck_pk(shard),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
        sk_between=("0", f"{now_iso}#~"),
    )
