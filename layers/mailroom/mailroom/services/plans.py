"""Plans: the operator's use cases (create, edit, assign) and the request path's gate.

The default set (``domain.plans.DEFAULT_PLANS``) is written to the table the first time a plan is
needed (an organization created, plans listed), never over a plan an operator has edited.

The gate (``gate_of``): what the organization's plan allows, read from the organization item
(``plan_scopes``, ``limits.rate_limit_per_minute``: store/plans.py copies them there) and kept in
this process for ``MAILROOM_AUTH_CACHE_TTL`` seconds, like the token lookups it follows, so a
warm function pays no read for it. A plan change reaches a function within that time, as a token's
revocation does; with the TTL at 0 (the default outside deployed stacks), on the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom.domain import plans as rules
from mailroom.domain.plans import Plan
from mailroom.store import organizations
from mailroom.store import plans as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

MAX_EDIT_ATTEMPTS = 3


class PlanNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no plan named {name!r} (see 'mailroom admin plans list')")


class OrganizationNotFound(LookupError):
    def __init__(self, org_id: str) -> None:
        super().__init__(f"no organization {org_id} (see 'mailroom admin list-orgs')")


class PlanExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a plan named {name!r} exists already (edit it with 'mailroom admin plans edit')")


class ConcurrentEdit(RuntimeError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} kept changing while it was written; try again")


# ----------------------------------------------------------------------------- the operator's side


def ensure_defaults(table: Table) -> list[str]:
    """Write the default plans that are not in the table yet; the names written."""
    return [plan.name for plan in rules.DEFAULT_PLANS.values() if store.create(table, plan)]


def get_plan(table: Table, name: str) -> Plan:
    item = store.get(table, name)
    if item is None and name in rules.DEFAULT_PLANS:
        ensure_defaults(table)
        item = store.get(table, name)
    if item is None:
        raise PlanNotFound(name)
    return rules.from_item(item)


def list_plans(table: Table) -> list[Plan]:
    ensure_defaults(table)
    return [rules.from_item(item) for item in store.list_all(table)]


def create_plan(
    table: Table,
    name: str,
    *,
    description: str,
    scopes: Iterable[str],
    limits: Mapping[str, Any],
    price_cents: int = 0,
) -> Plan:
    """A new plan (``rules.InvalidPlan`` when its data is not valid, ``PlanExists``)."""
    plan = rules.build(name, description=description, scopes=scopes, limits=limits, price_cents=price_cents)
    ensure_defaults(table)  # so a custom "pro" cannot be shadowed later by the seeding of defaults
    if not store.create(table, plan):
        raise PlanExists(name)
    return plan


@dataclass(frozen=True, slots=True)
class Edited:
    plan: Plan
    organizations_updated: int
    organizations_skipped: int


def edit_plan(
    table: Table,
    name: str,
    *,
    description: str | None = None,
    scopes: Iterable[str] | None = None,
    limits: Mapping[str, Any] | None = None,
    unset_limits: Iterable[str] = (),
    price_cents: int | None = None,
) -> Edited:
    """Change a plan (a new version), then bring every organization on it to that version.

    ``limits`` are merged over the plan's; ``unset_limits`` removes optional ones. An organization
    that left the plan or already holds a newer version meanwhile is skipped (counted)."""
    for _ in range(MAX_EDIT_ATTEMPTS):
        current = get_plan(table, name)
        merged = {**current.limits, **rules.validate_limits(limits or {}, complete=False)}
        for unset in unset_limits:
            if unset not in rules.OPTIONAL_LIMITS:
                raise rules.InvalidPlan(
                    f"limit {unset} cannot be removed (only: {', '.join(rules.OPTIONAL_LIMITS)})"
                )
            merged.pop(unset, None)
        edited = rules.build(
            name,
            description=current.description if description is None else description,
            scopes=current.scopes if scopes is None else scopes,
            limits=merged,
            version=current.version + 1,
            price_cents=current.price_cents if price_cents is None else price_cents,
        )
        if store.replace(table, edited, previous_version=current.version):
            updated, skipped = propagate(table, edited)
            return Edited(plan=edited, organizations_updated=updated, organizations_skipped=skipped)
    raise ConcurrentEdit(f"plan {name!r}")


def propagate(table: Table, plan: Plan) -> tuple[int, int]:
    """Bring every organization on ``plan`` to its version: (updated, skipped)."""
    updated = skipped = 0
    for org in store.organizations_on(table, plan.name):
        if store.reapply(table, org, plan):
            updated += 1
        else:
            skipped += 1
    return updated, skipped


@dataclass(frozen=True, slots=True)
class Assigned:
    organization: Item
    previous_plan: str | None
    plan: Plan
    blocked_tokens: list[Item] = field(default_factory=list)
    over_limits: dict[str, tuple[int, int]] = field(default_factory=dict)


# Counter on the organization item → the limit that bounds it.
_BOUNDED_COUNTERS = {
    "domain_count": "domains",
    "mailbox_count": "mailboxes",
    "alias_count": "aliases",
    "storage_committed_mb": "storage_mb",
}


def _legacy_overrides(org: Item) -> dict[str, int] | None:
    """An organization made before plans holds its limits over the defaults: those it does not share
    with the defaults were set for it (``create-org --limits``) and stay, as its overrides."""
    if org.get("plan") or "limit_overrides" in org:
        return None
    stored = {k: int(v) for k, v in (org.get("limits") or {}).items()}
    return {k: v for k, v in stored.items() if organizations.DEFAULT_LIMITS.get(k) != v}


def set_plan(table: Table, org_id: str, name: str) -> Assigned:
    """Put an organization on a plan. What it holds beyond the plan stays (nothing is deleted); the
    result says which tokens the plan now blocks and which counts exceed its limits, so the
    operator can tell the organization."""
    plan = get_plan(table, name)
    for _ in range(MAX_EDIT_ATTEMPTS):
        org = organizations.get(table, org_id)
        if org is None:
            raise OrganizationNotFound(org_id)
        try:
            now = store.assign(table, org, plan, overrides=_legacy_overrides(org))
        except ConditionFailed:
            continue  # gone or its overrides changed meanwhile: read it again
        forget(org_id)
        allowed = plan.allowed_scopes
        blocked = [
            t for t in store.tokens_of(table, org_id) if rules.blocked_scopes(t.get("scopes") or [], allowed)
        ]
        limits = now.get("limits") or {}
        over = {
            limit: (int(now.get(counter, 0)), int(limits[limit]))
            for counter, limit in _BOUNDED_COUNTERS.items()
            if limit in limits and int(now.get(counter, 0)) > int(limits[limit])
        }
        return Assigned(
            organization=now,
            previous_plan=org.get("plan"),
            plan=plan,
            blocked_tokens=blocked,
            over_limits=over,
        )
    raise ConcurrentEdit(f"organization {org_id}")


# ----------------------------------------------------------------------------- the request path


@dataclass(frozen=True, slots=True)
class Gate:
    """What an organization's plan allows: ``plan`` None for an organization on no plan (made before
    plans existed): every scope, the deployment's rate limit."""

    plan: str | None
    allowed: frozenset[str]
    rate_limit: int | None


def gate_of_item(org: Item | None) -> Gate:
    if org is None or not org.get("plan"):
        return Gate(plan=None, allowed=rules.ALL_SCOPES, rate_limit=None)
    rate = (org.get("limits") or {}).get("rate_limit_per_minute")
    return Gate(
        plan=str(org["plan"]),
        allowed=rules.allowed_scopes(str(s) for s in org.get("plan_scopes") or ()),
        rate_limit=int(rate) if rate else None,
    )


class GateCache:
    """Gates by organization id, each kept ``ttl_seconds`` after its read. Thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Gate]] = {}
        self._lock = threading.Lock()

    def gate(self, table: Table, org_id: str, *, ttl_seconds: float) -> Gate:
        now = self._clock()
        if ttl_seconds > 0:
            with self._lock:
                entry = self._entries.get(org_id)
                if entry is not None and entry[0] > now:
                    return entry[1]
        found = gate_of_item(organizations.get(table, org_id))
        if ttl_seconds > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                    while len(self._entries) >= self._max_entries:
                        del self._entries[next(iter(self._entries))]
                self._entries[org_id] = (now + ttl_seconds, found)
        return found

    def forget(self, org_id: str | None = None) -> None:
        with self._lock:
            if org_id is None:
                self._entries.clear()
            else:
                self._entries.pop(org_id, None)


_cache = GateCache()


def gate_of(table: Table, org_id: str) -> Gate:
    """The organization's gate, through this process's cache (``MAILROOM_AUTH_CACHE_TTL``)."""
    from mailroom.settings import get_settings

    return _cache.gate(table, org_id, ttl_seconds=get_settings().auth_cache_seconds)


def forget(org_id: str | None = None) -> None:
    """Drop cached gates (all, or one organization's) in this process."""
    _cache.forget(org_id)
