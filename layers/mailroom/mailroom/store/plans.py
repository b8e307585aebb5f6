"""Plans (platform items, like the domain claims) and the organizations' assignment to them.

An organization on a plan holds a copy of what the request path needs, written when the plan is
assigned or edited: ``plan`` (its name), ``plan_version``, ``plan_scopes`` (the plan's scope list)
and ``limits`` (the plan's limits with the organization's own ``limit_overrides`` on top). So the
limits keep being enforced by the conditions that already guard them (``limits.x = L`` in the
transactions that add mailboxes, domains, aliases...: a plan changed since a request read it fails
that request's transaction instead of being bypassed), and the pipeline's gate reads one item.
The organization is indexed by its plan (GSI2), so an edited plan reaches every organization on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mailroom import clock
from mailroom.domain.plans import Plan, effective_limits
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, values

PAGE = 100


def plan_item(plan: Plan) -> Item:
    now = clock.now_iso()
    return {
        "PK": keys.plan_pk(plan.name),
        "SK": keys.PLAN_SK,
        "GSI1PK": keys.PLANS_INDEX_PK,
        "GSI1SK": plan.name,
        "type": "plan",
        **plan.as_dict(),
        "updated_at": now,
    }


def get(table: Table, name: str) -> Item | None:
    return table.get(keys.plan_pk(name), keys.PLAN_SK)


def list_all(table: Table) -> list[Item]:
    """Every plan, by name (a handful: one Query page each hundred)."""
    found: list[Item] = []
    cursor: str | None = None
    while True:
        page = table.query_page(partition=keys.PLANS_INDEX_PK, index="GSI1", per_page=PAGE, cursor=cursor)
        found.extend(page.items)
        if not page.next_cursor:
            return found
        cursor = page.next_cursor


def create(table: Table, plan: Plan) -> bool:
    """Store a new plan; False when one of that name exists (it is left as it is)."""
    item = {**plan_item(plan), "created_at": clock.now_iso()}
    try:
        table.put(item, condition="attribute_not_exists(PK)")
    except ConditionFailed:
        return False
    return True


def replace(table: Table, plan: Plan, *, previous_version: int) -> bool:
    """Store an edited plan (``plan.version`` = previous + 1) unless another edit came first."""
    try:
        table.put(
            {**plan_item(plan), "created_at": (get(table, plan.name) or {}).get("created_at")},
            condition="attribute_exists(PK) AND version = :v",
            expression_values=values(v=previous_version),
        )
    except ConditionFailed:
        return False
    return True


def assignment(plan: Plan, org: Item) -> dict[str, Any]:
    """The attributes an organization on ``plan`` carries (see the module docstring)."""
    return {
        "plan": plan.name,
        "plan_version": plan.version,
        "plan_scopes": list(plan.scopes),
        "limits": effective_limits(plan, org.get("limit_overrides")),
        "GSI2PK": keys.plan_orgs_pk(plan.name),
        "GSI2SK": keys.org_pk(str(org["id"])),
    }


def assign(table: Table, org: Item, plan: Plan, *, overrides: dict[str, int] | None = None) -> Item:
    """Put the organization on the plan; the organization as it is now. ConditionFailed when it is
    gone, or its overrides changed since it was read (read it again and retry). ``overrides``: set
    the organization's own limits too (an organization coming onto its first plan)."""
    fields = {**assignment(plan, org if overrides is None else {**org, "limit_overrides": overrides})}
    if overrides is not None:
        fields["limit_overrides"] = overrides
    fields["updated_at"] = clock.now_iso()
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    expression_values = values(**{f"f{i}": value for i, value in enumerate(fields.values())})
    condition = "attribute_exists(PK)"
    overrides = org.get("limit_overrides")
    if overrides is None:
        condition += " AND attribute_not_exists(limit_overrides)"
    else:
        condition += " AND limit_overrides = :overrides"
        expression_values |= values(overrides=overrides)
    return table.update(
        keys.org_pk(str(org["id"])),
        keys.ORG_SK,
        f"SET {sets}",
        condition=condition,
        names=names,
        expression_values=expression_values,
    )


def reapply(table: Table, org: Item, plan: Plan) -> bool:
    """Bring an organization on ``plan`` to its current version; False when it has left the plan or
    already holds this version or a newer one (an edit racing another: the newer one wins)."""
    fields = {k: v for k, v in assignment(plan, org).items() if not k.startswith("GSI")}
    names = {f"#f{i}": name for i, name in enumerate(fields)} | {"#plan": "plan", "#ver": "plan_version"}
    sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    expression_values = values(**{f"f{i}": value for i, value in enumerate(fields.values())})
    expression_values |= values(name=plan.name, version=plan.version)
    try:
        table.update(
            keys.org_pk(str(org["id"])),
            keys.ORG_SK,
            f"SET {sets}",
            condition="#plan = :name AND (attribute_not_exists(#ver) OR #ver < :version)",
            names=names,
            expression_values=expression_values,
            return_values="NONE",
        )
    except ConditionFailed:
        return False
    return True


def organizations_on(table: Table, name: str) -> Iterator[Item]:
    """Every organization on the plan (GSI2, eventually consistent), page by page."""
    cursor: str | None = None
    while True:
        page = table.query_page(partition=keys.plan_orgs_pk(name), index="GSI2", per_page=PAGE, cursor=cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def tokens_of(table: Table, org_id: str) -> Iterator[Item]:
    """The organization's ops and message tokens (API keys hold no scope list: never blocked)."""
    for prefix in (keys.token_sk(""), keys.message_token_sk("")):
        cursor: str | None = None
        while True:
            page = table.query_page(
                partition=keys.org_pk(org_id), sk_prefix=prefix, per_page=PAGE, cursor=cursor
            )
            yield from page.items
            if not page.next_cursor:
                break
            cursor = page.next_cursor
