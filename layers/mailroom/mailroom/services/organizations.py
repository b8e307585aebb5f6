"""Creating an organization with its first admin token (CLI and local stack bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.domain.plans import DEFAULT_PLAN
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services import plans
from mailroom.services.tokens import new_ops_token
from mailroom.store import organizations, tokens
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization: Item
    admin_token: str


def create_organization(
    table: Table, *, name: str, limits: dict[str, int] | None = None, plan: str = DEFAULT_PLAN
) -> NewOrganization:
    """An organization on ``plan`` (``limits``: its own overrides of the plan's) with an admin token
    holding every ops scope the plan allows (a token holding more would be blocked at once).
    ValueError for a bad name, ``plans.PlanNotFound`` for an unknown plan."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("organization name must be 1 to 100 characters")
    chosen = plans.get_plan(table, plan)
    org_id = organizations.new_id()
    token = new_ops_token(
        org_id=org_id, name="admin", scopes=OPS_SCOPES & chosen.allowed_scopes, created_by=None
    )
    org = organizations.create(
        table,
        name=name,
        limits=limits,
        org_id=org_id,
        first_token=tokens.stored_item(token.item),
        plan=chosen,
    )
    return NewOrganization(organization=org, admin_token=token.plaintext)
