"""Creating an organization with its first admin token (CLI and local stack bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services.tokens import new_ops_token
from mailroom.store import organizations, tokens
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization: Item
    admin_token: str


def create_organization(table: Table, *, name: str, limits: dict[str, int] | None = None) -> NewOrganization:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("organization name must be 1 to 100 characters")
    org_id = organizations.new_id()
    token = new_ops_token(org_id=org_id, name="admin", scopes=OPS_SCOPES, created_by=None)
    org = organizations.create(
        table, name=name, limits=limits, org_id=org_id, first_token=tokens.stored_item(token.item)
    )
    return NewOrganization(organization=org, admin_token=token.plaintext)
