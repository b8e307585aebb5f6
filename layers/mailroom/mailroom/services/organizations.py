"""Creating an organization with its first admin token (CLI and local stack bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services.tokens import issue_ops_token
from mailroom.store import organizations
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization: Item
    admin_token: str


def create_organization(table: Table, *, name: str, limits: dict[str, int] | None = None) -> NewOrganization:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("organization name must be 1 to 100 characters")
    org = organizations.create(table, name=name, limits=limits)
    token = issue_ops_token(table, org_id=org["id"], name="admin", scopes=OPS_SCOPES, created_by=None)
    return NewOrganization(organization=org, admin_token=token.plaintext)
