"""Mailboxes: creation (one, a batch, from an invite), updates that move counters, passwords,
pause/resume, forwarding, and the organization's storage pool.

Every limit is checked twice: first against what was just read, to answer with the precise reason
(422 with a code per limit); then by the conditions of the transaction that writes (see
store/mailboxes.py), which is what actually guarantees it under concurrency. When a condition
fails, the items are read again to explain which limit a concurrent request used up.

Storage (trekmail-api-overview.txt, "Mailbox storage allocation"): the organization's
``limits.storage_mb`` is the pool. A mailbox without ``storage_allocation_mb`` is *shared*: it
draws on whatever the pool has left. With an allocation it is *dedicated*: that many MB are
carved out of the pool for it alone (``storage_dedicated_mb``); a pending dedicated invite
reserves its allocation (``storage_reserved_mb``). ``storage_committed_mb`` (their sum) can never
exceed the pool. A dedicated mailbox's quota defaults to its allocation and cannot exceed it.

Quota (mailcow-style-management-api.txt): per mailbox in MB, defaulting to the domain's
``defquota``, at most its ``maxquota``; the sum over the domain's mailboxes
(``quota_allocated_mb`` on the domain) at most the domain's ``quota``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses as address_rules
from mailroom.domain import passwords
from mailroom.errors import Conflict, LimitReached, MailroomError
from mailroom.services.domains import DEFAULT_LIMITS as DOMAIN_DEFAULT_LIMITS
from mailroom.store import addresses, domains, message_tokens, organizations, platform_domain, txn
from mailroom.store import mailboxes as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

MAX_FORWARDING_TARGETS = 10


# --- limits and the pool ----------------------------------------------------------------------------


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


def domain_limit_error(
    domain: Item, *, mailboxes: int = 0, aliases: int = 0, quota_mb: int = 0
) -> MailroomError | None:
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


def concurrent_update() -> MailroomError:
    return Conflict(
        "concurrent_update",
        "Another request changed the same resource at the same time.",
        hint="Retry the request.",
        retryable=True,
    )


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
    return concurrent_update()


# --- views ------------------------------------------------------------------------------------------


def mailbox_view(mailbox: Item) -> dict[str, Any]:
    allocation = mailbox.get("storage_allocation_mb")
    forwarding = mailbox.get("forwarding") or {}
    return {
        "id": mailbox["id"],
        "address": mailbox["address"],
        "local_part": mailbox["local_part"],
        "domain": mailbox["domain"],
        "domain_id": mailbox["domain_id"],
        "name": mailbox.get("name"),
        "quota": int(mailbox["quota"]),
        "used_bytes": int(mailbox.get("used_bytes", 0)),
        "active": bool(mailbox.get("active", True)),
        "paused": bool(mailbox.get("paused", False)),
        "paused_at": mailbox.get("paused_at"),
        "pause_reason": mailbox.get("pause_reason"),
        "note": mailbox.get("note"),
        "storage_allocation_mb": int(allocation) if allocation is not None else None,
        "storage_mode": "dedicated" if allocation is not None else "shared",
        "force_pw_update": bool(mailbox.get("force_pw_update", False)),
        "tls_enforce_in": bool(mailbox.get("tls_enforce_in", False)),
        "tls_enforce_out": bool(mailbox.get("tls_enforce_out", False)),
        "forwarding": forwarding_view(forwarding),
        "message_token_count": int(mailbox.get("message_token_count", 0)),
        "created_via": mailbox.get("created_via", "api"),
        "invite_id": mailbox.get("invite_id"),
        "password_updated_at": mailbox.get("password_updated_at"),
        "created_at": mailbox["created_at"],
        "updated_at": mailbox["updated_at"],
    }


def forwarding_view(forwarding: dict[str, Any]) -> dict[str, Any]:
    targets = list(forwarding.get("targets") or [])
    return {
        "enabled": bool(targets),
        "targets": targets,
        "keep_copy": bool(forwarding.get("keep_copy", True)),
        "updated_at": forwarding.get("updated_at"),
    }


# --- creation ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMailbox:
    local_part: str
    domain: str
    # None: no password until an administrator sets one (v0 inboxes, which agents reach with the
    # organization's API key; a password nobody knows would only cost a hash).
    password: str | None
    name: str | None = None
    quota: int | None = None
    active: bool = True
    force_pw_update: bool = False
    tls_enforce_in: bool = False
    tls_enforce_out: bool = False
    storage_allocation_mb: int | None = None
    note: str | None = None


@dataclass(slots=True)
class Prepared:
    """A validated mailbox (or invite) ready to be written, with what it was validated against."""

    address: str
    local_part: str
    domain: Item
    quota: int
    allocation: int | None
    record: Item = field(default_factory=dict)
    # Hashed only when the whole batch is valid and about to be written (hashing is the slow part).
    password: str | None = None


def resolve_domain(table: Table, org_id: str, name: str, cache: dict[str, Item | None] | None = None) -> Item:
    """The organization's hosted domain called ``name`` (punycode or unicode), else 422 unknown_domain."""
    try:
        normalized = address_rules.normalize_hosted(f"x@{name}").partition("@")[2]
    except address_rules.InvalidAddress as exc:
        raise errors.validation(str(exc), field="domain", code="unknown_domain") from exc
    if cache is not None and normalized in cache:
        domain = cache[normalized]
    else:
        domain = domains.get_by_name(table, org_id, normalized)
        if cache is not None:
            cache[normalized] = domain
    if domain is None:
        raise errors.validation(
            f"{normalized} is not a domain of this organization", field="domain", code="unknown_domain"
        )
    return domain


def prepare_address(
    table: Table,
    org_id: str,
    *,
    local_part: str,
    domain_name: str,
    quota: int | None,
    allocation: int | None,
    cache: dict[str, Item | None] | None = None,
    domain: Item | None = None,
    local_part_field: str = "local_part",
) -> Prepared:
    """Validate address, quota and allocation of a new mailbox or invite (not limits, not uniqueness).

    ``domain``: the domain item when the caller has it already (the platform domain, which is no
    organization's hosted domain and so is never found by name); ``local_part_field``: the request
    field a bad local part is reported on."""
    try:
        local = address_rules.normalize_local_part(local_part)
    except address_rules.InvalidAddress as exc:
        raise errors.validation(str(exc), field=local_part_field, code="invalid_address") from exc
    if domain is None:
        domain = resolve_domain(table, org_id, domain_name, cache)
    limits = domain_limits(domain)
    if quota is None:
        quota = allocation if allocation is not None else limits["defquota"]
    if quota > limits["maxquota"]:
        raise errors.validation(
            f"quota {quota} MB exceeds the domain's maxquota of {limits['maxquota']} MB",
            field="quota",
            code="quota_exceeds_maxquota",
        )
    if allocation is not None and quota > allocation:
        raise errors.validation(
            f"quota {quota} MB exceeds the mailbox's dedicated storage_allocation_mb of {allocation} MB",
            field="quota",
            code="quota_exceeds_allocation",
        )
    return Prepared(
        address=f"{local}@{domain['domain']}",
        local_part=local,
        domain=domain,
        quota=quota,
        allocation=allocation,
    )


def check_password(password: str, local_part: str) -> None:
    try:
        passwords.check_policy(password, local_part=local_part)
    except passwords.WeakPassword as exc:
        raise errors.validation(str(exc), field="password", code="weak_password") from exc


def prepare_mailbox(
    table: Table,
    org_id: str,
    request: NewMailbox,
    *,
    cache: dict[str, Item | None] | None = None,
    domain: Item | None = None,
    local_part_field: str = "local_part",
) -> Prepared:
    prepared = prepare_address(
        table,
        org_id,
        local_part=request.local_part,
        domain_name=request.domain,
        quota=request.quota,
        allocation=request.storage_allocation_mb,
        cache=cache,
        domain=domain,
        local_part_field=local_part_field,
    )
    if request.password is not None:
        check_password(request.password, prepared.local_part)
    prepared.password = request.password
    now = clock.now_iso()
    prepared.record = {
        "id": ids.new_id("mbx"),
        "org_id": org_id,
        "domain_id": prepared.domain["id"],
        "domain": prepared.domain["domain"],
        "local_part": prepared.local_part,
        "address": prepared.address,
        "name": request.name,
        "quota": prepared.quota,
        "used_bytes": 0,
        "active": request.active,
        "paused": False,
        "note": request.note,
        "storage_allocation_mb": prepared.allocation,
        "force_pw_update": request.force_pw_update,
        "tls_enforce_in": request.tls_enforce_in,
        "tls_enforce_out": request.tls_enforce_out,
        "password_updated_at": now if request.password is not None else None,
        "message_token_count": 0,
        "created_via": "api",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    return prepared


@dataclass(frozen=True, slots=True)
class Batch:
    """What a set of new mailboxes adds to each domain and to the organization."""

    per_domain: dict[str, dict[str, int]]
    domains: dict[str, Item]
    mailboxes: int
    dedicated_mb: int

    @classmethod
    def of(cls, rows: list[Prepared]) -> Batch:
        per_domain: dict[str, dict[str, int]] = {}
        found: dict[str, Item] = {}
        for row in rows:
            change = per_domain.setdefault(row.domain["id"], {"mailboxes": 0, "quota_mb": 0})
            change["mailboxes"] += 1
            change["quota_mb"] += row.quota
            found[row.domain["id"]] = row.domain
        dedicated = sum(r.allocation or 0 for r in rows)
        return cls(per_domain=per_domain, domains=found, mailboxes=len(rows), dedicated_mb=dedicated)

    def limit_error(self, org: Item) -> MailroomError | None:
        for domain_id, change in self.per_domain.items():
            error = domain_limit_error(self.domains[domain_id], **change)
            if error:
                return error
        error = org_limit_error(org, mailboxes=self.mailboxes)
        if error:
            return error
        return pool_error(org, self.dedicated_mb) if self.dedicated_mb else None

    def counter_ops(self, org: Item) -> list[txn.Op]:
        ops = [
            store.domain_change(self.domains[d], domain_limits(self.domains[d]), **change)
            for d, change in self.per_domain.items()
        ]
        limits = org_limits(org)
        ops.append(
            store.org_change(
                org,
                limits,
                mailboxes=self.mailboxes,
                dedicated_mb=self.dedicated_mb,
                committed_at_most=limits["storage_mb"] - self.dedicated_mb if self.dedicated_mb else None,
            )
        )
        return ops

    def explain(self, table: Table, org_id: str, rejected: txn.Rejected) -> MailroomError:
        return explain_rejection(
            table,
            rejected,
            org_id=org_id,
            domain_changes=self.per_domain,
            org_change={"mailboxes": self.mailboxes, "committed_mb": self.dedicated_mb},
        )


def write_mailboxes(table: Table, org: Item, rows: list[Prepared]) -> list[Item]:
    """Create every prepared mailbox in one transaction: all of them, or none (409/422 saying why)."""
    batch = Batch.of(rows)
    error = batch.limit_error(org)
    if error:
        raise error
    operations: list[txn.Op] = []
    for row in rows:
        if row.password is not None:
            row.record["password_hash"] = passwords.hash_password(row.password)
        operations.append(store.create_op(row.record))
        operations.append(store.address_claim(org["id"], row.address, "mailbox", row.record["id"]))
        if platform_domain.is_platform(row.domain["id"]):
            # Shared by every organization: the address must be free platform-wide, not just here.
            operations.append(
                platform_domain.address_claim(org["id"], row.domain["id"], row.address, row.record["id"])
            )
    operations += batch.counter_ops(org)
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise batch.explain(table, org["id"], rejected) from rejected
    return [row.record for row in rows]


def address_owner(table: Table, org_id: str, address: str) -> Item | None:
    return addresses.resolve(table, org_id, address)


def create_mailbox(
    table: Table,
    org_id: str,
    request: NewMailbox,
    *,
    domain: Item | None = None,
    extra: dict[str, Any] | None = None,
    local_part_field: str = "local_part",
) -> Item:
    """One mailbox. ``domain``/``local_part_field``: see ``prepare_address``; ``extra``: attributes
    another surface keeps on the mailbox (v0's ``client_id``)."""
    prepared = prepare_mailbox(table, org_id, request, domain=domain, local_part_field=local_part_field)
    prepared.record.update(extra or {})
    if address_owner(table, org_id, prepared.address) is not None:
        raise address_taken(prepared.address)
    return write_mailboxes(table, load_org(table, org_id), [prepared])[0]


# --- reads and updates ------------------------------------------------------------------------------


def load(table: Table, org_id: str, mailbox_id: str) -> Item:
    mailbox = store.get(table, org_id, mailbox_id)
    if mailbox is None:
        raise errors.not_found("Mailbox")
    return mailbox


_UNSET: Any = object()


def update_mailbox(
    table: Table,
    mailbox: Item,
    *,
    fields: dict[str, Any],
    quota: int | None = None,
    allocation: Any = _UNSET,
) -> Item:
    """Set plain ``fields``; change ``quota`` and/or ``allocation`` (``None`` = back to shared)
    together with the domain quota and the storage pool, atomically."""
    org_id, mailbox_id = mailbox["org_id"], mailbox["id"]
    old_quota = int(mailbox["quota"])
    old_allocation = mailbox.get("storage_allocation_mb")
    new_allocation = old_allocation if allocation is _UNSET else allocation
    new_quota = old_quota if quota is None else quota
    domain = domains.get(table, org_id, mailbox["domain_id"])
    if domain is None:
        raise concurrent_update()
    limits = domain_limits(domain)
    if new_quota != old_quota and new_quota > limits["maxquota"]:
        raise errors.validation(
            f"quota {new_quota} MB exceeds the domain's maxquota of {limits['maxquota']} MB",
            field="quota",
            code="quota_exceeds_maxquota",
        )
    if new_allocation is not None and new_quota > int(new_allocation):
        raise errors.validation(
            f"quota {new_quota} MB exceeds the dedicated storage_allocation_mb of {new_allocation} MB",
            field="quota",
            code="quota_exceeds_allocation",
        )
    quota_delta = new_quota - old_quota
    dedicated_delta = int(new_allocation or 0) - int(old_allocation or 0)
    now = clock.now_iso()
    change = store.update(org_id, mailbox_id, version=int(mailbox.get("version", 0)))
    change.set(**fields, updated_at=now)
    if quota_delta:
        change.set(quota=new_quota)
    if new_allocation != old_allocation:
        change.set(storage_allocation_mb=new_allocation)
    operations = [change.op(f"mailbox:{mailbox_id}")]
    org: Item | None = None
    if quota_delta:
        error = domain_limit_error(domain, quota_mb=quota_delta)
        if error:
            raise error
        operations.append(store.domain_change(domain, limits, quota_mb=quota_delta))
    if dedicated_delta:
        org = load_org(table, org_id)
        error = pool_error(org, dedicated_delta) if dedicated_delta > 0 else None
        if error:
            raise error
        pool = org_limits(org)["storage_mb"]
        operations.append(
            store.org_change(
                org,
                org_limits(org),
                dedicated_mb=dedicated_delta,
                committed_at_most=pool - dedicated_delta if dedicated_delta > 0 else None,
            )
        )
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        if f"mailbox:{mailbox_id}" in rejected.roles:
            if store.get(table, org_id, mailbox_id) is None:
                raise errors.not_found("Mailbox") from rejected
            raise concurrent_update() from rejected
        raise explain_rejection(
            table,
            rejected,
            org_id=org_id,
            domain_changes={domain["id"]: {"quota_mb": quota_delta}},
            org_change={"committed_mb": max(dedicated_delta, 0)},
        ) from rejected
    return load(table, org_id, mailbox_id)


def set_fields(table: Table, mailbox: Item, fields: dict[str, Any]) -> Item:
    """Plain attributes (no counters move): name, note, pause state, forwarding, flags."""
    change = store.update(mailbox["org_id"], mailbox["id"]).set(**fields, updated_at=clock.now_iso())
    try:
        return change.apply(table)
    except ConditionFailed as gone:  # deleted since it was read
        raise errors.not_found("Mailbox") from gone


def set_password(table: Table, mailbox: Item, password: str, *, force_pw_update: bool) -> tuple[Item, int]:
    """New password (policy-checked, hashed); sign-in tokens made with the old one are revoked.
    Returns the mailbox and how many sign-in tokens were revoked."""
    check_password(password, mailbox["local_part"])
    now = clock.now_iso()
    updated = set_fields(
        table,
        mailbox,
        {
            "password_hash": passwords.hash_password(password),
            "password_updated_at": now,
            "force_pw_update": force_pw_update,
        },
    )
    revoked = message_tokens.revoke_all(
        table, mailbox["org_id"], mailbox["id"], kinds=(message_tokens.SESSION,)
    )
    return updated, revoked


# --- forwarding -------------------------------------------------------------------------------------


def validate_forwarding(table: Table, mailbox: Item, targets: list[str]) -> list[str]:
    """Normalized, de-duplicated targets. A target on one of the organization's own domains must be
    an existing mailbox or alias (else mail would vanish), and never the mailbox itself."""
    if len(targets) > MAX_FORWARDING_TARGETS:
        raise errors.validation(
            f"at most {MAX_FORWARDING_TARGETS} forwarding targets", field="targets", code="too_many_targets"
        )
    clean: list[str] = []
    hosted_cache: dict[str, bool] = {}
    for index, raw in enumerate(targets):
        try:
            target = address_rules.normalize_any(raw)
        except address_rules.InvalidAddress as exc:
            raise errors.validation(
                f"targets[{index}]: {exc}", field=f"targets.{index}", code="invalid_forwarding_target"
            ) from exc
        if target == mailbox["address"]:
            raise errors.validation(
                "a mailbox cannot forward to itself (keep_copy keeps a copy)",
                field=f"targets.{index}",
                code="forwarding_loop",
            )
        if target in clean:
            continue
        check_internal_target(table, mailbox["org_id"], target, f"targets.{index}", hosted_cache)
        clean.append(target)
    return clean


def check_internal_target(
    table: Table, org_id: str, target: str, field_name: str, hosted_cache: dict[str, bool]
) -> str | None:
    """For a target on one of the organization's domains: the kind of its owner (422 if none)."""
    host = address_rules.domain_of(target)
    if host not in hosted_cache:
        hosted_cache[host] = domains.get_by_name(table, org_id, host) is not None
    if not hosted_cache[host]:
        return None
    owner = addresses.resolve(table, org_id, target)
    if owner is None or owner.get("kind") not in ("mailbox", "alias"):
        raise errors.validation(
            f"{target} is on a domain of this organization but is not a mailbox or alias",
            field=field_name,
            code="unknown_target",
        )
    return str(owner["kind"])
