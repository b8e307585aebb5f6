"""Plans through the local stack: the operator's CLI (``--env-file`` of the running stack, as
``--local`` does) changes an organization's plan, and an HTTP client meets the change on its next
request. The stack runs with ``MAILROOM_AUTH_CACHE_TTL=0``, so "next" is not "within 30 s"."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import REPO, LocalStackProcess, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("plans")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with start_stack(tmp_path_factory.mktemp("state"), MAILROOM_AUTH_CACHE_TTL="0") as running:
        yield running


def admin(stack: LocalStackProcess, *argv: str) -> Any:
    command = [sys.executable, "-m", "mailroom.cli", "admin", *argv, "--json"]
    command += ["--env-file", str(stack.state_dir / "local.env")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def client(stack: LocalStackProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def post(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    return http.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, (response.json().get("error") or {}).get("code")


def test_an_operator_moves_an_organization_between_plans(stack: LocalStackProcess) -> None:
    created = admin(stack, "create-org", "--name", "Client Co", "--plan", "starter")
    org_id, token = created["organization"]["id"], created["admin_token"]
    assert created["organization"]["plan"] == "starter"
    with client(stack, token) as http:
        assert http.get("/api/v1/account").json()["data"]["plan"] == "starter"
        assert http.get("/api/v1/domains").status_code == 200
        assert code(post(http, "/api/v1/domains", {"domain": "client.example"})) == (403, "plan_api_disabled")

        moved = admin(stack, "set-plan", org_id, "nano")
        assert [t["name"] for t in moved["blocked_tokens"]] == ["admin"]
        assert code(http.get("/api/v1/domains")) == (403, "token_scope_blocked_by_plan")

    # The way back in: an organization-wide key holds what the plan allows, and makes a fitting token.
    key = admin(stack, "create-api-key", "--org", org_id)["key"]
    with client(stack, key) as http:
        assert code(http.get("/api/v1/domains")) == (403, "plan_api_disabled")
        fitting = post(
            http, "/api/v1/tokens", {"name": "verifier", "scopes": ["verify:read", "verify:write"]}
        )
        assert fitting.status_code == 201, fitting.text
    with client(stack, fitting.json()["data"]["token"]) as http:
        assert http.get("/api/v1/me").status_code == 200

    admin(stack, "set-plan", org_id, "starter")
    with client(stack, token) as http:
        assert http.get("/api/v1/domains").status_code == 200


def test_an_edited_plan_reaches_its_organizations(stack: LocalStackProcess) -> None:
    admin(stack, "plans", "create", "tight", "--from", "pro", "--limits", "domains=0")
    created = admin(stack, "create-org", "--name", "Tight Co", "--plan", "tight")
    with client(stack, created["admin_token"]) as http:
        refused = post(http, "/api/v1/domains", {"domain": "tight.example.org"})
        assert code(refused) == (422, "domain_limit_reached")
        edited = admin(stack, "plans", "edit", "tight", "--limits", "domains=1")
        assert edited["organizations_updated"] == 1
        assert post(http, "/api/v1/domains", {"domain": "tight.example.org"}).status_code == 201
