"""Invites: creation reserves the address and the dedicated allocation; redeem turns them into a
mailbox (or a shared one when the pool shrank); expiry releases them, lazily and by the sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mailroom import clock
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.store import domains, invites, organizations
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, function_module, load_event
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    create_mailbox,
    get,
    ok,
    pool,
    post,
    public,
)


@pytest.fixture
def pool_org(table: Table) -> NewOrganization:
    org = create_organization(table, name="Pool", limits={"storage_mb": 1000})
    add_domain(org, "example.com", quota=1000, maxquota=1000, defquota=100)
    return org


def invite(org: NewOrganization, local_part: str, **extra: Any) -> Any:
    body = {"local_part": local_part, "domain": "example.com", **extra}
    return post("mailboxes", org.admin_token, "/api/v1/mailboxes/invites", body)


def redeem(code: str, password: str = PASSWORD) -> Any:
    return public("mailbox_auth", "/api/v1/auth/invites:redeem", {"code": code, "password": password})


def shift_clock(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real() + delta)


def run_sweep() -> dict[str, int]:
    event = load_event("eventbridge_scheduled.json")
    return function_module("mailbox_sweep").handler(event, LambdaContext(function_name="sweep"))  # type: ignore[no-any-return]


def test_an_invite_reserves_its_allocation_and_its_address(pool_org: NewOrganization, table: Table) -> None:
    created = ok(invite(pool_org, "bob", name="Bob", storage_allocation_mb=300), 201)
    assert created["status"] == "pending" and created["id"].startswith("inv_")
    assert created["code"].startswith("mri_") and created["redeem_path"] == "/api/v1/auth/invites:redeem"
    assert (created["quota"], created["storage_allocation_mb"], created["storage_mode"]) == (
        300,
        300,
        "dedicated",
    )
    assert pool(pool_org) == {
        "total_mb": 1000,
        "dedicated_mb": 0,
        "reserved_mb": 300,
        "committed_mb": 300,
        "shared_mb": 700,
    }
    stored = invites.get(table, pool_org.organization["id"], created["id"])
    assert stored is not None and created["code"] not in str(stored)
    taken = create_mailbox(pool_org, "bob")
    assert taken.status == 409 and taken.error_code == "address_taken"
    over = invite(pool_org, "carol", storage_allocation_mb=701)
    assert over.status == 422 and over.error_code == "storage_pool_exceeded"
    dedicated = create_mailbox(pool_org, "dave", storage_allocation_mb=701, quota=10)
    assert dedicated.status == 422 and dedicated.error_code == "storage_pool_exceeded"
    shown = ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{created['id']}"))
    assert "code" not in shown and shown["status"] == "pending"


def test_redeem_creates_the_mailbox_and_moves_the_reservation(
    pool_org: NewOrganization, table: Table
) -> None:
    created = ok(invite(pool_org, "bob", name="Bob", storage_allocation_mb=300), 201)
    response = redeem(created["code"])
    assert response.status == 201, response.body
    body = response.json()
    mailbox = body["data"]
    assert body["meta"] == {"storage_downgraded": False, "notice": None}
    assert mailbox["address"] == "bob@example.com" and mailbox["name"] == "Bob"
    assert (mailbox["storage_mode"], mailbox["storage_allocation_mb"], mailbox["quota"]) == (
        "dedicated",
        300,
        300,
    )
    assert mailbox["created_via"] == "invite" and mailbox["invite_id"] == created["id"]
    assert pool(pool_org) == {
        "total_mb": 1000,
        "dedicated_mb": 300,
        "reserved_mb": 0,
        "committed_mb": 300,
        "shared_mb": 700,
    }
    assert (
        ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}"))["id"]
        == mailbox["id"]
    )
    shown = ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{created['id']}"))
    assert shown["status"] == "redeemed" and shown["mailbox_id"] == mailbox["id"]
    domain = domains.get(table, pool_org.organization["id"], mailbox["domain_id"])
    assert domain is not None
    assert (domain["mailbox_count"], domain["invite_count"], domain["quota_allocated_mb"]) == (1, 0, 300)
    # The chosen password signs in.
    signed_in = public(
        "mailbox_auth", "/api/v1/auth/mailbox-token", {"address": "bob@example.com", "password": PASSWORD}
    )
    assert signed_in.status == 201
    again = redeem(created["code"])
    assert again.status == 409 and again.error_code == "invite_already_redeemed"


def test_redeem_downgrades_to_shared_when_the_pool_no_longer_fits(
    pool_org: NewOrganization, table: Table
) -> None:
    created = ok(invite(pool_org, "bob", storage_allocation_mb=600, quota=100), 201)
    # The operator shrinks the pool below what is committed (the reservation included).
    organizations_item = organizations.get(table, pool_org.organization["id"])
    assert organizations_item is not None
    table.update(
        organizations_item["PK"],
        organizations_item["SK"],
        "SET limits.storage_mb = :mb",
        expression_values={":mb": {"N": "500"}},
    )
    response = redeem(created["code"])
    assert response.status == 201, response.body
    body = response.json()
    assert body["meta"]["storage_downgraded"] is True
    assert "600 MB" in body["meta"]["notice"]
    assert body["data"]["storage_mode"] == "shared" and body["data"]["storage_allocation_mb"] is None
    assert body["data"]["quota"] == 100
    assert pool(pool_org) == {
        "total_mb": 500,
        "dedicated_mb": 0,
        "reserved_mb": 0,
        "committed_mb": 0,
        "shared_mb": 500,
    }


def test_redeem_validation(pool_org: NewOrganization) -> None:
    created = ok(invite(pool_org, "bob"), 201)
    assert created["storage_mode"] == "shared" and created["quota"] == 100
    unknown = redeem("mri_" + "x" * 32)
    assert unknown.status == 404 and unknown.error_code == "invite_not_found"
    weak = redeem(created["code"], password="bob-is-my-name-1")
    assert weak.status == 422 and weak.error_code == "weak_password"
    assert (
        ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{created['id']}"))["status"]
        == "pending"
    )
    assert pool(pool_org)["committed_mb"] == 0
    assert redeem(created["code"]).status == 201


def test_redeem_enforces_mailbox_limits(table: Table) -> None:
    org = create_organization(table, name="Tight", limits={"mailboxes": 1})
    add_domain(org, "example.com")
    created = ok(invite(org, "bob"), 201)
    # The organization fills up after the invite was made: the redeem is refused, the invite kept.
    refused_invite = invite(org, "carol")
    assert refused_invite.status == 201  # limits are checked against mailboxes, not invites
    assert create_mailbox(org, "dave").status == 201
    response = redeem(created["code"])
    assert response.status == 422 and response.error_code == "mailbox_limit_reached"
    full = invite(org, "erin")
    assert full.status == 422 and full.error_code == "mailbox_limit_reached"


def test_bulk_invites_are_all_or_nothing(pool_org: NewOrganization) -> None:
    rows = [{"local_part": n, "domain": "example.com", "storage_allocation_mb": 400} for n in ("a", "b", "c")]
    too_much = post("mailboxes", pool_org.admin_token, "/api/v1/mailboxes/invites:bulk", {"invites": rows})
    assert too_much.status == 422 and too_much.error_code == "storage_pool_exceeded"
    assert pool(pool_org)["reserved_mb"] == 0
    bad = post(
        "mailboxes",
        pool_org.admin_token,
        "/api/v1/mailboxes/invites:bulk",
        {
            "invites": [
                rows[0],
                {"local_part": "a", "domain": "example.com"},
                {"local_part": "z", "domain": "nope.com"},
            ]
        },
    )
    assert bad.status == 422 and bad.error_code == "bulk_validation_failed"
    assert [r["error"] and r["error"]["code"] for r in bad.json()["error"]["rows"]] == [
        None,
        "duplicate_row",
        "unknown_domain",
    ]
    assert pool(pool_org)["reserved_mb"] == 0
    created = post("mailboxes", pool_org.admin_token, "/api/v1/mailboxes/invites:bulk", {"invites": rows[:2]})
    assert created.status == 201, created.body
    data = created.json()["data"]
    assert len({i["code"] for i in data}) == 2 and created.json()["meta"]["created"] == 2
    assert pool(pool_org)["reserved_mb"] == 800


def test_an_expired_invite_is_released_lazily_at_redeem(
    pool_org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = ok(invite(pool_org, "bob", storage_allocation_mb=300, expires_in_hours=1), 201)
    shift_clock(monkeypatch, timedelta(hours=1, seconds=1))
    shown = ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{created['id']}"))
    assert shown["status"] == "expired"
    response = redeem(created["code"])
    assert response.status == 410 and response.error_code == "invite_expired"
    assert pool(pool_org)["reserved_mb"] == 0
    assert create_mailbox(pool_org, "bob").status == 201  # the address is free again
    assert redeem(created["code"]).status == 410


def test_the_sweep_releases_expired_invites(
    pool_org: NewOrganization, other_org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = ok(invite(pool_org, "soon", storage_allocation_mb=200, expires_in_hours=1), 201)
    later = ok(invite(pool_org, "later", storage_allocation_mb=300, expires_in_hours=48), 201)
    add_domain(other_org, "globex.com")
    foreign = ok(
        post(
            "mailboxes",
            other_org.admin_token,
            "/api/v1/mailboxes/invites",
            {"local_part": "x", "domain": "globex.com", "expires_in_hours": 1},
        ),
        201,
    )
    assert run_sweep()["invites_expired"] == 0
    assert pool(pool_org)["reserved_mb"] == 500
    shift_clock(monkeypatch, timedelta(hours=2))
    assert run_sweep() == {"invites_expired": 2, "purges_resent": 0, "errors": 0}
    assert pool(pool_org)["reserved_mb"] == 300
    assert (
        ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{soon['id']}"))["status"]
        == "expired"
    )
    assert (
        ok(get("mailboxes", pool_org.admin_token, f"/api/v1/mailboxes/invites/{later['id']}"))["status"]
        == "pending"
    )
    assert (
        ok(get("mailboxes", other_org.admin_token, f"/api/v1/mailboxes/invites/{foreign['id']}"))["status"]
        == "expired"
    )
    assert run_sweep()["invites_expired"] == 0  # released once only
    assert pool(pool_org)["reserved_mb"] == 300
    assert create_mailbox(pool_org, "soon").status == 201
    assert redeem(soon["code"]).status == 410
    assert redeem(later["code"]).status == 201


def test_pending_invites_block_deleting_their_domain(
    pool_org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = ok(invite(pool_org, "bob", expires_in_hours=1), 201)
    domain_id = created["domain_id"]
    from tests.support.lambda_api import call

    blocked = call("domains", "DELETE", f"/api/v1/domains/{domain_id}", token=pool_org.admin_token)
    assert blocked.status == 409 and blocked.error_code == "domain_not_empty"
    shift_clock(monkeypatch, timedelta(hours=2))
    run_sweep()
    assert call("domains", "DELETE", f"/api/v1/domains/{domain_id}", token=pool_org.admin_token).status == 204


def test_invite_validation(pool_org: NewOrganization) -> None:
    assert invite(pool_org, "bad..dots").error_code == "invalid_address"
    assert invite(pool_org, "x", quota=1001).error_code == "quota_exceeds_maxquota"
    assert invite(pool_org, "x", expires_in_hours=721).error_code == "validation_error"
    assert invite(pool_org, "x", domain="other.com").error_code == "unknown_domain"
