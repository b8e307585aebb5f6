"""Mailbox invites: an address, quota and optional dedicated allocation held for someone who chooses
their own password when they redeem the invite's code (``POST /api/v1/auth/invites:redeem``).

* Creating an invite claims its address (so nobody else can take it meanwhile), counts it on its
  domain (a domain with pending invites cannot be deleted) and reserves its dedicated allocation in
  the storage pool (``storage_reserved_mb``). A batch is one transaction: all invites or none.
* Redeeming turns the invite into a mailbox in one transaction: the address moves from the invite
  to the mailbox, the reservation becomes a dedicated allocation, the mailbox counts against the
  domain's and the organization's limits. If the pool is over-committed by then (the operator
  shrank it), the mailbox is created *shared* instead and the answer says so
  (``storage_downgraded: true``), as trekmail-api-overview.txt prescribes.
* An invite expires at ``expires_at``: the scheduled sweep (and, lazily, a redeem attempt) releases
  its address, its domain count and its reservation. The mailbox limits must leave room for the
  invite when it is made (a condition of its write, so a mailbox created meanwhile cannot slip in
  between: an invite that could not be redeemed is refused), and are enforced again at redeem.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import passwords
from mailroom.errors import Gone, MailroomError, NotFound
from mailroom.observability import logger, traced
from mailroom.services import mailbox_limits
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import domains, invites, keys, txn
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.table import Item, Table

CODE_PREFIX = "mri_"
DEFAULT_EXPIRY_HOURS = 168
_REDEEM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class NewInvite:
    local_part: str
    domain: str
    name: str | None = None
    quota: int | None = None
    storage_allocation_mb: int | None = None
    expires_in_hours: int = DEFAULT_EXPIRY_HOURS


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    invite: Item
    code: str


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def invite_view(invite: Item) -> dict[str, Any]:
    allocation = invite.get("storage_allocation_mb")
    status = invite["status"]
    if status == "pending" and int(invite["expires_at_epoch"]) <= int(clock.utcnow().timestamp()):
        status = "expired"  # the sweep has not released it yet; it can no longer be redeemed
    return {
        "id": invite["id"],
        "address": invite["address"],
        "local_part": invite["local_part"],
        "domain": invite["domain"],
        "domain_id": invite["domain_id"],
        "name": invite.get("name"),
        "quota": int(invite["quota"]),
        "storage_allocation_mb": int(allocation) if allocation is not None else None,
        "storage_mode": "dedicated" if allocation is not None else "shared",
        "status": status,
        "expires_at": invite["expires_at"],
        "created_at": invite["created_at"],
        "created_by": invite.get("created_by"),
        "redeemed_at": invite.get("redeemed_at"),
        "mailbox_id": invite.get("mailbox_id"),
    }


def _prepare(
    table: Table,
    org_id: str,
    request: NewInvite,
    *,
    created_by: str,
    now: datetime,
    cache: dict[str, Item | None],
) -> tuple[mailbox_service.Prepared, str]:
    prepared = mailbox_service.prepare_address(
        table,
        org_id,
        local_part=request.local_part,
        domain_name=request.domain,
        quota=request.quota,
        allocation=request.storage_allocation_mb,
        cache=cache,
    )
    code = CODE_PREFIX + secrets.token_urlsafe(24)
    expires = now + timedelta(hours=request.expires_in_hours)
    prepared.record = {
        "id": ids.new_id("inv"),
        **prepared.identity(org_id, request.name),
        "storage_allocation_mb": prepared.allocation,
        "code_hash": hash_code(code),
        "status": "pending",
        "expires_at": clock.isoformat(expires),
        "expires_at_epoch": int(expires.timestamp()),
        "created_at": clock.isoformat(now),
        "created_by": created_by,
    }
    return prepared, code


def prepare_many(
    table: Table, org_id: str, requests: list[NewInvite], *, created_by: str
) -> list[tuple[mailbox_service.Prepared, str] | MailroomError]:
    """Each request validated on its own: the prepared invite, or why it is invalid."""
    now = clock.utcnow()
    cache: dict[str, Item | None] = {}
    results: list[tuple[mailbox_service.Prepared, str] | MailroomError] = []
    for request in requests:
        try:
            results.append(_prepare(table, org_id, request, created_by=created_by, now=now, cache=cache))
        except MailroomError as error:
            results.append(error)
    return results


def write_invites(
    table: Table, org: Item, rows: list[tuple[mailbox_service.Prepared, str]]
) -> list[IssuedInvite]:
    """All invites in one transaction, or none (409/422 saying why)."""
    prepared = [p for p, _ in rows]
    per_domain: dict[str, int] = {}
    found: dict[str, Item] = {}
    for row in prepared:
        per_domain[row.domain["id"]] = per_domain.get(row.domain["id"], 0) + 1
        found[row.domain["id"]] = row.domain
    reserved = sum(p.allocation or 0 for p in prepared)
    # An invite that could not become a mailbox right now is refused now, not at redeem time.
    for domain_id, count in per_domain.items():
        error = mailbox_limits.domain_limit_error(found[domain_id], mailboxes=count)
        if error:
            raise error
    error = mailbox_limits.org_limit_error(org, mailboxes=len(prepared))
    error = error or (mailbox_limits.pool_error(org, reserved) if reserved else None)
    if error:
        raise error
    operations: list[txn.Op] = []
    for row in prepared:
        operations.append(invites.create_op(row.record))
        operations.append(mailbox_store.address_claim(org["id"], row.address, "invite", row.record["id"]))
    # The same checks as conditions of the write: a mailbox created meanwhile cannot slip between.
    operations += [
        mailbox_store.domain_change(
            found[d], mailbox_limits.domain_limits(found[d]), invites=n, room_for_mailboxes=n
        )
        for d, n in per_domain.items()
    ]
    limits = mailbox_limits.org_limits(org)
    operations.append(
        mailbox_store.org_change(
            org,
            limits,
            reserved_mb=reserved,
            committed_at_most=limits["storage_mb"] - reserved if reserved else None,
            room_for_mailboxes=len(prepared),
        )
    )
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise mailbox_limits.explain_rejection(
            table,
            rejected,
            org_id=org["id"],
            domain_changes={d: {"mailboxes": n} for d, n in per_domain.items()},
            org_change={"mailboxes": len(prepared), "committed_mb": reserved},
        ) from rejected
    return [IssuedInvite(invite=p.record, code=code) for p, code in rows]


def create_invite(table: Table, org_id: str, request: NewInvite, *, created_by: str) -> IssuedInvite:
    (result,) = prepare_many(table, org_id, [request], created_by=created_by)
    if isinstance(result, MailroomError):
        raise result
    if mailbox_service.address_owner(table, org_id, result[0].address) is not None:
        raise mailbox_limits.address_taken(result[0].address)
    return write_invites(table, mailbox_limits.load_org(table, org_id), [result])[0]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A batch as validation saw it (``rows``: index, address, status, error), and the invites
    issued: None when a row is invalid, since then none is."""

    rows: list[dict[str, Any]]
    issued: list[IssuedInvite] | None


def create_batch(table: Table, org_id: str, requests: list[NewInvite], *, created_by: str) -> BatchOutcome:
    """Every row valid and all invites issued in one transaction, or none."""
    results = prepare_many(table, org_id, requests, created_by=created_by)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, (request, result) in enumerate(zip(requests, results, strict=True)):
        error: dict[str, str] | None = None
        address = f"{request.local_part}@{request.domain}"
        if isinstance(result, MailroomError):
            error = {"code": result.code, "message": result.message}
        else:
            address = result[0].address
            if address in seen:
                error = {"code": "duplicate_row", "message": f"{address} appears more than once in the batch"}
            elif mailbox_service.address_owner(table, org_id, address) is not None:
                error = {"code": "address_taken", "message": f"{address} is already in use"}
            seen.add(address)
        rows.append(
            {"index": index, "address": address, "status": "invalid" if error else "valid", "error": error}
        )
    if any(row["error"] for row in rows):
        return BatchOutcome(rows=rows, issued=None)
    ready = [r for r in results if not isinstance(r, MailroomError)]
    return BatchOutcome(rows=rows, issued=write_invites(table, mailbox_limits.load_org(table, org_id), ready))


def load(table: Table, org_id: str, invite_id: str) -> Item:
    invite = invites.get(table, org_id, invite_id)
    if invite is None:
        raise errors.not_found("Invite")
    return invite


# --- release (expiry) -------------------------------------------------------------------------------


def release(table: Table, invite: Item, *, status: str = "expired") -> bool:
    """End a pending invite without a mailbox: free its address, domain count and reservation.
    False when it was no longer pending (redeemed or released by someone else meanwhile)."""
    now = clock.utcnow()
    org_id = invite["org_id"]
    operations = [
        invites.finish(
            invite, status=status, now_epoch=int(now.timestamp()), ended_at=clock.isoformat(now)
        ).op("invite"),
        mailbox_store.address_release(org_id, invite["address"], invite["id"]),
    ]
    domain = domains.get(table, org_id, invite["domain_id"])
    if domain is not None:
        operations.append(mailbox_store.domain_change(domain, {}, invites=-1))
    allocation = int(invite.get("storage_allocation_mb") or 0)
    if allocation:
        operations.append(mailbox_store.org_change({"id": org_id}, {}, reserved_mb=-allocation))
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        if "invite" in rejected.roles:
            return False
        raise
    return True


@traced
def expire_due(table: Table, *, now: datetime | None = None, max_invites: int = 1000) -> dict[str, int]:
    """The sweep: release every pending invite (all organizations) whose expiry has passed."""
    now = now or clock.utcnow()
    now_iso, now_epoch = clock.isoformat(now), int(now.timestamp())
    counts = {"expired": 0, "errors": 0}
    for shard in range(keys.INVITE_EXPIRY_SHARDS):
        cursor = None
        while counts["expired"] + counts["errors"] < max_invites:
            page = invites.expired_page(table, shard=shard, now_iso=now_iso, per_page=50, cursor=cursor)
            for indexed in page.items:
                invite = invites.get(table, indexed["org_id"], indexed["id"])  # consistent read
                if (
                    invite is None
                    or invite.get("status") != "pending"
                    or invite["expires_at_epoch"] > now_epoch
                ):
                    continue
                try:
                    counts["expired"] += release(table, invite)
                except Exception:
                    counts["errors"] += 1
                    logger().exception("invite not released", extra={"invite_id": invite["id"]})
            cursor = page.next_cursor
            if cursor is None:
                break
    return counts


# --- redeem -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redeemed:
    mailbox: Item
    invite: Item
    downgraded: bool

    @property
    def notice(self) -> str | None:
        """What to tell the new owner when the mailbox is not what the invite promised."""
        if not self.downgraded:
            return None
        return (
            "The storage pool no longer had room for this mailbox's dedicated allocation of "
            f"{self.invite['storage_allocation_mb']} MB, so it uses the shared pool."
        )


def _not_pending(invite: Item) -> MailroomError:
    if invite.get("status") == "redeemed":
        return errors.conflict(
            "This invite was already redeemed",
            code="invite_already_redeemed",
            hint="Sign in with the password set then.",
        )
    return Gone("invite_expired", "This invite has expired", hint="Ask for a new invite.")


def find(table: Table, code: str) -> Item:
    """The invite a code belongs to (its current state, whatever it is), else 404 invite_not_found."""
    indexed = invites.find_by_code_hash(table, hash_code(code))
    invite = invites.get(table, indexed["org_id"], indexed["id"]) if indexed else None
    if invite is None:
        raise NotFound(
            "invite_not_found",
            "No invite has this code",
            hint="Check the code; it is case-sensitive.",
        )
    return invite


def ensure_pending(table: Table, invite: Item) -> None:
    if invite.get("status") != "pending":
        raise _not_pending(invite)
    if int(invite["expires_at_epoch"]) <= int(clock.utcnow().timestamp()):
        release(table, invite)  # lazily, in case the sweep has not run yet
        raise _not_pending({**invite, "status": "expired"})


def redeem(table: Table, invite: Item, password: str) -> Redeemed:
    """The invite (as ``find`` returned it) becomes its mailbox with ``password``: 409
    invite_already_redeemed, 410 invite_expired, 422 weak_password or a limit reached meanwhile."""
    ensure_pending(table, invite)
    org_id = invite["org_id"]
    mailbox_service.check_password(password, invite["local_part"])
    password_hash = passwords.hash_password(password)
    allocation = invite.get("storage_allocation_mb")
    for _ in range(_REDEEM_ATTEMPTS):
        org = mailbox_limits.load_org(table, org_id)
        domain = domains.get(table, org_id, invite["domain_id"])
        if domain is None:
            release(table, invite, status="cancelled")
            raise Gone("invite_expired", "The invite's domain no longer exists", hint="Ask for a new invite.")
        limits = mailbox_limits.org_limits(org)
        pool = mailbox_limits.pool_view(org)
        # The reservation is already part of "committed": it fits while nothing is over-committed.
        fits = allocation is None or pool["committed_mb"] <= pool["total_mb"]
        quota = int(invite["quota"])
        error = mailbox_limits.domain_limit_error(domain, mailboxes=1, quota_mb=quota)
        error = error or mailbox_limits.org_limit_error(org, mailboxes=1)
        if error:
            raise error
        now = clock.utcnow()
        now_iso = clock.isoformat(now)
        mailbox: Item = {
            "id": ids.new_id("mbx"),
            "org_id": org_id,
            "domain_id": domain["id"],
            "domain": domain["domain"],
            "local_part": invite["local_part"],
            "address": invite["address"],
            "name": invite.get("name"),
            "quota": quota,
            "used_bytes": 0,
            "active": True,
            "paused": False,
            "storage_allocation_mb": int(allocation) if allocation is not None and fits else None,
            "force_pw_update": False,
            "tls_enforce_in": False,
            "tls_enforce_out": False,
            "password_hash": password_hash,
            "password_updated_at": now_iso,
            "message_token_count": 0,
            "created_via": "invite",
            "invite_id": invite["id"],
            "version": 1,
            "created_at": now_iso,
            "updated_at": now_iso,
        }
        finish = invites.finish(
            invite,
            status="redeemed",
            now_epoch=int(now.timestamp()),
            redeemed_at=now_iso,
            mailbox_id=mailbox["id"],
        )
        finish.when(f"{finish.name('expires_at_epoch')} > {finish.value(int(now.timestamp()))}")
        reserved = int(allocation or 0)
        operations = [
            finish.op("invite"),
            mailbox_store.create_op(mailbox),
            mailbox_store.address_transfer(
                org_id, invite["address"], from_id=invite["id"], kind="mailbox", owner_id=mailbox["id"]
            ),
            mailbox_store.domain_change(
                domain, mailbox_limits.domain_limits(domain), mailboxes=1, invites=-1, quota_mb=quota
            ),
            mailbox_store.org_change(
                org,
                limits,
                mailboxes=1,
                reserved_mb=-reserved,
                dedicated_mb=reserved if fits else 0,
                committed_at_most=limits["storage_mb"] if reserved and fits else None,
            ),
        ]
        try:
            txn.run(table, operations)
        except txn.Rejected as rejected:
            if "invite" in rejected.roles:
                current = invites.get(table, org_id, invite["id"]) or invite
                raise _not_pending(
                    current if current.get("status") != "pending" else {**current, "status": "expired"}
                ) from rejected
            if set(rejected.roles) <= {"org", f"domain:{domain['id']}"}:
                # A concurrent change of the pool or the limits: read again and decide again (the
                # checks above answer precisely if a limit is now reached).
                continue
            raise mailbox_limits.explain_rejection(
                table,
                rejected,
                org_id=org_id,
                domain_changes={domain["id"]: {"mailboxes": 1, "quota_mb": quota}},
                org_change={"mailboxes": 1},
            ) from rejected
        if not fits:
            logger().info("invite redeemed as shared: pool over-committed", extra={"invite_id": invite["id"]})
        return Redeemed(mailbox=mailbox, invite={**invite, "status": "redeemed"}, downgraded=not fits)
    raise errors.concurrent_update()
