"""The limits every address owner (mailbox, alias, invite) is created under, and the storage pool.

Every limit is checked twice: first against what was just read, to answer with the precise reason
(422 with a code per limit); then by the conditions of the transaction that writes (see
store/mailboxes.py), which is what actually guarantees it under concurrency. When a condition
fails, ``explain_rejection`` reads the items again to say which limit a concurrent request used up.

Storage (trekmail-api-overview.txt, "Mailbox storage allocation"): the organization's
``limits.storage_mb`` is the pool. A mailbox without ``storage_allocation_mb`` is *shared*: it
draws on whatever the pool has left. With an allocation it is *dedicated*: that many MB are
carved out of the pool for it alone (``storage_dedicated_mb``); a pending dedicated invite
reserves its allocation (``storage_reserved_mb``). ``storage_committed_mb`` (their sum) can never
exceed the pool.

Quota (mailcow-style-management-api.txt): per mailbox in MB, defaulting to the domain's
``defquota``, at most its ``maxquota``; the sum over the domain's mailboxes
(``quota_allocated_mb`` on the domain) at most the domain's ``quota``.
"""

from __future__ import annotations

from mailroom import errors
from mailroom.errors import LimitReached, MailroomError
from mailroom.services.domains import DEFAULT_LIMITS as DOMAIN_DEFAULT_LIMITS
from mailroom.store import domains, organizations, txn
from mailroom.store.table import Item, Table


def org_limits(org: Item) -> dict[str, int]:
    return {**organizations.DEFAULT_LIMITS, **{k: int(v) for k, v in (org.get("limits") or {}).items()}}


def domain_limits(domain: Item) -> dict[str, int]:
    return {**DOMAIN_DEFAULT_LIMITS, **{k: int(v) for k, v in (domain.get("limits") or {}).items()}}


def pool_view(org: Item) -> dict[str, int]:
    """The storage pool as the API shows it (MB)."""
    total = org_limits(org)["storage_mb"]
    committed = int(org.get("storage_committed_mb", 0))
    return {
        "total_mb": total,
        "dedicated_mb": int(org.get("storage_dedicated_mb", 0)),
        "reserved_mb": int(org.get("storage_reserved_mb", 0)),
        "committed_mb": committed,
        "shared_mb": max(total - committed, 0),
    }


def load_org(table: Table, org_id: str) -> Item:
    org = organizations.get(table, org_id)
    if org is None:
        raise errors.not_found("Organization")
    return org


def pool_error(org: Item, requested_mb: int) -> MailroomError | None:
    pool = pool_view(org)
    free = pool["total_mb"] - pool["committed_mb"]
    if requested_mb <= free:
        return None
    return LimitReached(
        "storage_pool_exceeded",
        f"Dedicated allocations of {requested_mb} MB do not fit the storage pool: {max(free, 0)} MB of "
        f"{pool['total_mb']} MB are not yet dedicated or reserved.",
        hint="Allocate less, omit storage_allocation_mb to use the shared pool, or free dedicated space.",
        fields=[{"field": "storage_allocation_mb", "message": "exceeds the free storage pool"}],
    )


def org_limit_error(org: Item, *, mailboxes: int = 0, aliases: int = 0) -> MailroomError | None:
    limits = org_limits(org)
    if mailboxes > 0 and int(org.get("mailbox_count", 0)) + mailboxes > limits["mailboxes"]:
        return LimitReached(
            "mailbox_limit_reached",
            f"The organization's limit of {limits['mailboxes']} mailboxes would be exceeded.",
            hint="Delete mailboxes or ask the operator to raise the organization's limit.",
        )
    if aliases > 0 and int(org.get("alias_count", 0)) + aliases > limits["aliases"]:
        return LimitReached(
            "alias_limit_reached",
            f"The organization's limit of {limits['aliases']} aliases would be exceeded.",
            hint="Delete aliases or ask the operator to raise the organization's limit.",
        )
    return None


def domain_inactive_error(domain: Item, field: str = "domain") -> MailroomError | None:
    """A deactivated domain (``active: false``) gets no new address: no mailbox, alias or invite,
    and no invite of it is redeemed. Its existing addresses stay; it neither sends nor receives."""
    if domain.get("active", True):
        return None
    return errors.Invalid(
        "domain_inactive",
        f"{domain['domain']} is deactivated: no new mailboxes, aliases or invites on it.",
        fields=[{"field": field, "message": "the domain is deactivated (active: false)"}],
        hint="Activate it first: PUT or PATCH /api/v1/domains/{domain} with active: true.",
    )


def domain_limit_error(
    domain: Item, *, mailboxes: int = 0, aliases: int = 0, quota_mb: int = 0
) -> MailroomError | None:
    if mailboxes > 0 or aliases > 0:
        inactive = domain_inactive_error(domain)
        if inactive:
            return inactive
    limits = domain_limits(domain)
    name = domain["domain"]
    if mailboxes > 0 and int(domain.get("mailbox_count", 0)) + mailboxes > limits["mailboxes"]:
        return LimitReached(
            "domain_mailbox_limit_reached",
            f"{name} allows {limits['mailboxes']} mailboxes (its 'mailboxes' limit).",
            hint="Raise the domain's 'mailboxes' limit with PATCH /api/v1/domains/{id}, or delete mailboxes.",
        )
    if aliases > 0 and int(domain.get("alias_count", 0)) + aliases > limits["aliases"]:
        return LimitReached(
            "domain_alias_limit_reached",
            f"{name} allows {limits['aliases']} aliases (its 'aliases' limit).",
            hint="Raise the domain's 'aliases' limit with PATCH /api/v1/domains/{id}, or delete aliases.",
        )
    if quota_mb > 0 and int(domain.get("quota_allocated_mb", 0)) + quota_mb > limits["quota"]:
        free = limits["quota"] - int(domain.get("quota_allocated_mb", 0))
        return LimitReached(
            "domain_quota_exceeded",
            f"{name} has {max(free, 0)} MB of its {limits['quota']} MB quota left for mailbox quotas; "
            f"{quota_mb} MB were requested.",
            hint="Give the mailbox a smaller quota or raise the domain's 'quota'.",
            fields=[{"field": "quota", "message": "exceeds what is left of the domain quota"}],
        )
    return None


def address_taken(address: str) -> MailroomError:
    return errors.conflict(
        f"{address} is already a mailbox, alias or pending invite of this organization",
        code="address_taken",
        hint="Choose another local part, or delete the existing owner of the address first.",
    )


def explain_rejection(
    table: Table,
    rejected: txn.Rejected,
    *,
    org_id: str,
    domain_changes: dict[str, dict[str, int]],
    org_change: dict[str, int],
) -> MailroomError:
    """Why a transaction was cancelled, re-reading what its conditions looked at."""
    taken = rejected.by("address:")
    if taken:
        return address_taken(taken[0].partition(":")[2])
    shared = rejected.by("platform_address:")
    if shared:
        return errors.conflict(
            f"{shared[0].partition(':')[2]} is already taken on the platform domain",
            code="address_taken",
            hint="The platform domain is shared by every organization; choose another username.",
        )
    for role in rejected.by("domain:"):
        domain = domains.get(table, org_id, role.partition(":")[2])
        if domain is None:
            return errors.validation(
                "The domain was deleted meanwhile", field="domain", code="unknown_domain"
            )
        error = domain_limit_error(domain, **domain_changes.get(domain["id"], {}))
        if error:
            return error
    if "org" in rejected.roles:
        org = load_org(table, org_id)
        error = org_limit_error(
            org, mailboxes=org_change.get("mailboxes", 0), aliases=org_change.get("aliases", 0)
        )
        error = error or (
            pool_error(org, org_change["committed_mb"]) if org_change.get("committed_mb") else None
        )
        if error:
            return error
    return errors.concurrent_update()
