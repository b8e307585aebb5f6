"""Limits under concurrency: requests for the last unit of a limit that have all passed every check
made on what they read (tests/support/races.py holds their writes until all are ready, then runs
them in order). Only the conditions of the writes decide: exactly one wins, and no count ever
ends up over its limit."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.store import domains, organizations
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call, function_module
from tests.support.mailboxes import PASSWORD, add_domain, new_mailbox
from tests.support.plans import put_on_plan
from tests.support.races import concurrently, either, updates_key, writes_item_of_type

_keys = itertools.count()


@pytest.fixture(autouse=True)
def _functions_loaded() -> None:
    # Imported once, before any thread races to import them.
    for name in ("domains", "mailboxes", "aliases"):
        function_module(name)


def post(function: str, org: NewOrganization, path: str, body: Any) -> Callable[[], Result]:
    key = f"race-{next(_keys)}"
    return lambda: call(
        function, "POST", path, token=org.admin_token, json_body=body, headers={"Idempotency-Key": key}
    )


def mailbox(org: NewOrganization, local_part: str) -> Callable[[], Result]:
    body = {"local_part": local_part, "domain": "example.com", "password": PASSWORD}
    return post("mailboxes", org, "/api/v1/mailboxes", body)


def outcomes(results: list[Result]) -> list[tuple[int, str | None]]:
    return [(r.status, None if r.status < 400 else r.error_code) for r in results]


def org_item(table: Table, org: NewOrganization) -> dict[str, Any]:
    item = organizations.get(table, org.organization["id"])
    assert item is not None
    return item


def domain_item(table: Table, org: NewOrganization, domain_id: str) -> dict[str, Any]:
    item = domains.get(table, org.organization["id"], domain_id)
    assert item is not None
    return item


def test_two_domains_for_the_last_slot(table: Table) -> None:
    org = create_organization(table, name="Race", limits={"domains": 1})
    results = concurrently(
        [
            post("domains", org, "/api/v1/domains", {"domain": "one.example.com"}),
            post("domains", org, "/api/v1/domains", {"domain": "two.example.com"}),
        ],
        writes_item_of_type("domain"),
    )
    assert outcomes(results) == [(201, None), (422, "domain_limit_reached")]
    assert org_item(table, org)["domain_count"] == 1
    listed = call("domains", "GET", "/api/v1/domains", token=org.admin_token).json()
    assert [d["domain"] for d in listed["data"]] == ["one.example.com"]


def test_a_domain_limit_lowered_since_it_was_read_refuses_the_create(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.services import domains as service

    org = create_organization(table, name="Lowered", limits={"domains": 2})
    add_domain(org, "one.example.com")
    table.update(
        f"ORG#{org.organization['id']}",
        "#ORG",
        "SET limits.domains = :one",
        expression_values={":one": {"N": "1"}},
    )
    # The create read the organization before the operator lowered its limit to 1.
    stale = iter([2])
    real = service.org_domain_limit
    monkeypatch.setattr(service, "org_domain_limit", lambda found: next(stale, None) or real(found))
    response = post("domains", org, "/api/v1/domains", {"domain": "two.example.com"})()
    assert (response.status, response.error_code) == (422, "domain_limit_reached")
    assert org_item(table, org)["domain_count"] == 1


def test_two_mailboxes_for_the_organizations_last_slot(table: Table) -> None:
    org = create_organization(table, name="Race", limits={"mailboxes": 1})
    add_domain(org, "example.com")
    results = concurrently([mailbox(org, "alice"), mailbox(org, "bob")], writes_item_of_type("mailbox"))
    assert outcomes(results) == [(201, None), (422, "mailbox_limit_reached")]
    assert org_item(table, org)["mailbox_count"] == 1


def test_two_aliases_for_the_domains_last_slot(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com", aliases=1)
    new_mailbox(org, "alice")

    def alias(address: str) -> Callable[[], Result]:
        return post("aliases", org, "/api/v1/aliases", {"address": address, "goto": ["alice@example.com"]})

    results = concurrently(
        [alias("sales@example.com"), alias("info@example.com")], writes_item_of_type("alias")
    )
    assert outcomes(results) == [(201, None), (422, "domain_alias_limit_reached")]
    assert domain_item(table, org, domain["id"])["alias_count"] == 1
    assert org_item(table, org)["alias_count"] == 1


def test_two_message_tokens_for_the_mailboxs_last_slot(org: NewOrganization, table: Table) -> None:
    put_on_plan(table, org.organization["id"], message_tokens=1)
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    path = f"/api/v1/mailboxes/{alice['id']}/message-tokens"

    def token(name: str) -> Callable[[], Result]:
        return post("mailboxes", org, path, {"name": name, "scopes": ["messages:read"]})

    results = concurrently([token("one"), token("two")], writes_item_of_type("message_token"))
    assert outcomes(results) == [(201, None), (422, "message_token_limit_reached")]
    listed = call("mailboxes", "GET", path, token=org.admin_token).json()
    assert listed["meta"]["total"] == 1 and len(listed["data"]) == 1


@pytest.mark.parametrize("lowered_first", [True, False])
def test_lowering_a_domain_limit_races_a_mailbox_create(
    org: NewOrganization, table: Table, lowered_first: bool
) -> None:
    """Each saw room (the limit is 5 with 1 mailbox; 1 is not below 1): whichever writes second
    is refused, and the domain never has more mailboxes than its limit."""
    domain = add_domain(org, "example.com", mailboxes=5)
    new_mailbox(org, "alice")
    path = f"/api/v1/domains/{domain['id']}"

    def lower() -> Result:
        return call("domains", "PATCH", path, token=org.admin_token, json_body={"mailboxes": 1})

    create = mailbox(org, "bob")
    calls = [lower, create] if lowered_first else [create, lower]
    gate = either(updates_key(f"DOMAIN#{domain['id']}"), writes_item_of_type("mailbox"))
    results = concurrently(calls, gate)
    lowered, created = results if lowered_first else results[::-1]
    if lowered_first:
        assert (lowered.status, created.status, created.error_code) == (
            200,
            422,
            "domain_mailbox_limit_reached",
        )
    else:
        assert (created.status, lowered.status, lowered.error_code) == (201, 422, "validation_error")
        assert lowered.json()["error"]["fields"][0]["field"] == "mailboxes"
    stored = domain_item(table, org, domain["id"])
    assert stored["mailbox_count"] <= stored["limits"]["mailboxes"]
    assert stored["mailbox_count"] == (1 if lowered_first else 2)


def test_an_invite_for_a_slot_a_mailbox_took_meanwhile_is_refused(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com", mailboxes=1)
    invite = post(
        "mailboxes", org, "/api/v1/mailboxes/invites", {"local_part": "carol", "domain": "example.com"}
    )
    results = concurrently(
        [mailbox(org, "alice"), invite], either(writes_item_of_type("mailbox"), writes_item_of_type("invite"))
    )
    assert outcomes(results) == [(201, None), (422, "domain_mailbox_limit_reached")]
    stored = domain_item(table, org, domain["id"])
    assert (stored["mailbox_count"], int(stored.get("invite_count", 0))) == (1, 0)
