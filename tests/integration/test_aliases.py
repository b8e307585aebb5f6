"""Aliases: an address of a hosted domain delivering to mailboxes, aliases or external addresses."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.store import domains, organizations
from mailroom.store.table import Table
from tests.support.mailboxes import add_domain, create_mailbox, delete, get, new_mailbox, ok, patch, post


@pytest.fixture
def domain(org: NewOrganization) -> dict[str, Any]:
    found = add_domain(org, "example.com")
    new_mailbox(org, "alice")
    return found


def create_alias(org: NewOrganization, address: str, goto: list[str], **extra: Any) -> Any:
    return post("aliases", org.admin_token, "/api/v1/aliases", {"address": address, "goto": goto, **extra})


def counts(table: Table, org: NewOrganization, domain_id: str) -> tuple[int, int]:
    domain = domains.get(table, org.organization["id"], domain_id)
    organization = organizations.get(table, org.organization["id"])
    assert domain is not None and organization is not None
    return int(domain.get("alias_count", 0)), int(organization.get("alias_count", 0))


def test_create_get_list_update_delete(org: NewOrganization, domain: dict[str, Any], table: Table) -> None:
    alias = ok(
        create_alias(
            org, "Sales@Example.com", ["alice@example.com", "Partner@Gmail.com"], description="team"
        ),
        201,
    )
    assert alias["address"] == "sales@example.com" and alias["id"].startswith("als_")
    assert alias["goto"] == ["alice@example.com", "partner@gmail.com"]
    assert (alias["active"], alias["description"], alias["domain_id"]) == (True, "team", domain["id"])
    assert counts(table, org, domain["id"]) == (1, 1)
    assert ok(get("aliases", org.admin_token, f"/api/v1/aliases/{alias['id']}")) == alias
    listed = get("aliases", org.admin_token, "/api/v1/aliases").json()
    assert [a["id"] for a in listed["data"]] == [alias["id"]] and listed["meta"]["total"] == 1
    by_domain = get("aliases", org.admin_token, "/api/v1/aliases", domain_id=domain["id"]).json()
    assert by_domain["meta"]["total"] == 1 and len(by_domain["data"]) == 1

    path = f"/api/v1/aliases/{alias['id']}"
    updated = ok(patch("aliases", org.admin_token, path, {"goto": ["x@gmail.com"], "active": False}))
    assert updated["goto"] == ["x@gmail.com"] and updated["active"] is False
    assert updated["description"] == "team"
    assert patch("aliases", org.admin_token, path, {"goto": []}).status == 422
    assert patch("aliases", org.admin_token, path, {"address": "y@example.com"}).status == 422

    assert delete("aliases", org.admin_token, path).status == 204
    assert get("aliases", org.admin_token, path).status == 404
    assert delete("aliases", org.admin_token, path).status == 404
    assert counts(table, org, domain["id"]) == (0, 0)
    # The address is free again, for a mailbox too.
    assert create_mailbox(org, "sales").status == 201


def test_alias_targets_are_validated(org: NewOrganization, domain: dict[str, Any]) -> None:
    def refused(goto: list[str], address: str = "team@example.com") -> str:
        response = create_alias(org, address, goto)
        assert response.status == 422, response.body
        return str(response.error_code)

    assert refused(["ghost@example.com"]) == "unknown_target"
    assert refused(["team@example.com"]) == "alias_loop"
    assert refused(["not an address"]) == "invalid_alias_target"
    assert refused([]) == "validation_error"
    assert refused(["x@gmail.com"], address="team@elsewhere.com") == "unknown_domain"
    assert refused(["x@gmail.com"], address="bad..name@example.com") == "invalid_address"
    # An alias may deliver to another alias.
    ok(create_alias(org, "first@example.com", ["alice@example.com"]), 201)
    assert create_alias(org, "second@example.com", ["first@example.com"]).status == 201


def test_alias_and_mailbox_addresses_are_one_namespace(org: NewOrganization, domain: dict[str, Any]) -> None:
    taken = create_alias(org, "alice@example.com", ["x@gmail.com"])
    assert taken.status == 409 and taken.error_code == "address_taken"
    ok(create_alias(org, "info@example.com", ["alice@example.com"]), 201)
    mailbox = create_mailbox(org, "INFO")
    assert mailbox.status == 409 and mailbox.error_code == "address_taken"
    again = create_alias(org, "info@example.com", ["alice@example.com"])
    assert again.status == 409 and again.error_code == "address_taken"


def test_alias_limits(table: Table) -> None:
    org = create_organization(table, name="Few", limits={"aliases": 2})
    add_domain(org, "one.example.com", aliases=1)
    add_domain(org, "two.example.com")
    assert create_alias(org, "a@one.example.com", ["x@gmail.com"]).status == 201
    domain_full = create_alias(org, "b@one.example.com", ["x@gmail.com"])
    assert domain_full.status == 422 and domain_full.error_code == "domain_alias_limit_reached"
    assert create_alias(org, "c@two.example.com", ["x@gmail.com"]).status == 201
    org_full = create_alias(org, "d@two.example.com", ["x@gmail.com"])
    assert org_full.status == 422 and org_full.error_code == "alias_limit_reached"


def test_a_domain_with_aliases_cannot_be_deleted(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com")
    alias = ok(create_alias(org, "a@example.com", ["x@gmail.com"]), 201)
    from tests.support.lambda_api import call

    assert call("domains", "DELETE", f"/api/v1/domains/{domain['id']}", token=org.admin_token).status == 409
    assert delete("aliases", org.admin_token, f"/api/v1/aliases/{alias['id']}").status == 204
    assert call("domains", "DELETE", f"/api/v1/domains/{domain['id']}", token=org.admin_token).status == 204


def test_alias_changes_are_audited(org: NewOrganization, domain: dict[str, Any]) -> None:
    alias = ok(create_alias(org, "a@example.com", ["x@gmail.com"]), 201)
    patch("aliases", org.admin_token, f"/api/v1/aliases/{alias['id']}", {"active": False})
    delete("aliases", org.admin_token, f"/api/v1/aliases/{alias['id']}")
    log = get("audit", org.admin_token, "/api/v1/audit-log", per_page=100).json()["data"]
    actions = [(r["action"], r["target"]["id"]) for r in reversed(log) if r["action"].startswith("alias.")]
    assert actions == [
        ("alias.create", alias["id"]),
        ("alias.update", alias["id"]),
        ("alias.delete", alias["id"]),
    ]
