"""``mailroom admin plans ...`` and ``mailroom admin set-plan``, run through ``main([...])`` against
moto, then checked through the API functions the way a client would meet the change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.cli import main
from mailroom.store import organizations
from mailroom.store.table import Table
from tests.support.mailboxes import get


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["admin", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def new_org(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    created = as_json(capsys, "create-org", "--name", "Acme", *argv)
    return created["organization"]["id"], created["admin_token"]


def test_plans_list_shows_the_default_set(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "plans", "list")
    assert status == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "SCOPES", "LIMITS"]
    assert [row.split()[0] for row in rows] == ["agency", "nano", "pro", "starter"]
    listed = {plan["name"]: plan for plan in as_json(capsys, "plans", "list")}
    assert listed["nano"]["scopes"] == [
        "account:read",
        "audit:read",
        "billing:read",
        "tickets:read",
        "tickets:write",
        "tokens:manage",
        "verify:read",
        "verify:write",
    ]
    assert listed["agency"]["limits"]["migration_batch_rows"] == 1000


def test_plans_show_one_and_refuse_an_unknown_one(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "plans", "show", "starter")
    assert status == 0
    assert "plan          starter (version 1)" in out and "migration_concurrency=2" in out
    status, out, err = run(capsys, "plans", "show", "platinum")
    assert (status, out) == (2, "")
    assert "no plan named 'platinum'" in err


def test_create_a_plan_from_another_and_from_scratch(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    derived = as_json(capsys, "plans", "create", "pro-plus", "--from", "pro", "--limits", "domains=25")
    assert derived["scopes"] == ["*"] and derived["limits"]["domains"] == 25
    assert derived["limits"]["mailboxes"] == 50
    limits = (
        "domains=1,mailboxes=2,aliases=3,storage_mb=4,message_tokens=0,"
        "migration_batch_rows=0,migration_concurrency=0,rate_limit_per_minute=30"
    )
    scratch = as_json(
        capsys, "plans", "create", "readers", "--scopes", "domains:read,account:read", "--limits", limits
    )
    assert scratch["scopes"] == ["account:read", "domains:read"] and scratch["version"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plans", "create", "x", "--scopes", "domains:read"], "needs --scopes and --limits"),
        (
            ["plans", "create", "x", "--from", "pro", "--scopes", "domains:rule"],
            "unknown scope(s): domains:rule",
        ),
        (["plans", "create", "Pro2", "--from", "pro"], "lowercase"),
        (["plans", "create", "pro", "--from", "nano"], "exists already"),
        (["plans", "create", "x", "--from", "pro", "--limits", "seats=3"], "unknown limit 'seats'"),
        (["plans", "edit", "pro"], "nothing to change"),
        (["plans", "edit", "pro", "--unset-limit", "domains"], "cannot be removed"),
        (["plans", "edit", "platinum", "--limits", "domains=1"], "no plan named"),
        (["set-plan", "org_nope", "pro"], "no organization org_nope"),
    ],
)
def test_bad_plan_commands_are_exit_2_with_the_reason(
    moto_env: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert message in err


def test_create_org_on_a_plan_and_with_overrides(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    org_id, token = new_org(capsys, "--plan", "starter", "--limits", "mailboxes=4")
    item = organizations.get(Table(), org_id)
    assert item is not None and item["plan"] == "starter"
    assert item["limits"]["mailboxes"] == 4 and item["limits"]["domains"] == 3
    assert get("domains", token, "/api/v1/domains").status == 200
    status, _, err = run(capsys, "create-org", "--name", "Acme", "--plan", "platinum")
    assert status == 2 and "no plan named 'platinum'" in err


def test_set_plan_downgrades_on_the_next_request_and_names_what_it_blocks(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id, token = new_org(capsys)
    assert get("domains", token, "/api/v1/domains").status == 200

    status, out, err = run(capsys, "set-plan", org_id, "nano")
    assert status == 0, err
    assert "plan          pro -> nano (version 1)" in out
    assert "is now refused with token_scope_blocked_by_plan" in err
    refused = get("domains", token, "/api/v1/domains")
    assert (refused.status, refused.error_code) == (403, "token_scope_blocked_by_plan")

    result = as_json(capsys, "set-plan", org_id, "pro")
    assert result["previous_plan"] == "nano" and result["blocked_tokens"] == []
    assert get("domains", token, "/api/v1/domains").status == 200


def test_edit_reaches_every_organization_on_the_plan(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = new_org(capsys, "--plan", "starter")
    second, _ = new_org(capsys, "--plan", "starter")
    other, _ = new_org(capsys)
    status, out, err = run(
        capsys, "plans", "edit", "starter", "--limits", "domains=7", "--description", "More"
    )
    assert status == 0, err
    assert "plan          starter (version 2)" in out and "organizations 2 updated to version 2" in out
    table = Table()
    for org_id, domains in ((first, 7), (second, 7), (other, 10)):
        item = organizations.get(table, org_id)
        assert item is not None and item["limits"]["domains"] == domains
    # Scopes too: starter without the migrations pair refuses them from the next request.
    edited = as_json(
        capsys, "plans", "edit", "starter", "--scopes", "account:read,tokens:manage,domains:read"
    )
    assert edited["organizations_updated"] == 2 and edited["plan"]["version"] == 3
    item = organizations.get(table, first)
    assert item is not None and item["plan_scopes"] == ["account:read", "domains:read", "tokens:manage"]


def test_list_orgs_shows_each_organizations_plan(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    org_id, _ = new_org(capsys, "--plan", "agency")
    status, out, _ = run(capsys, "list-orgs")
    assert status == 0
    header, row = out.splitlines()
    assert header.split()[-1] == "PLAN" and row.split()[0] == org_id and row.split()[-1] == "agency"
    assert as_json(capsys, "list-orgs")[0]["plan"] == "agency"
