"""Aliases: an address on one of the organization's domains whose mail goes to one or more
mailboxes, other aliases or external addresses (``goto``, as in mailcow).

The address is unique across mailboxes, aliases and pending invites of the organization (the
address directory entry is written in the alias's transaction). Targets on the organization's own
domains must exist when the alias is written; deleting a mailbox an alias points to is allowed,
and the mail-flow side treats the missing target as undeliverable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses as address_rules
from mailroom.services import forwarding, mailbox_limits
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import aliases as store
from mailroom.store import domains, txn
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

MAX_TARGETS = 50


@dataclass(frozen=True, slots=True)
class NewAlias:
    address: str
    goto: list[str]
    active: bool = True
    description: str | None = None


def alias_view(alias: Item) -> dict[str, Any]:
    return {
        "id": alias["id"],
        "address": alias["address"],
        "local_part": alias["local_part"],
        "domain": alias["domain"],
        "domain_id": alias["domain_id"],
        "goto": list(alias.get("goto") or []),
        "active": bool(alias.get("active", True)),
        "description": alias.get("description"),
        "created_at": alias["created_at"],
        "updated_at": alias["updated_at"],
    }


def validate_goto(table: Table, org_id: str, address: str, goto: list[str]) -> list[str]:
    if not goto:
        raise errors.validation(
            "an alias needs at least one target", field="goto", code="invalid_alias_target"
        )
    if len(goto) > MAX_TARGETS:
        raise errors.validation(f"at most {MAX_TARGETS} targets", field="goto", code="too_many_targets")
    clean: list[str] = []
    hosted: dict[str, bool] = {}
    for index, raw in enumerate(goto):
        try:
            target = address_rules.normalize_any(raw)
        except address_rules.InvalidAddress as exc:
            raise errors.validation(
                f"goto[{index}]: {exc}", field=f"goto.{index}", code="invalid_alias_target"
            ) from exc
        if target == address:
            raise errors.validation(
                "an alias cannot deliver to itself", field=f"goto.{index}", code="alias_loop"
            )
        if target not in clean:
            forwarding.check_internal_target(table, org_id, target, f"goto.{index}", hosted)
            clean.append(target)
    return clean


def create_alias(table: Table, org_id: str, request: NewAlias) -> Item:
    try:
        address = address_rules.normalize_hosted(request.address)
    except address_rules.InvalidAddress as exc:
        raise errors.validation(str(exc), field="address", code="invalid_address") from exc
    domain = mailbox_service.resolve_domain(table, org_id, address_rules.domain_of(address))
    inactive = mailbox_limits.domain_inactive_error(domain, field="address")
    if inactive:
        raise inactive
    goto = validate_goto(table, org_id, address, request.goto)
    if mailbox_service.address_owner(table, org_id, address) is not None:
        raise mailbox_limits.address_taken(address)
    org = mailbox_limits.load_org(table, org_id)
    error = mailbox_limits.domain_limit_error(domain, aliases=1) or mailbox_limits.org_limit_error(
        org, aliases=1
    )
    if error:
        raise error
    now = clock.now_iso()
    alias: Item = {
        "id": ids.new_id("als"),
        "org_id": org_id,
        "domain_id": domain["id"],
        "domain": domain["domain"],
        "local_part": address_rules.local_part_of(address),
        "address": address,
        "goto": goto,
        "active": request.active,
        "description": request.description,
        "created_at": now,
        "updated_at": now,
    }
    operations = [
        store.create_op(alias),
        mailbox_store.address_claim(org_id, address, "alias", alias["id"]),
        mailbox_store.domain_change(domain, mailbox_limits.domain_limits(domain), aliases=1),
        mailbox_store.org_change(org, mailbox_limits.org_limits(org), aliases=1),
    ]
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise mailbox_limits.explain_rejection(
            table,
            rejected,
            org_id=org_id,
            domain_changes={domain["id"]: {"aliases": 1}},
            org_change={"aliases": 1},
        ) from rejected
    return alias


def list_aliases(
    table: Table, org_id: str, *, per_page: int, cursor: str | None, domain_id: str | None = None
) -> tuple[Page, int]:
    """A page of the organization's aliases (of one domain: 404 when it has no such domain) and how
    many there are (a maintained count)."""
    if domain_id is not None:
        domain = domains.get(table, org_id, domain_id)
        if domain is None:
            raise errors.not_found("Domain")
        total = int(domain.get("alias_count", 0))
    else:
        total = int(mailbox_limits.load_org(table, org_id).get("alias_count", 0))
    page = store.list_page(table, org_id, per_page=per_page, cursor=cursor, domain_id=domain_id)
    return page, total


def load(table: Table, org_id: str, alias_id: str) -> Item:
    alias = store.get(table, org_id, alias_id)
    if alias is None:
        raise errors.not_found("Alias")
    return alias


def check_same_address(alias: Item, address: str | None) -> None:
    """A full update may repeat the alias's address; an alias keeps it (422 otherwise)."""
    if address is None:
        return
    try:
        same = address_rules.normalize_hosted(address) == alias["address"]
    except address_rules.InvalidAddress:
        same = False
    if not same:
        raise errors.validation(
            f"the alias's address is {alias['address']}: an alias cannot change its address", field="address"
        )


def update_alias(table: Table, alias: Item, fields: dict[str, Any]) -> Item:
    if "goto" in fields:
        fields["goto"] = validate_goto(table, alias["org_id"], alias["address"], fields["goto"])
    try:
        return (
            store.update(alias["org_id"], alias["id"]).set(**fields, updated_at=clock.now_iso()).apply(table)
        )
    except ConditionFailed as gone:
        raise errors.not_found("Alias") from gone


def delete_alias(table: Table, alias: Item) -> None:
    org_id = alias["org_id"]
    operations = [
        store.delete_op(alias),
        mailbox_store.address_release(org_id, alias["address"], alias["id"]),
        mailbox_store.org_change({"id": org_id}, {}, aliases=-1),
    ]
    domain = domains.get(table, org_id, alias["domain_id"])
    if domain is not None:
        operations.append(mailbox_store.domain_change(domain, {}, aliases=-1))
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        raise errors.not_found("Alias") from rejected
