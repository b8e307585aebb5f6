"""How a change of the automation model is written: read the HEAD, plan the change against what is
current, rebuild the route set of every target it affects, and commit it all in one transaction
conditioned on the HEAD version read (store/automation.py). A concurrent change makes the commit
fail; the change is then planned again from the new state, a few times, before 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom import clock, errors
from mailroom.domain import automation as model
from mailroom.store import automation as store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op

ATTEMPTS = 4
LIMITS = {"rule_count": model.MAX_RULES, "action_count": model.MAX_ACTIONS, "route_count": model.MAX_ROUTES}
LIMIT_CODES = {
    "rule_count": ("rule_limit_reached", f"at most {model.MAX_RULES} rules per organization"),
    "action_count": ("action_limit_reached", f"at most {model.MAX_ACTIONS} actions per organization"),
    "route_count": ("route_limit_reached", f"at most {model.MAX_ROUTES} routes per organization"),
}

Target = tuple[str, str]  # ("mailbox" | "domain", id)


class Snapshot:
    """The organization's automation as of one HEAD version; lists are read on first use."""

    def __init__(self, table: Table, org_id: str) -> None:
        self.table = table
        self.org_id = org_id
        self.head = store.head(table, org_id)
        self.version = store.version_of(self.head)
        self._routes: list[Item] | None = None

    def routes(self) -> list[Item]:
        if self._routes is None:
            self._routes = store.all_of(self.table, self.org_id, "route")
        return self._routes

    def item(self, kind: str, item_id: str) -> Item:
        found = store.get(self.table, self.org_id, kind, item_id)
        if found is None:
            raise errors.not_found({"rule": "Rule", "action": "Action", "route": "Route"}[kind])
        return found

    def routes_using(self, kind: str, item_id: str) -> list[Item]:
        if kind == "rule":
            return [r for r in self.routes() if r.get("rule_id") == item_id]
        return [r for r in self.routes() if item_id in (r.get("action_ids") or [])]


@dataclass
class Plan:
    """What one change writes, and what its route sets are rebuilt from."""

    result: Item
    operations: list[Op] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    targets: set[Target] = field(default_factory=set)
    routes: list[Item] | None = None  # every route after the change (when targets are rebuilt)
    rules: dict[str, Item] = field(default_factory=dict)  # items the change writes, by id
    actions: dict[str, Item] = field(default_factory=dict)


def in_use(kind: str, item_id: str, users: Iterable[Item]) -> errors.Conflict:
    """409 naming the routes (and task configs) that use a rule or an action."""
    used_by = [f"{u['id']} ({u.get('name', '')})" for u in users]
    return errors.conflict(
        f"The {kind} {item_id} is used by {', '.join(used_by)}.",
        code="in_use",
        hint="Remove it from those routes (or task configs), or delete them, first.",
    )


def rebuilt(snapshot: Snapshot, plan: Plan) -> list[store.BuiltSet]:
    """The route set of every target the change affects, from the routes, rules and actions as
    they are once it is made."""
    if not plan.targets:
        return []
    if len(plan.targets) > model.MAX_ROUTE_SETS_PER_CHANGE:
        raise errors.validation(
            f"this change affects the routes of {len(plan.targets)} mailboxes and domains; at most "
            f"{model.MAX_ROUTE_SETS_PER_CHANGE} per change (route a domain rather than each mailbox)",
            code="change_too_wide",
        )
    routes = plan.routes if plan.routes is not None else snapshot.routes()
    by_target: dict[Target, list[Item]] = {t: [] for t in plan.targets}
    for route in routes:
        target = model.target_of(route)
        if target in by_target:
            by_target[target].append(route)
    enabled = [r for group in by_target.values() for r in group if r.get("enabled", True)]
    rule_ids = {str(r["rule_id"]) for r in enabled if r.get("rule_id")} - set(plan.rules)
    action_ids = {str(a) for r in enabled for a in r.get("action_ids") or []} - set(plan.actions)
    rules = {**store.many(snapshot.table, snapshot.org_id, "rule", rule_ids), **plan.rules}
    actions = {**store.many(snapshot.table, snapshot.org_id, "action", action_ids), **plan.actions}
    built: list[store.BuiltSet] = []
    size = 0
    for (kind, target_id), group in sorted(by_target.items()):
        route_set = model.route_set(group, rules, actions)
        if route_set is not None and model.route_set_too_large(route_set):
            raise errors.LimitReached(
                "route_set_too_large",
                f"the routes of {kind} {target_id} with their rules and actions would take more than "
                f"{model.MAX_ROUTE_SET_BYTES} bytes",
                hint="Use fewer or shorter conditions, or fewer routes on that target.",
            )
        if route_set is None:
            built.append(store.BuiltSet(kind, target_id, None))
        else:
            size += len(route_set.routes.encode())
            built.append(store.BuiltSet(kind, target_id, route_set.routes, route_set.data_keys))
    if size > model.MAX_CHANGE_BYTES:
        raise errors.validation(
            "this change rewrites more route sets at once than one transaction holds; split the routes",
            code="change_too_wide",
        )
    return built


def change(table: Table, org_id: str, plan_of: Callable[[Snapshot], Plan]) -> Plan:
    """Plan against the current state and commit (see the module docstring)."""
    for _ in range(ATTEMPTS):
        snapshot = Snapshot(table, org_id)
        plan = plan_of(snapshot)
        now_iso = clock.now_iso()
        operations = list(plan.operations)
        version = snapshot.version + 1
        operations += [
            store.route_set_op(org_id, built, version=version, now_iso=now_iso)
            for built in rebuilt(snapshot, plan)
        ]
        try:
            store.commit(
                table,
                org_id,
                version_read=snapshot.version,
                operations=operations,
                counts=plan.counts,
                limits=LIMITS,
                now_iso=now_iso,
            )
        except store.VersionChanged:
            continue
        except store.LimitHit as exc:
            counter = next((c for c, d in plan.counts.items() if d > 0), None)
            if counter is None:  # nothing to hold to a limit: the HEAD moved meanwhile after all
                continue
            code, message = LIMIT_CODES[counter]
            raise errors.LimitReached(code, message, hint="Delete one first.") from exc
        except store.TargetGone as exc:
            raise errors.validation(
                "the route's mailbox or domain is not one of this organization's",
                field="target",
                code="unknown_target",
            ) from exc
        return plan
    raise errors.concurrent_update()


def counts_of(head: Mapping[str, Any], counter: str) -> int:
    return int(head.get(counter, 0))
