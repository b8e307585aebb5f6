"""Putting a test organization on a plan of its own: the default Pro plan with some limits or
scopes changed, created and assigned the way an operator does (services.plans)."""

from __future__ import annotations

from collections.abc import Iterable

from mailroom import ids
from mailroom.domain.plans import DEFAULT_PLANS
from mailroom.services import plans
from mailroom.store.table import Table


def put_on_plan(
    table: Table, org_id: str, *, base: str = "pro", scopes: Iterable[str] | None = None, **limits: int
) -> str:
    """A new plan like ``base`` with ``limits`` (and ``scopes``) changed, assigned to the
    organization; its name."""
    template = DEFAULT_PLANS[base]
    name = "t-" + ids.new_id("p").lower().replace("_", "")[-20:]
    plans.create_plan(
        table,
        name,
        description=f"{base} for a test",
        scopes=template.scopes if scopes is None else scopes,
        limits={**template.limits, **limits},
    )
    plans.set_plan(table, org_id, name)
    return name
