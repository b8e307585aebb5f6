"""Mailboxes: creation (one, a batch, from an invite), listing, updates that move counters,
passwords, pause/resume.

Limits, quotas and the storage pool are in services/mailbox_limits.py; forwarding in
services/forwarding.py. A dedicated mailbox's quota defaults to its allocation and cannot exceed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses as address_rules
from mailroom.domain import passwords
from mailroom.errors import MailroomError
from mailroom.services.forwarding import forwarding_view
from mailroom.services.mailbox_limits import (
    address_taken,
    domain_inactive_error,
    domain_limit_error,
    domain_limits,
    explain_rejection,
    load_org,
    org_limit_error,
    org_limits,
    pool_error,
    pool_view,
)
from mailroom.store import addresses, domains, message_tokens, platform_domain, txn
from mailroom.store import mailboxes as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

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

    def identity(self, org_id: str, name: str | None) -> Item:
        """What a mailbox and the invite for it both record: where it lives and who it is."""
        return {
            "org_id": org_id,
            "domain_id": self.domain["id"],
            "domain": self.domain["domain"],
            "local_part": self.local_part,
            "address": self.address,
            "name": name,
            "quota": self.quota,
        }


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
    inactive = domain_inactive_error(domain)
    if inactive:
        raise inactive
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
        **prepared.identity(org_id, request.name),
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


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A batch as validation saw it (``rows``: index, address, status, error), and the mailboxes
    created: None when a row is invalid, since then nothing is."""

    rows: list[dict[str, Any]]
    created: list[Item] | None


def create_batch(table: Table, org_id: str, requests: list[NewMailbox]) -> BatchOutcome:
    """Up to one transaction's worth of mailboxes: every row valid and all of them created, or none."""
    cache: dict[str, Item | None] = {}
    rows: list[dict[str, Any]] = []
    prepared: list[Prepared] = []
    seen: set[str] = set()
    for index, request in enumerate(requests):
        error: dict[str, str] | None = None
        address = f"{request.local_part}@{request.domain}"
        try:
            ready = prepare_mailbox(table, org_id, request, cache=cache)
            address = ready.address
            if address in seen:
                error = {"code": "duplicate_row", "message": f"{address} appears more than once in the batch"}
            elif address_owner(table, org_id, address) is not None:
                error = {"code": "address_taken", "message": f"{address} is already in use"}
            prepared.append(ready)
            seen.add(address)
        except MailroomError as exc:
            error = {"code": exc.code, "message": exc.message}
        rows.append(
            {"index": index, "address": address, "status": "invalid" if error else "valid", "error": error}
        )
    if any(row["error"] for row in rows):
        return BatchOutcome(rows=rows, created=None)
    return BatchOutcome(rows=rows, created=write_mailboxes(table, load_org(table, org_id), prepared))


@dataclass(frozen=True, slots=True)
class Listing:
    page: Page
    total: int
    pool: dict[str, int]


def list_mailboxes(
    table: Table, org_id: str, *, per_page: int, cursor: str | None, domain_id: str | None = None
) -> Listing:
    """A page of the organization's mailboxes (of one domain: 404 when it has no such domain), how
    many there are (maintained counts) and the storage pool."""
    org = load_org(table, org_id)
    total = int(org.get("mailbox_count", 0))
    if domain_id is not None:
        domain = domains.get(table, org_id, domain_id)
        if domain is None:
            raise errors.not_found("Domain")
        total = int(domain.get("mailbox_count", 0))
    page = store.list_page(table, org_id, per_page=per_page, cursor=cursor, domain_id=domain_id)
    return Listing(page=page, total=total, pool=pool_view(org))


# --- reads and updates ------------------------------------------------------------------------------


def load(table: Table, org_id: str, ref: str) -> Item:
    """One of the organization's mailboxes, by id (``mbx_...``) or by address (any case; the
    mailcow-style paths), else 404.

    An address costs one more GetItem: the organization's address item (``ADDR#<address>``, under
    the organization's own key, so another organization's address is simply not there)."""
    mailbox: Item | None = None
    if "@" not in ref:  # ids never have one
        mailbox = store.get(table, org_id, ref)
    else:
        try:
            address = address_rules.normalize_hosted(ref)
        except address_rules.InvalidAddress:
            raise errors.not_found("Mailbox") from None  # no mailbox can have this address
        entry = addresses.resolve(table, org_id, address)
        if entry is not None and entry.get("kind") == "mailbox":
            mailbox = store.get(table, org_id, str(entry["id"]))
    if mailbox is None:
        raise errors.not_found("Mailbox")
    return mailbox


def check_same_address(mailbox: Item, *, domain: str | None, local_part: str | None) -> None:
    """A full update may repeat the create-only ``domain`` and ``local_part``; a mailbox keeps its
    address, so they must name it (422 with the field otherwise)."""
    failing = []
    if domain is not None:
        try:
            same = address_rules.normalize_hosted(f"x@{domain}").partition("@")[2] == mailbox["domain"]
        except address_rules.InvalidAddress:
            same = False
        if not same:
            failing.append({"field": "domain", "message": f"the mailbox is on {mailbox['domain']}"})
    if local_part is not None and local_part.strip().lower() != mailbox["local_part"]:
        failing.append(
            {"field": "local_part", "message": f"the mailbox's local part is {mailbox['local_part']}"}
        )
    if failing:
        raise errors.Invalid(
            "validation_error",
            "A mailbox cannot change its address: domain and local_part, when sent, must be its own.",
            fields=failing,
        )


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
        raise errors.concurrent_update()
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
            raise errors.concurrent_update() from rejected
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


def pause(table: Table, mailbox: Item, reason: str | None) -> Item:
    """The mailbox cannot send until resumed. Pausing a paused mailbox keeps when and why it was."""
    if mailbox.get("paused"):
        return mailbox
    return set_fields(table, mailbox, {"paused": True, "paused_at": clock.now_iso(), "pause_reason": reason})


def resume(table: Table, mailbox: Item) -> Item:
    return set_fields(table, mailbox, {"paused": False, "paused_at": None, "pause_reason": None})
