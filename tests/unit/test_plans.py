"""Plans as data (domain/plans.py): the default set against the product pages, validation, and the
gating decision as a property over the whole scope catalogue."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import plans
from mailroom.domain.plans import ALL_SCOPES, DEFAULT_PLANS, InvalidPlan, Verdict, gate
from mailroom.domain.scopes import MESSAGE_SCOPES, OPS_SCOPES
from mailroom.services.plans import gate_of_item

CATALOGUE = sorted(ALL_SCOPES)
scope_sets = st.frozensets(st.sampled_from(CATALOGUE))
ACCOUNT = {"account:read", "audit:read", "tokens:manage", "billing:read"}
ACCOUNT |= {"tickets:read", "tickets:write"}  # support tickets: every plan reaches the operator
VERIFIER = {"verify:read", "verify:write"}


def test_nano_is_the_verifier_and_its_own_account_only() -> None:
    assert DEFAULT_PLANS["nano"].allowed_scopes == ACCOUNT | VERIFIER


def test_starter_adds_read_only_infrastructure_and_migrations_but_no_message_tokens() -> None:
    allowed = DEFAULT_PLANS["starter"].allowed_scopes
    assert allowed >= ACCOUNT | VERIFIER | {"migrations:read", "migrations:write", "domains:read"}
    infrastructure_writes = {
        s
        for s in OPS_SCOPES
        if not s.endswith(":read") and s.split(":")[0] in {"domains", "mailboxes", "webhooks"}
    }
    assert not allowed & infrastructure_writes
    assert not allowed & MESSAGE_SCOPES
    assert not DEFAULT_PLANS["starter"].message_tokens


@pytest.mark.parametrize("name", ["pro", "agency"])
def test_pro_and_agency_get_everything_message_tokens_included(name: str) -> None:
    plan = DEFAULT_PLANS[name]
    assert plan.allowed_scopes == ALL_SCOPES and plan.message_tokens
    assert plan.scopes == ("*",)  # scopes added to Mailroom later are theirs too


def test_migration_limits_follow_the_migrations_page() -> None:
    """trekmail-migrations-api.txt, "Concurrency limits": Starter 100/2, Pro 300/5, Agency 1,000/10."""
    table = {
        n: (p.limits["migration_batch_rows"], p.limits["migration_concurrency"])
        for n, p in DEFAULT_PLANS.items()
    }
    assert table == {"nano": (0, 0), "starter": (100, 2), "pro": (300, 5), "agency": (1000, 10)}


def test_every_default_plan_states_every_required_limit_and_grows_with_its_tier() -> None:
    order = ["nano", "starter", "pro", "agency"]
    for limit in plans.REQUIRED_LIMITS:
        values = [DEFAULT_PLANS[name].limits[limit] for name in order]
        assert values == sorted(values), limit


@pytest.mark.parametrize(
    ("scopes", "limits", "message"),
    [
        ([], {}, "at least one scope"),
        (["domains:rule"], {}, "unknown scope(s): domains:rule"),
        (["*"], {"domains": -1}, "whole number"),
        (["*"], {"domains": True}, "whole number"),
        (["*"], {"seats": 3}, "unknown limit 'seats'"),
        (["*"], {"domains": 1}, "missing limit(s)"),
        (["*"], {**DEFAULT_PLANS["pro"].limits, "rate_limit_per_minute": 0}, "at least 1"),
    ],
)
def test_invalid_plans_are_refused_with_the_reason(
    scopes: list[str], limits: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidPlan, match=message.replace("(", r"\(").replace(")", r"\)")):
        plans.build("custom", description="", scopes=scopes, limits=limits)


@pytest.mark.parametrize("name", ["", "Pro", "9lives", "a" * 33, "with space", "x_y"])
def test_plan_names_are_short_lowercase_slugs(name: str) -> None:
    with pytest.raises(InvalidPlan):
        plans.validate_name(name)


def test_a_wildcard_swallows_the_rest_and_scopes_are_kept_sorted() -> None:
    assert plans.validate_scopes(["domains:read", "*"]) == ("*",)
    assert plans.validate_scopes(["verify:write", "account:read", "verify:write"]) == (
        "account:read",
        "verify:write",
    )


def test_effective_limits_are_the_plans_with_the_organizations_overrides_on_top() -> None:
    effective = plans.effective_limits(DEFAULT_PLANS["starter"], {"mailboxes": 2})
    assert effective == {**DEFAULT_PLANS["starter"].limits, "mailboxes": 2}


# --- the gate, over the scope catalogue ------------------------------------------------------------


@settings(max_examples=200, derandomize=True, deadline=None)
@given(token=scope_sets, allowed=scope_sets, required=scope_sets)
def test_a_token_is_blocked_exactly_when_it_carries_a_scope_the_plan_excludes(
    token: frozenset[str], allowed: frozenset[str], required: frozenset[str]
) -> None:
    verdict = gate(org_wide=False, token_scopes=token, allowed=allowed, required=required)
    if token - allowed:
        assert verdict is Verdict.TOKEN_BLOCKED
    elif required - allowed:
        assert verdict is Verdict.PLAN_DISABLED
    elif required - token:
        assert verdict is Verdict.INSUFFICIENT
    else:
        assert verdict is Verdict.ALLOWED


@settings(max_examples=200, derandomize=True, deadline=None)
@given(allowed=scope_sets, required=st.frozensets(st.sampled_from(sorted(OPS_SCOPES)), max_size=2))
def test_an_organization_wide_key_is_never_blocked_and_holds_what_the_plan_allows(
    allowed: frozenset[str], required: frozenset[str]
) -> None:
    verdict = gate(org_wide=True, token_scopes=frozenset(), allowed=allowed, required=required)
    assert verdict is (Verdict.ALLOWED if required <= allowed else Verdict.PLAN_DISABLED)


@pytest.mark.parametrize("scope", CATALOGUE)
@pytest.mark.parametrize("name", sorted(DEFAULT_PLANS))
def test_every_scope_under_every_default_plan(name: str, scope: str) -> None:
    """The scope table: an endpoint needing ``scope`` under plan ``name``, called by a token holding
    exactly that scope, is allowed if and only if the plan includes it; refused as a blocked token
    otherwise (the token itself carries it), and as plan_api_disabled for a token without it."""
    allowed = DEFAULT_PLANS[name].allowed_scopes
    holding = gate(org_wide=False, token_scopes=frozenset({scope}), allowed=allowed, required={scope})
    other = next(iter(sorted(allowed)))
    lacking = gate(org_wide=False, token_scopes=frozenset({other}), allowed=allowed, required={scope})
    if scope in allowed:
        assert holding is Verdict.ALLOWED
        assert lacking in (Verdict.ALLOWED, Verdict.INSUFFICIENT)
    else:
        assert holding is Verdict.TOKEN_BLOCKED
        assert lacking is Verdict.PLAN_DISABLED


# --- the gate as read from an organization item, and its cache --------------------------------------


def test_an_organization_on_no_plan_is_not_restricted() -> None:
    gate_ = gate_of_item({"id": "org_1"})
    assert gate_.plan is None and gate_.allowed == ALL_SCOPES and gate_.rate_limit is None


def test_an_organization_item_carries_its_gate() -> None:
    item = {
        "id": "org_1",
        "plan": "nano",
        "plan_scopes": ["account:read"],
        "limits": {"rate_limit_per_minute": 60},
    }
    gate_ = gate_of_item(item)
    assert (gate_.plan, gate_.allowed, gate_.rate_limit) == ("nano", frozenset({"account:read"}), 60)


# --- the OpenAPI document declares the plan's refusals where they can happen -------------------------


def test_every_token_operation_declares_both_plan_refusals() -> None:
    from mailroom.api.openapi import document

    spec = document()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not operation.get("security"):
                continue
            described = operation["responses"]["403"]["description"]
            assert "plan_api_disabled" in described and "token_scope_blocked_by_plan" in described, (
                method,
                path,
            )
    sign_in = spec["paths"]["/api/v1/auth/mailbox-token"]["post"]["responses"]["403"]["description"]
    assert "token_scope_blocked_by_plan" in sign_in
    limits = spec["components"]["schemas"]["AccountLimits"]["properties"]
    assert {"message_tokens", "rate_limit_per_minute"} <= set(limits)
    assert "plan" in spec["components"]["schemas"]["Account"]["properties"]
