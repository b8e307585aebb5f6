"""Where a mailbox's mail is forwarded, and which targets an address may deliver to (forwarding
and alias ``goto`` share the rule: a target on one of the organization's own domains must exist)."""

from __future__ import annotations

from typing import Any

from mailroom import clock, errors
from mailroom.domain import addresses as address_rules
from mailroom.store import addresses, domains
from mailroom.store import mailboxes as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

MAX_FORWARDING_TARGETS = 10


def forwarding_view(forwarding: dict[str, Any]) -> dict[str, Any]:
    targets = list(forwarding.get("targets") or [])
    return {
        "enabled": bool(targets),
        "targets": targets,
        "keep_copy": bool(forwarding.get("keep_copy", True)),
        "updated_at": forwarding.get("updated_at"),
    }


def set_forwarding(table: Table, mailbox: Item, targets: list[str], *, keep_copy: bool) -> dict[str, Any]:
    """Forward the mailbox's mail to ``targets`` ([] turns forwarding off), keeping a copy or not;
    returns the new forwarding. Dropping every message (no targets, no copy) is refused."""
    clean = validate_forwarding(table, mailbox, targets)
    if not clean and not keep_copy:
        raise errors.validation(
            "keep_copy false with no targets would drop every message",
            field="keep_copy",
            code="forwarding_drops_mail",
        )
    forwarding = {"targets": clean, "keep_copy": keep_copy or not clean, "updated_at": clock.now_iso()}
    change = store.update(mailbox["org_id"], mailbox["id"]).set(
        forwarding=forwarding, updated_at=forwarding["updated_at"]
    )
    try:
        change.apply(table)
    except ConditionFailed as gone:  # deleted since it was read
        raise errors.not_found("Mailbox") from gone
    return forwarding


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
