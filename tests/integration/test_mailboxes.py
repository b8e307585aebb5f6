"""Mailboxes through the API: creation and its validation, limits, the storage pool, updates,
passwords, notes, pause/resume, forwarding, bulk creation (all or nothing) and audit records."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.domain import passwords
from mailroom.services.organizations import NewOrganization
from mailroom.store import domains, mailboxes, organizations
from mailroom.store.table import Table
from tests.support.lambda_api import call
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    create_mailbox,
    get,
    new_mailbox,
    ok,
    ok_meta,
    patch,
    pool,
    post,
    put,
)


@pytest.fixture
def domain(org: NewOrganization) -> dict[str, Any]:
    return add_domain(org, "example.com", quota=20000)


def org_item(table: Table, org: NewOrganization) -> dict[str, Any]:
    item = organizations.get(table, org.organization["id"])
    assert item is not None
    return item


def domain_item(table: Table, org: NewOrganization, domain_id: str) -> dict[str, Any]:
    item = domains.get(table, org.organization["id"], domain_id)
    assert item is not None
    return item


def audit_actions(org: NewOrganization) -> list[tuple[str, int, str | None]]:
    log = get("audit", org.admin_token, "/api/v1/audit-log", per_page=100).json()["data"]
    return [(r["action"], r["outcome"]["status"], (r["target"] or {}).get("id")) for r in reversed(log)]


# --- create ------------------------------------------------------------------------------------------


def test_create_uses_the_domain_defaults_and_never_returns_the_password(
    org: NewOrganization, domain: dict[str, Any], table: Table
) -> None:
    response = create_mailbox(org, "Alice.Smith", "EXAMPLE.com", name="Alice", note="first")
    mailbox = ok(response, 201)
    assert mailbox["address"] == "alice.smith@example.com"
    assert (mailbox["local_part"], mailbox["domain"], mailbox["domain_id"]) == (
        "alice.smith",
        "example.com",
        domain["id"],
    )
    assert mailbox["quota"] == 3072  # the domain's defquota
    assert mailbox["storage_mode"] == "shared" and mailbox["storage_allocation_mb"] is None
    assert (mailbox["active"], mailbox["paused"], mailbox["used_bytes"]) == (True, False, 0)
    assert mailbox["note"] == "first" and mailbox["name"] == "Alice"
    assert mailbox["id"].startswith("mbx_")
    assert PASSWORD not in response.body.decode() and "password_hash" not in mailbox
    stored = mailboxes.get(table, org.organization["id"], mailbox["id"])
    assert stored is not None
    assert PASSWORD not in str(stored)
    assert stored["password_hash"].startswith("scrypt$16384$8$1$")
    assert passwords.verify_password(PASSWORD, stored["password_hash"])
    assert not passwords.verify_password(PASSWORD + "x", stored["password_hash"])
    assert ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}")) == mailbox
    counted = domain_item(table, org, domain["id"])
    assert (counted["mailbox_count"], counted["quota_allocated_mb"]) == (1, 3072)
    assert org_item(table, org)["mailbox_count"] == 1


def test_password_whitespace_is_kept(org: NewOrganization, domain: dict[str, Any], table: Table) -> None:
    mailbox = new_mailbox(org, "spaces", password="  padded Secret9  ")
    stored = mailboxes.get(table, org.organization["id"], mailbox["id"])
    assert stored is not None
    assert passwords.verify_password("  padded Secret9  ", stored["password_hash"])
    assert not passwords.verify_password("padded Secret9", stored["password_hash"])


@pytest.mark.parametrize(
    ("local_part", "code"),
    [
        ("has space", "invalid_address"),
        ("semi;colon", "invalid_address"),
        ("ünïcode", "invalid_address"),
        (".leading", "invalid_address"),
        ("trailing.", "invalid_address"),
        ("two..dots", "invalid_address"),
        ("a" * 65, "validation_error"),
    ],
)
def test_local_parts_follow_the_agentmail_rule(
    org: NewOrganization, domain: dict[str, Any], local_part: str, code: str
) -> None:
    response = create_mailbox(org, local_part)
    assert response.status == 422
    assert response.error_code == code


def test_every_allowed_local_part_character_works(org: NewOrganization, domain: dict[str, Any]) -> None:
    mailbox = new_mailbox(org, "a.b_c%d+e-F9")
    assert mailbox["address"] == "a.b_c%d+e-f9@example.com"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Short1!", "at least 10"),
        ("alllowercaseletters", "mix at least two"),
        ("aaaaaaaaaaaaa1", "repetition"),
        ("bob-the-builder-99", "local part"),
        ("Aa1!" * 65, "at most 256"),
    ],
)
def test_passwords_are_policy_checked(
    org: NewOrganization, domain: dict[str, Any], password: str, reason: str
) -> None:
    response = create_mailbox(org, "bob", password=password)
    assert response.status == 422
    assert response.error_code == "weak_password"
    assert reason in response.json()["error"]["message"]
    assert password not in response.body.decode()


def test_unknown_and_foreign_domains_are_refused(
    org: NewOrganization, other_org: NewOrganization, domain: dict[str, Any]
) -> None:
    add_domain(other_org, "globex.com")
    for name in ("globex.com", "nowhere.com"):
        response = create_mailbox(org, "x", name)
        assert response.status == 422
        assert response.error_code == "unknown_domain"
        assert response.json()["error"]["fields"][0]["field"] == "domain"


def test_address_is_unique_case_insensitively(
    org: NewOrganization, domain: dict[str, Any], table: Table
) -> None:
    new_mailbox(org, "alice")
    again = create_mailbox(org, "ALICE")
    assert again.status == 409 and again.error_code == "address_taken"
    alias = post(
        "aliases",
        org.admin_token,
        "/api/v1/aliases",
        {"address": "Alice@example.com", "goto": ["x@gmail.com"]},
    )
    assert alias.status == 409 and alias.error_code == "address_taken"
    assert domain_item(table, org, domain["id"])["mailbox_count"] == 1
    assert org_item(table, org)["mailbox_count"] == 1


def test_the_same_local_part_may_exist_in_two_organizations(
    org: NewOrganization, other_org: NewOrganization, domain: dict[str, Any]
) -> None:
    add_domain(other_org, "globex.com")
    new_mailbox(org, "alice")
    assert create_mailbox(other_org, "alice", "globex.com").status == 201


# --- limits ------------------------------------------------------------------------------------------


def test_quota_limits_of_the_domain(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com", defquota=100, maxquota=500, quota=1000)
    too_big = create_mailbox(org, "big", quota=501)
    assert too_big.status == 422 and too_big.error_code == "quota_exceeds_maxquota"
    new_mailbox(org, "a", quota=500)
    new_mailbox(org, "b", quota=400)
    over = create_mailbox(org, "c", quota=101)
    assert over.status == 422 and over.error_code == "domain_quota_exceeded"
    assert "100 MB" in over.json()["error"]["message"]
    new_mailbox(org, "c", quota=100)
    assert domain_item(table, org, domain["id"])["quota_allocated_mb"] == 1000
    # The domain's quota cannot be lowered below what its mailboxes hold.
    lowered = patch("domains", org.admin_token, f"/api/v1/domains/{domain['id']}", {"quota": 900})
    assert lowered.status == 422


def test_domain_mailbox_limit(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com", mailboxes=2)
    new_mailbox(org, "a")
    new_mailbox(org, "b")
    response = create_mailbox(org, "c")
    assert response.status == 422 and response.error_code == "domain_mailbox_limit_reached"
    assert domain_item(table, org, domain["id"])["mailbox_count"] == 2
    # Raising the limit makes room.
    assert (
        patch("domains", org.admin_token, f"/api/v1/domains/{domain['id']}", {"mailboxes": 3}).status == 200
    )
    assert create_mailbox(org, "c").status == 201


def test_organization_mailbox_limit(table: Table) -> None:
    from mailroom.services.organizations import create_organization

    small = create_organization(table, name="Small", limits={"mailboxes": 2})
    add_domain(small, "one.example.com")
    add_domain(small, "two.example.com")
    new_mailbox(small, "a", "one.example.com")
    new_mailbox(small, "b", "two.example.com")
    response = create_mailbox(small, "c", "two.example.com")
    assert response.status == 422 and response.error_code == "mailbox_limit_reached"
    assert org_item(table, small)["mailbox_count"] == 2


def test_the_transaction_enforces_limits_even_when_the_checks_were_passed(
    org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests that both saw room: the conditions of the write stop the second one."""
    from mailroom.services import mailboxes as service

    add_domain(org, "example.com", mailboxes=1)
    monkeypatch.setattr(service.Batch, "limit_error", lambda self, org: None)  # as if it read a stale count
    assert create_mailbox(org, "a").status == 201
    response = create_mailbox(org, "b")
    assert response.status == 422 and response.error_code == "domain_mailbox_limit_reached"
    assert org_item(table, org)["mailbox_count"] == 1


def test_the_transaction_guards_the_pool_even_when_the_check_was_passed(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.services import mailboxes as service
    from mailroom.services.organizations import create_organization

    org = create_organization(table, name="Pool", limits={"storage_mb": 1000})
    add_domain(org, "example.com", quota=1000, maxquota=1000, defquota=100)
    new_mailbox(org, "first", storage_allocation_mb=600)
    monkeypatch.setattr(service.Batch, "limit_error", lambda self, org: None)
    response = create_mailbox(org, "second", storage_allocation_mb=500, quota=10)
    assert response.status == 422 and response.error_code == "storage_pool_exceeded"
    assert pool(org)["committed_mb"] == 600
    assert create_mailbox(org, "third", storage_allocation_mb=400, quota=10).status == 201


# --- storage pool ------------------------------------------------------------------------------------


def test_dedicated_allocations_are_carved_out_of_the_pool(table: Table) -> None:
    from mailroom.services.organizations import create_organization

    org = create_organization(table, name="Pool", limits={"storage_mb": 1000})
    add_domain(org, "example.com", quota=1000, maxquota=1000, defquota=100)
    dedicated = new_mailbox(org, "ded", storage_allocation_mb=600)
    assert dedicated["storage_mode"] == "dedicated"
    assert dedicated["quota"] == 600  # the quota follows the allocation
    assert pool(org) == {
        "total_mb": 1000,
        "dedicated_mb": 600,
        "reserved_mb": 0,
        "committed_mb": 600,
        "shared_mb": 400,
    }
    over = create_mailbox(org, "over", storage_allocation_mb=401, quota=100)
    assert over.status == 422 and over.error_code == "storage_pool_exceeded"
    assert "400 MB" in over.json()["error"]["message"]
    shared = new_mailbox(org, "shared", quota=100)  # shared mailboxes need no room in the pool
    assert shared["storage_mode"] == "shared"
    quota_too_big = create_mailbox(org, "qtb", storage_allocation_mb=100, quota=200)
    assert quota_too_big.status == 422 and quota_too_big.error_code == "quota_exceeds_allocation"
    assert pool(org)["committed_mb"] == 600


def test_changing_the_allocation_moves_the_pool(table: Table) -> None:
    from mailroom.services.organizations import create_organization

    org = create_organization(table, name="Pool", limits={"storage_mb": 1000})
    add_domain(org, "example.com", quota=1000, maxquota=1000, defquota=100)
    first = new_mailbox(org, "first", quota=100)
    second = new_mailbox(org, "second", storage_allocation_mb=500, quota=100)
    path = f"/api/v1/mailboxes/{first['id']}"
    grown = ok(patch("mailboxes", org.admin_token, path, {"storage_allocation_mb": 500}))
    assert grown["storage_mode"] == "dedicated"
    assert pool(org)["committed_mb"] == 1000
    refused = patch("mailboxes", org.admin_token, path, {"storage_allocation_mb": 501})
    assert refused.status == 422 and refused.error_code == "storage_pool_exceeded"
    back = ok(
        patch(
            "mailboxes", org.admin_token, f"/api/v1/mailboxes/{second['id']}", {"storage_allocation_mb": None}
        )
    )
    assert back["storage_mode"] == "shared" and back["storage_allocation_mb"] is None
    assert pool(org) == {
        "total_mb": 1000,
        "dedicated_mb": 500,
        "reserved_mb": 0,
        "committed_mb": 500,
        "shared_mb": 500,
    }
    shrink = patch("mailboxes", org.admin_token, path, {"storage_allocation_mb": 50})
    assert shrink.status == 422 and shrink.error_code == "quota_exceeds_allocation"
    shrunk = ok(patch("mailboxes", org.admin_token, path, {"storage_allocation_mb": 50, "quota": 50}))
    assert (shrunk["storage_allocation_mb"], shrunk["quota"]) == (50, 50)
    assert pool(org)["dedicated_mb"] == 50


# --- update ------------------------------------------------------------------------------------------


def test_patch_updates_the_mailcow_fields(org: NewOrganization, domain: dict[str, Any], table: Table) -> None:
    mailbox = new_mailbox(org, "alice", name="Alice")
    path = f"/api/v1/mailboxes/{mailbox['id']}"
    body = {
        "name": "Alice B.",
        "quota": 5000,
        "active": False,
        "tls_enforce_in": True,
        "force_pw_update": True,
    }
    updated = ok(patch("mailboxes", org.admin_token, path, body))
    assert (updated["name"], updated["quota"], updated["active"]) == ("Alice B.", 5000, False)
    assert updated["tls_enforce_in"] is True and updated["force_pw_update"] is True
    assert updated["updated_at"] >= mailbox["updated_at"]
    assert domain_item(table, org, domain["id"])["quota_allocated_mb"] == 5000
    cleared = ok(patch("mailboxes", org.admin_token, path, {"name": None}))
    assert cleared["name"] is None and cleared["quota"] == 5000
    assert patch("mailboxes", org.admin_token, path, {"quota": 20000}).error_code == "quota_exceeds_maxquota"
    assert patch("mailboxes", org.admin_token, path, {"active": None}).status == 422
    assert patch("mailboxes", org.admin_token, path, {"address": "x@example.com"}).status == 422


def test_note_pause_and_resume(org: NewOrganization, domain: dict[str, Any]) -> None:
    mailbox = new_mailbox(org, "alice")
    base = f"/api/v1/mailboxes/{mailbox['id']}"
    noted = ok(patch("mailboxes", org.admin_token, f"{base}/note", {"note": "VIP"}))
    assert noted["note"] == "VIP"
    paused = ok(post("mailboxes", org.admin_token, f"{base}:pause", {"reason": "abuse report"}))
    assert paused["paused"] is True and paused["pause_reason"] == "abuse report" and paused["paused_at"]
    again = ok(post("mailboxes", org.admin_token, f"{base}:pause", {"reason": "other"}))
    assert again["pause_reason"] == "abuse report" and again["paused_at"] == paused["paused_at"]
    resumed = ok(post("mailboxes", org.admin_token, f"{base}:resume"))
    assert resumed["paused"] is False and resumed["paused_at"] is None and resumed["pause_reason"] is None
    assert ok(patch("mailboxes", org.admin_token, f"{base}/note", {"note": None}))["note"] is None


def test_set_password_checks_the_policy_and_clears_force_pw_update(
    org: NewOrganization, domain: dict[str, Any], table: Table
) -> None:
    mailbox = new_mailbox(org, "alice", force_pw_update=True)
    path = f"/api/v1/mailboxes/{mailbox['id']}/password"
    weak = post("mailboxes", org.admin_token, path, {"password": "alice-alice-1"})
    assert weak.status == 422 and weak.error_code == "weak_password"
    changed = ok(post("mailboxes", org.admin_token, path, {"password": "Another-Secret-7"}))
    assert changed["force_pw_update"] is False
    assert changed["password_updated_at"] >= mailbox["password_updated_at"]
    stored = mailboxes.get(table, org.organization["id"], mailbox["id"])
    assert stored is not None and passwords.verify_password("Another-Secret-7", stored["password_hash"])


# --- forwarding --------------------------------------------------------------------------------------


def test_forwarding_round_trip_and_validation(org: NewOrganization, domain: dict[str, Any]) -> None:
    alice = new_mailbox(org, "alice")
    new_mailbox(org, "bob")
    path = f"/api/v1/mailboxes/{alice['id']}/forwarding"
    initial = ok(get("mailboxes", org.admin_token, path))
    assert initial == {"enabled": False, "targets": [], "keep_copy": True, "updated_at": None}
    body = {"targets": ["Bob@Example.com", "someone@gmail.com", "someone@GMAIL.com"], "keep_copy": False}
    forwarding = ok(put("mailboxes", org.admin_token, path, body))
    assert forwarding["targets"] == ["bob@example.com", "someone@gmail.com"]
    assert forwarding["enabled"] is True and forwarding["keep_copy"] is False
    assert ok(get("mailboxes", org.admin_token, path))["targets"] == forwarding["targets"]
    assert (
        ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{alice['id']}"))["forwarding"] == forwarding
    )

    def refused(targets: list[str], keep_copy: bool = True) -> str | None:
        response = put("mailboxes", org.admin_token, path, {"targets": targets, "keep_copy": keep_copy})
        assert response.status == 422, response.body
        return response.error_code

    assert refused(["nobody@example.com"]) == "unknown_target"  # our domain, no such mailbox
    assert refused(["alice@example.com"]) == "forwarding_loop"
    assert refused(["not-an-address"]) == "invalid_forwarding_target"
    assert refused([f"u{i}@gmail.com" for i in range(11)]) == "validation_error"
    assert refused([], keep_copy=False) == "forwarding_drops_mail"
    disabled = ok(put("mailboxes", org.admin_token, path, {"targets": []}))
    assert disabled == {**disabled, "enabled": False, "targets": [], "keep_copy": True}


# --- list --------------------------------------------------------------------------------------------


def test_list_pages_filters_by_domain_and_reports_the_pool(org: NewOrganization, table: Table) -> None:
    one = add_domain(org, "one.example.com")
    two = add_domain(org, "two.example.com")
    for name in ("a", "b", "c"):
        new_mailbox(org, name, "one.example.com", quota=100)
    new_mailbox(org, "d", "two.example.com", quota=100)
    first = get("mailboxes", org.admin_token, "/api/v1/mailboxes", per_page=2).json()
    assert first["meta"]["total"] == 4 and first["meta"]["last_page"] == 2
    assert first["meta"]["storage_pool"]["total_mb"] == 51200
    cursor = first["links"]["next"].split("cursor=", 1)[1].split("&", 1)[0]
    second = get("mailboxes", org.admin_token, "/api/v1/mailboxes", per_page=2, cursor=cursor).json()
    seen = [m["address"] for m in first["data"] + second["data"]]
    assert sorted(seen) == [
        "a@one.example.com",
        "b@one.example.com",
        "c@one.example.com",
        "d@two.example.com",
    ]
    only_two = get("mailboxes", org.admin_token, "/api/v1/mailboxes", domain_id=two["id"]).json()
    assert [m["address"] for m in only_two["data"]] == ["d@two.example.com"]
    assert only_two["meta"]["total"] == 1
    assert ok_meta(get("mailboxes", org.admin_token, "/api/v1/mailboxes", domain_id=one["id"]))["total"] == 3
    missing = get("mailboxes", org.admin_token, "/api/v1/mailboxes", domain_id="dom_nope")
    assert missing.status == 404


# --- bulk --------------------------------------------------------------------------------------------


def rows(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"local_part": n, "domain": "example.com", "password": PASSWORD, **extra} for n in names]


def test_bulk_creates_every_row(org: NewOrganization, domain: dict[str, Any], table: Table) -> None:
    response = post(
        "mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": rows("a", "b", "c", quota=10)}
    )
    assert response.status == 201, response.body
    body = response.json()
    assert [m["address"] for m in body["data"]] == ["a@example.com", "b@example.com", "c@example.com"]
    assert body["meta"]["created"] == 3
    assert domain_item(table, org, domain["id"])["mailbox_count"] == 3
    assert domain_item(table, org, domain["id"])["quota_allocated_mb"] == 30


def test_bulk_with_one_bad_row_creates_nothing(
    org: NewOrganization, domain: dict[str, Any], table: Table
) -> None:
    new_mailbox(org, "taken")
    batch = [
        *rows("ok1"),
        *rows("taken"),
        *rows("bad space"),
        *rows("ok1"),
        *rows("weak", password="weakweakweak"),
    ]
    response = post("mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": batch})
    assert response.status == 422
    error = response.json()["error"]
    assert error["code"] == "bulk_validation_failed"
    assert [(r["index"], r["status"], (r["error"] or {}).get("code")) for r in error["rows"]] == [
        (0, "valid", None),
        (1, "invalid", "address_taken"),
        (2, "invalid", "invalid_address"),
        (3, "invalid", "duplicate_row"),
        (4, "invalid", "weak_password"),
    ]
    assert domain_item(table, org, domain["id"])["mailbox_count"] == 1
    assert create_mailbox(org, "ok1").status == 201  # nothing of the batch was written


def test_bulk_validates_the_pool_as_a_whole(table: Table) -> None:
    from mailroom.services.organizations import create_organization

    org = create_organization(table, name="Pool", limits={"storage_mb": 1000})
    add_domain(org, "example.com", quota=1000, maxquota=1000, defquota=100)
    batch = rows("a", "b", "c", storage_allocation_mb=400, quota=10)  # each fits, together they do not
    response = post("mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": batch})
    assert response.status == 422 and response.error_code == "storage_pool_exceeded"
    assert pool(org)["committed_mb"] == 0
    assert org_item(table, org)["mailbox_count"] == 0
    fits = post("mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": batch[:2]})
    assert fits.status == 201
    assert pool(org)["dedicated_mb"] == 800


def test_bulk_respects_the_domain_limit_as_a_whole(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org, "example.com", mailboxes=2)
    response = post(
        "mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": rows("a", "b", "c")}
    )
    assert response.status == 422 and response.error_code == "domain_mailbox_limit_reached"
    assert domain_item(table, org, domain["id"])["mailbox_count"] == 0


def test_bulk_size_is_capped(org: NewOrganization, domain: dict[str, Any]) -> None:
    batch = rows(*[f"u{i}" for i in range(26)])
    response = post("mailboxes", org.admin_token, "/api/v1/mailboxes:bulk", {"mailboxes": batch})
    assert response.status == 422 and response.error_code == "validation_error"


# --- conventions -------------------------------------------------------------------------------------


def test_scopes_are_enforced(org: NewOrganization, domain: dict[str, Any]) -> None:
    reader = ok(
        post("tokens", org.admin_token, "/api/v1/tokens", {"name": "r", "scopes": ["mailboxes:read"]}), 201
    )["token"]
    mailbox = new_mailbox(org, "alice")
    assert get("mailboxes", reader, f"/api/v1/mailboxes/{mailbox['id']}").status == 200
    assert create_mailbox(org, "x").status == 201
    denied = post(
        "mailboxes",
        reader,
        "/api/v1/mailboxes",
        {"local_part": "y", "domain": "example.com", "password": PASSWORD},
    )
    assert denied.status == 403 and denied.error_code == "insufficient_scope"
    assert (
        get("mailboxes", reader, f"/api/v1/mailboxes/{mailbox['id']}/forwarding").error_code
        == "insufficient_scope"
    )


def test_create_is_idempotent(org: NewOrganization, domain: dict[str, Any], table: Table) -> None:
    body = {"local_part": "alice", "domain": "example.com", "password": PASSWORD}
    headers = {"Idempotency-Key": "create-alice"}
    first = call(
        "mailboxes", "POST", "/api/v1/mailboxes", token=org.admin_token, json_body=body, headers=headers
    )
    second = call(
        "mailboxes", "POST", "/api/v1/mailboxes", token=org.admin_token, json_body=body, headers=headers
    )
    assert first.status == second.status == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert org_item(table, org)["mailbox_count"] == 1
    missing_key = call("mailboxes", "POST", "/api/v1/mailboxes", token=org.admin_token, json_body=body)
    assert missing_key.status == 422 and missing_key.error_code == "missing_idempotency_key"


def test_every_change_is_audited(org: NewOrganization, domain: dict[str, Any]) -> None:
    mailbox = new_mailbox(org, "alice")
    mid = mailbox["id"]
    base = f"/api/v1/mailboxes/{mid}"
    patch("mailboxes", org.admin_token, base, {"name": "A"})
    patch("mailboxes", org.admin_token, f"{base}/note", {"note": "n"})
    post("mailboxes", org.admin_token, f"{base}/password", {"password": "Another-Secret-7"})
    post("mailboxes", org.admin_token, f"{base}:pause")
    post("mailboxes", org.admin_token, f"{base}:resume")
    put("mailboxes", org.admin_token, f"{base}/forwarding", {"targets": ["x@gmail.com"]})
    create_mailbox(org, "alice")  # refused: audited as a failure
    get("mailboxes", org.admin_token, base)  # reads are not audited
    actions = [a for a in audit_actions(org) if a[0].startswith("mailbox.")]
    assert actions == [
        ("mailbox.create", 201, mid),
        ("mailbox.update", 200, mid),
        ("mailbox.note", 200, mid),
        ("mailbox.set_password", 200, mid),
        ("mailbox.pause", 200, mid),
        ("mailbox.resume", 200, mid),
        ("mailbox.forwarding.set", 200, mid),
        ("mailbox.create", 409, "-"),
    ]
