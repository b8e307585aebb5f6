"""Plans and gating through the API functions (trekmail-api-overview.txt, "Quick fixes"): a scope
the plan excludes is 403 plan_api_disabled; a token carrying one (made before a downgrade) or a
token requested with one is 403 token_scope_blocked_by_plan; limits come from the plan."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.domain.plans import DEFAULT_PLANS
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services import plans
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.services.tokens import issue_api_key
from mailroom.store import organizations
from mailroom.store import plans as plan_store
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import PASSWORD, add_domain, create_mailbox, get, new_mailbox, ok, post, public
from tests.support.plans import put_on_plan


def code(result: Result) -> tuple[int, str | None]:
    return result.status, result.error_code


def org_on(table: Table, plan: str) -> NewOrganization:
    return create_organization(table, name=f"On {plan}", plan=plan)


def api_key(table: Table, org: NewOrganization) -> str:
    return issue_api_key(table, org_id=org.organization["id"], name="key", created_by=None).plaintext


def new_token(org: NewOrganization, scopes: list[str], token: str | None = None) -> Result:
    return post("tokens", token or org.admin_token, "/api/v1/tokens", {"name": "agent", "scopes": scopes})


def message_token(org: NewOrganization, mailbox_id: str) -> str:
    path = f"/api/v1/mailboxes/{mailbox_id}/message-tokens"
    created = ok(
        post("mailboxes", org.admin_token, path, {"name": "agent", "scopes": ["messages:read"]}), 201
    )
    return str(created["token"])


# --- the default set, as data -------------------------------------------------------------------


def test_the_default_plans_are_written_to_the_table_when_first_needed(table: Table) -> None:
    assert plan_store.list_all(table) == []
    org = create_organization(table, name="Acme")
    assert org.organization["plan"] == "pro"
    stored = {item["name"]: item for item in plan_store.list_all(table)}
    assert sorted(stored) == ["agency", "nano", "pro", "starter"]
    assert stored["starter"]["limits"]["migration_batch_rows"] == 100
    # The organization carries what the request path needs.
    item = organizations.get(table, org.organization["id"])
    assert item is not None and item["plan_scopes"] == ["*"]
    assert item["limits"] == dict(DEFAULT_PLANS["pro"].limits)


def test_a_plan_edited_by_the_operator_is_never_overwritten_by_the_defaults(table: Table) -> None:
    plans.ensure_defaults(table)
    plans.edit_plan(table, "nano", limits={"domains": 4})
    assert plans.ensure_defaults(table) == []
    assert plans.get_plan(table, "nano").limits["domains"] == 4
    assert plans.get_plan(table, "nano").version == 2


def test_the_first_admin_token_holds_only_what_the_plan_allows(table: Table) -> None:
    nano = org_on(table, "nano")
    me = ok(get("account", nano.admin_token, "/api/v1/me"))
    assert set(me["scopes"]) == OPS_SCOPES & DEFAULT_PLANS["nano"].allowed_scopes
    account = ok(get("account", nano.admin_token, "/api/v1/account"))
    assert account["plan"] == "nano" and account["limits"]["domains"] == 1
    assert account["limits"]["rate_limit_per_minute"] == 60


def test_an_unknown_plan_is_refused_before_anything_is_written(table: Table) -> None:
    with pytest.raises(plans.PlanNotFound):
        create_organization(table, name="Acme", plan="platinum")
    assert list(plan_store.organizations_on(table, "platinum")) == []


# --- gating ---------------------------------------------------------------------------------------


def test_nano_reaches_its_account_and_nothing_of_the_infrastructure(table: Table) -> None:
    nano = org_on(table, "nano")
    assert get("account", nano.admin_token, "/api/v1/account").status == 200
    refused = get("domains", nano.admin_token, "/api/v1/domains")
    assert code(refused) == (403, "plan_api_disabled")
    assert "domains:read" in refused.json()["error"]["message"]
    assert code(post("domains", nano.admin_token, "/api/v1/domains", {"domain": "example.com"})) == (
        403,
        "plan_api_disabled",
    )
    # An organization-wide key holds what the plan allows: the same answers, never "blocked".
    key = api_key(table, nano)
    assert code(get("domains", key, "/api/v1/domains")) == (403, "plan_api_disabled")
    assert get("account", key, "/api/v1/account").status == 200
    # /api/v0 answers in its own shape.
    v0 = call("agent_inboxes", "GET", "/api/v0/inboxes", token=key)
    assert v0.status == 403 and v0.json()["name"] == "ForbiddenError"


def test_a_token_with_scopes_the_plan_excludes_cannot_be_created(table: Table) -> None:
    nano = org_on(table, "nano")
    refused = new_token(nano, ["verify:read", "domains:read"])
    assert code(refused) == (403, "token_scope_blocked_by_plan")
    assert "domains:read" in refused.json()["error"]["message"]
    # Even by an organization-wide key, which holds no scope the plan excludes to escalate from.
    assert code(new_token(nano, ["mailboxes:create"], api_key(table, nano))) == (
        403,
        "token_scope_blocked_by_plan",
    )
    created = ok(new_token(nano, ["verify:read", "verify:write"]), 201)
    assert created["scopes"] == ["verify:read", "verify:write"]


def test_starter_reads_infrastructure_runs_migrations_and_has_no_message_tokens(table: Table) -> None:
    org = create_organization(table, name="Acme")
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    plans.set_plan(table, org.organization["id"], "starter")
    key = api_key(table, org)
    assert ok(get("domains", key, "/api/v1/domains"))[0]["domain"] == "example.com"
    assert get("mailboxes", key, f"/api/v1/mailboxes/{alice['id']}").status == 200
    assert get("migrations", key, "/api/v1/migrations").status == 200
    assert code(post("domains", key, "/api/v1/domains", {"domain": "example.org"})) == (
        403,
        "plan_api_disabled",
    )
    body = {"name": "agent", "scopes": ["messages:read"]}
    created = post("mailboxes", key, f"/api/v1/mailboxes/{alice['id']}/message-tokens", body)
    assert code(created) == (403, "plan_api_disabled")
    # Signing in issues a message token: refused the same way.
    signed_in = public(
        "mailbox_auth", "/api/v1/auth/mailbox-token", {"address": alice["address"], "password": PASSWORD}
    )
    assert code(signed_in) == (403, "token_scope_blocked_by_plan")


def test_a_downgrade_takes_effect_on_the_next_request_and_an_upgrade_restores(table: Table) -> None:
    org = create_organization(table, name="Acme")
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    reader = message_token(org, alice["id"])
    narrow = ok(new_token(org, ["domains:read"]), 201)["token"]
    assert get("domains", org.admin_token, "/api/v1/domains").status == 200
    assert get("messages", reader, "/api/v1/messages").status == 200

    plans.set_plan(table, org.organization["id"], "starter")

    # The admin token carries write scopes starter excludes: refused, whatever it calls.
    for function, path in (("domains", "/api/v1/domains"), ("account", "/api/v1/me")):
        refused = get(function, org.admin_token, path)
        assert code(refused) == (403, "token_scope_blocked_by_plan"), path
        assert "domains:create" in refused.json()["error"]["message"]
    assert code(get("messages", reader, "/api/v1/messages")) == (403, "token_scope_blocked_by_plan")
    # A token within the plan keeps working.
    assert get("domains", narrow, "/api/v1/domains").status == 200

    plans.set_plan(table, org.organization["id"], "pro")
    assert get("domains", org.admin_token, "/api/v1/domains").status == 200
    assert get("messages", reader, "/api/v1/messages").status == 200


def test_with_a_cache_a_downgrade_takes_effect_when_the_cached_gate_expires(table: Table) -> None:
    """Deployed functions keep an organization's gate for TokenCacheTtl seconds, like token lookups."""
    org = create_organization(table, name="Acme")
    org_id = org.organization["id"]
    now = [1000.0]
    cache = plans.GateCache(clock=lambda: now[0])
    assert cache.gate(table, org_id, ttl_seconds=30).plan == "pro"
    plans.set_plan(table, org_id, "nano")
    now[0] += 29
    assert cache.gate(table, org_id, ttl_seconds=30).plan == "pro"
    now[0] += 2
    gate = cache.gate(table, org_id, ttl_seconds=30)
    assert gate.plan == "nano" and gate.allowed == DEFAULT_PLANS["nano"].allowed_scopes


def test_the_plan_rate_limit_caps_every_token(table: Table) -> None:
    nano = org_on(table, "nano")
    answer = get("account", nano.admin_token, "/api/v1/account")
    assert answer.headers["x-ratelimit-limit"] == "60"
    fast = ok(
        post(
            "tokens",
            nano.admin_token,
            "/api/v1/tokens",
            {"name": "fast", "scopes": ["verify:read"], "rate_limit_per_minute": 1000},
        ),
        201,
    )
    assert get("account", fast["token"], "/api/v1/me").headers["x-ratelimit-limit"] == "60"
    slow = ok(
        post(
            "tokens",
            nano.admin_token,
            "/api/v1/tokens",
            {"name": "slow", "scopes": ["verify:read"], "rate_limit_per_minute": 5},
        ),
        201,
    )
    assert get("account", slow["token"], "/api/v1/me").headers["x-ratelimit-limit"] == "5"


# --- limits from the plan --------------------------------------------------------------------------


def test_domain_and_mailbox_limits_come_from_the_plan_and_follow_its_edits(table: Table) -> None:
    org = create_organization(table, name="Acme")
    plan = put_on_plan(table, org.organization["id"], domains=1, mailboxes=1)
    add_domain(org, "example.com")
    second = post("domains", org.admin_token, "/api/v1/domains", {"domain": "example.org"})
    assert code(second) == (422, "domain_limit_reached")
    new_mailbox(org, "alice")
    assert code(create_mailbox(org, "bob")) == (422, "mailbox_limit_reached")

    edited = plans.edit_plan(table, plan, limits={"domains": 2, "mailboxes": 2})
    assert (edited.plan.version, edited.organizations_updated) == (2, 1)
    add_domain(org, "example.org")
    new_mailbox(org, "bob")
    assert ok(get("account", org.admin_token, "/api/v1/account"))["limits"]["mailboxes"] == 2


def test_an_organizations_own_overrides_stay_on_top_of_its_plan(table: Table) -> None:
    org = create_organization(table, name="Acme", limits={"mailboxes": 3}, plan="starter")
    assert ok(get("account", org.admin_token, "/api/v1/account"))["limits"]["mailboxes"] == 3
    plans.set_plan(table, org.organization["id"], "agency")
    limits = ok(get("account", org.admin_token, "/api/v1/account"))["limits"]
    assert limits["mailboxes"] == 3 and limits["domains"] == DEFAULT_PLANS["agency"].limits["domains"]


def test_the_storage_pool_is_the_plans(table: Table) -> None:
    org = create_organization(table, name="Acme")
    put_on_plan(table, org.organization["id"], storage_mb=100)
    add_domain(org, "example.com", quota=100, maxquota=100, defquota=10)
    new_mailbox(org, "alice", storage_allocation_mb=60, quota=10)
    refused = create_mailbox(org, "bob", storage_allocation_mb=60, quota=10)
    assert code(refused) == (422, "storage_pool_exceeded")
    assert "100 MB" in refused.json()["error"]["message"]


def test_message_tokens_per_mailbox_come_from_the_plan(table: Table) -> None:
    org = create_organization(table, name="Acme")
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    put_on_plan(table, org.organization["id"], message_tokens=1)
    message_token(org, alice["id"])
    path = f"/api/v1/mailboxes/{alice['id']}/message-tokens"
    again = post("mailboxes", org.admin_token, path, {"name": "two", "scopes": ["messages:read"]})
    assert code(again) == (422, "message_token_limit_reached")
    assert "1 message tokens" in again.json()["error"]["message"]


def test_a_plan_without_a_message_scope_refuses_tokens_requesting_it(table: Table) -> None:
    org = create_organization(table, name="Acme")
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    allowed = sorted(OPS_SCOPES | {"messages:read"})
    put_on_plan(table, org.organization["id"], scopes=allowed)
    key = api_key(table, org)
    path = f"/api/v1/mailboxes/{alice['id']}/message-tokens"
    refused = post("mailboxes", key, path, {"name": "sender", "scopes": ["messages:read", "messages:send"]})
    assert code(refused) == (403, "token_scope_blocked_by_plan")
    reader = ok(post("mailboxes", key, path, {"name": "reader", "scopes": ["messages:read"]}), 201)["token"]
    assert get("messages", reader, "/api/v1/messages").status == 200


def test_bulk_migration_limits_come_from_the_plan(table: Table) -> None:
    org = create_organization(table, name="Acme", plan="starter")
    body: dict[str, Any] = {
        "data": "someone@example.org,secret,nobody@example.com",
        "provider": "generic_imap",
        "source_host": "imap.example.org",
        "source_port": 993,
        "source_security": "ssl",
    }
    preview = post("migration_batches", org.admin_token, "/api/v1/migrations/bulk/preview", body)
    assert preview.status == 200, preview.body
    limits = preview.json()["limits"]
    assert (limits["max_rows_per_batch"], limits["concurrent_per_account"]) == (100, 2)


def test_set_plan_reports_blocked_tokens_and_counts_over_the_new_limits(table: Table) -> None:
    org = create_organization(table, name="Acme")
    add_domain(org, "example.com")
    add_domain(org, "example.org")
    result = plans.set_plan(table, org.organization["id"], "nano")
    assert result.previous_plan == "pro"
    assert [t["name"] for t in result.blocked_tokens] == ["admin"]
    assert result.over_limits == {"domains": (2, 1)}


def test_an_organization_made_before_plans_keeps_its_own_limits_on_its_first_plan(table: Table) -> None:
    """Made before plans: no plan (every scope), limits over the defaults; set-plan keeps the ones
    that were set for it as its overrides."""
    legacy = organizations.create(table, name="Old", limits={"mailboxes": 7})
    org_id = legacy["id"]
    assert plans.gate_of(table, org_id).plan is None
    plans.set_plan(table, org_id, "agency")
    item = organizations.get(table, org_id)
    assert item is not None and item["limit_overrides"] == {"mailboxes": 7}
    assert item["limits"] == {**DEFAULT_PLANS["agency"].limits, "mailboxes": 7}
