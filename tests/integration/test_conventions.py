"""The v1 conventions: idempotency, rate limits, errors, pagination, audit, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.store import organizations
from mailroom.store.idempotency import Claim, IdempotencyStore
from mailroom.store.table import Table
from tests.support.lambda_api import call


def create(
    token: str,
    key: str | None,
    name: str = "t",
    scopes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    body = {"name": name, "scopes": scopes or ["account:read"], **(extra or {})}
    return call("tokens", "POST", "/api/v1/tokens", token=token, json_body=body, headers=headers)


def token_count(table: Table, org: NewOrganization) -> int:
    return int((organizations.get(table, org.organization["id"]) or {})["token_count"])


# --- idempotency -------------------------------------------------------------------------------------


def test_post_without_idempotency_key_is_422(org: NewOrganization, table: Table) -> None:
    response = create(org.admin_token, None)
    assert response.status == 422
    assert response.error_code == "missing_idempotency_key"
    assert token_count(table, org) == 1


def test_same_key_same_body_replays_without_a_second_effect(org: NewOrganization, table: Table) -> None:
    first = create(org.admin_token, "create-ci-token", name="ci")
    second = create(org.admin_token, "create-ci-token", name="ci")
    assert first.status == second.status == 201
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert token_count(table, org) == 2


def test_same_key_different_body_is_409(org: NewOrganization, table: Table) -> None:
    assert create(org.admin_token, "k", name="one").status == 201
    response = create(org.admin_token, "k", name="two")
    assert response.status == 409
    assert response.error_code == "idempotency_key_reused"
    assert token_count(table, org) == 2


def test_keys_are_scoped_to_the_token(org: NewOrganization, table: Table) -> None:
    other_admin = create(org.admin_token, "mk", name="admin2", scopes=["tokens:manage", "account:read"])
    second_token = other_admin.json()["data"]["token"]
    assert create(org.admin_token, "shared-key", name="x").status == 201
    response = create(second_token, "shared-key", name="x")
    assert response.status == 201
    assert "idempotent-replayed" not in response.headers
    assert token_count(table, org) == 4


def test_an_in_flight_duplicate_is_409(org: NewOrganization, table: Table) -> None:
    body = json.dumps({"name": "t", "scopes": ["account:read"]}).encode()
    import hashlib

    # The first request has claimed the key and not finished (as if it were still running).
    store = IdempotencyStore(table, org.organization["id"])
    me = call("account", "GET", "/api/v1/me", token=org.admin_token).json()["data"]
    claim = store.claim(
        {
            "token": me["id"],
            "key": "busy",
            "method": "POST",
            "path": "/api/v1/tokens",
            "body_sha256": hashlib.sha256(body).hexdigest(),
        },
        remaining_ms=60_000,
    )
    assert claim.claim is Claim.NEW
    response = create(org.admin_token, "busy")
    assert response.status == 409
    assert response.error_code == "idempotency_in_progress"
    assert response.json()["error"]["retryable"] is True


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\there", ""])
def test_malformed_idempotency_keys_are_422(org: NewOrganization, key: str) -> None:
    response = create(org.admin_token, key)
    assert response.status == 422
    assert response.error_code in {"invalid_idempotency_key", "missing_idempotency_key"}


def test_a_255_character_key_is_accepted(org: NewOrganization) -> None:
    assert create(org.admin_token, "k" * 255).status == 201


def test_a_failed_request_is_replayed_too(org: NewOrganization) -> None:
    first = create(org.admin_token, "bad", extra={"surprise": 1})
    second = create(org.admin_token, "bad", extra={"surprise": 1})
    assert first.status == second.status == 422
    assert second.headers["idempotent-replayed"] == "true"


def test_server_errors_release_the_key(
    org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.services import tokens as token_service

    real = token_service.issue_ops_token
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("dynamodb hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(token_service, "issue_ops_token", flaky)
    failed = create(org.admin_token, "retry-me")
    assert failed.status == 500
    error = failed.json()["error"]
    assert error["code"] == "internal_error"
    assert "hiccup" not in failed.body.decode()
    retried = create(org.admin_token, "retry-me")
    assert retried.status == 201
    assert "idempotent-replayed" not in retried.headers


def failing_first(real: Any, *failures: Exception) -> Any:
    """``real``, after raising each of ``failures`` once (an AWS outage that passes)."""
    pending = list(failures)

    def call(*args: Any, **kwargs: Any) -> Any:
        if pending:
            raise pending.pop(0)
        return real(*args, **kwargs)

    return call


def completion_only_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutation's idempotency completion is written in its audit record's transaction; when that
    transaction cannot be written, the completion is written on its own. Make the joint write fail,
    so the tests below reach the completion written alone, the path they are about."""
    from mailroom.store import audit
    from mailroom.store.errors import ServiceUnavailable

    real = audit.record

    def record(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("also"):
            raise ServiceUnavailable("the joint write is down")
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", record)


def test_a_done_request_answers_its_result_when_its_record_cannot_be_written(
    org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token exists: a 503 now would be retried by the client, and once the claim expired it
    would make a second token."""
    from mailroom.store.errors import ServiceUnavailable

    completion_only_alone(monkeypatch)
    down = failing_first(IdempotencyStore.complete, *(ServiceUnavailable("down") for _ in range(10)))
    monkeypatch.setattr(IdempotencyStore, "complete", down)
    created = create(org.admin_token, "unrecorded")
    assert created.status == 201
    assert token_count(table, org) == 2


def test_a_brief_outage_while_recording_the_outcome_is_waited_out(
    org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.store.errors import ServiceUnavailable, Throttled

    completion_only_alone(monkeypatch)
    flaky = failing_first(IdempotencyStore.complete, Throttled("slow"), ServiceUnavailable("down"))
    monkeypatch.setattr(IdempotencyStore, "complete", flaky)
    first = create(org.admin_token, "outage")
    replayed = create(org.admin_token, "outage")
    assert first.status == replayed.status == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert token_count(table, org) == 2


def test_a_failed_request_releases_its_key_through_a_brief_outage(
    org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else the client's retry would hear 409 idempotency_in_progress until the claim expires."""
    from mailroom.services import tokens as token_service
    from mailroom.store.errors import Throttled

    monkeypatch.setattr(
        token_service, "issue_ops_token", failing_first(token_service.issue_ops_token, RuntimeError("bug"))
    )
    monkeypatch.setattr(
        IdempotencyStore, "abandon", failing_first(IdempotencyStore.abandon, Throttled("slow"))
    )
    assert create(org.admin_token, "release-me").status == 500
    retried = create(org.admin_token, "release-me")
    assert retried.status == 201
    assert "idempotent-replayed" not in retried.headers
    assert token_count(table, org) == 2


def test_delete_honours_a_key_when_sent(org: NewOrganization) -> None:
    token_id = create(org.admin_token, "c").json()["data"]["id"]
    headers = {"Idempotency-Key": "del-1"}
    first = call("tokens", "DELETE", f"/api/v1/tokens/{token_id}", token=org.admin_token, headers=headers)
    second = call("tokens", "DELETE", f"/api/v1/tokens/{token_id}", token=org.admin_token, headers=headers)
    assert first.status == second.status == 204
    assert second.headers["idempotent-replayed"] == "true"


# --- rate limits -------------------------------------------------------------------------------------


def test_rate_limit_headers_and_429(org: NewOrganization) -> None:
    limited = create(org.admin_token, "rl", extra={"rate_limit_per_minute": 3}).json()["data"]["token"]
    seen = [call("account", "GET", "/api/v1/me", token=limited) for _ in range(3)]
    assert [r.status for r in seen] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in seen)
    blocked = call("account", "GET", "/api/v1/me", token=limited)
    assert blocked.status == 429
    assert blocked.error_code == "rate_limited"
    assert blocked.json()["error"]["retryable"] is True
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert int(blocked.headers["x-ratelimit-reset"]) > 0
    # The limit is per token: the admin token is unaffected.
    assert call("account", "GET", "/api/v1/me", token=org.admin_token).status == 200


def test_default_rate_limit_comes_from_settings(org: NewOrganization) -> None:
    response = call("account", "GET", "/api/v1/me", token=org.admin_token)
    assert response.headers["x-ratelimit-limit"] == "600"


# --- errors and pagination ---------------------------------------------------------------------------


def test_unknown_route_and_wrong_method_use_the_envelope(org: NewOrganization) -> None:
    missing = call("tokens", "GET", "/api/v1/tokens/tok_x/nothing", token=org.admin_token)
    assert missing.status == 404 and missing.error_code == "not_found"
    wrong = call("tokens", "PATCH", "/api/v1/tokens", token=org.admin_token, headers={"Idempotency-Key": "p"})
    assert wrong.status == 405 and wrong.error_code == "method_not_allowed"


def test_per_page_over_100_is_422(org: NewOrganization) -> None:
    response = call("tokens", "GET", "/api/v1/tokens", token=org.admin_token, query={"per_page": 101})
    assert response.status == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.per_page"


def test_pages_follow_links_both_ways(org: NewOrganization) -> None:
    for i in range(6):
        create(org.admin_token, f"p{i}", name=f"t{i}")
    seen: list[str] = []
    pages = []
    query: dict[str, Any] = {"per_page": 3}
    while True:
        body = call("tokens", "GET", "/api/v1/tokens", token=org.admin_token, query=query).json()
        pages.append(body)
        seen += [t["id"] for t in body["data"]]
        if not body["links"]["next"]:
            break
        query = dict(part.split("=", 1) for part in body["links"]["next"].split("?", 1)[1].split("&"))
    assert len(seen) == len(set(seen)) == 7
    assert [p["meta"]["current_page"] for p in pages] == [1, 2, 3]
    assert all(p["meta"]["last_page"] == 3 and p["meta"]["total"] == 7 for p in pages)
    assert pages[0]["links"]["prev"] is None
    # Back from page 3 to page 2 gives page 2's items again.
    prev_query = dict(part.split("=", 1) for part in pages[2]["links"]["prev"].split("?", 1)[1].split("&"))
    back = call("tokens", "GET", "/api/v1/tokens", token=org.admin_token, query=prev_query).json()
    assert [t["id"] for t in back["data"]] == [t["id"] for t in pages[1]["data"]]
    assert back["meta"]["current_page"] == 2


def test_cursors_cannot_cross_organizations(org: NewOrganization, other_org: NewOrganization) -> None:
    for i in range(3):
        create(org.admin_token, f"x{i}", name=f"t{i}")
    next_link = call("tokens", "GET", "/api/v1/tokens", token=org.admin_token, query={"per_page": 1}).json()[
        "links"
    ]["next"]
    cursor = next_link.split("cursor=", 1)[1].split("&", 1)[0]
    response = call("tokens", "GET", "/api/v1/tokens", token=other_org.admin_token, query={"cursor": cursor})
    assert response.status == 422
    assert response.error_code == "invalid_cursor"
    garbage = call(
        "tokens", "GET", "/api/v1/tokens", token=org.admin_token, query={"cursor": "%%%not-base64"}
    )
    assert garbage.status == 422 and garbage.error_code == "invalid_cursor"


# --- audit -------------------------------------------------------------------------------------------


def test_mutations_are_audited_with_actor_target_and_outcome(org: NewOrganization) -> None:
    created = create(org.admin_token, "audited", name="ci").json()["data"]
    create(org.admin_token, "audited-bad", extra={"surprise": 1})
    call("tokens", "GET", "/api/v1/tokens", token=org.admin_token)  # reads are not audited
    log = call(
        "audit", "GET", "/api/v1/audit-log", token=org.admin_token, headers={"X-Request-Id": "audit-read"}
    ).json()
    assert log["meta"]["total"] == 2
    failed, succeeded = log["data"]  # newest first
    assert succeeded["action"] == "token.create"
    assert succeeded["target"] == {"type": "token", "id": created["id"], "name": "ci"}
    assert succeeded["outcome"] == {"status": 201, "result": "success", "error_code": None, "replayed": False}
    assert succeeded["actor"]["type"] == "ops" and succeeded["actor"]["name"] == "admin"
    assert succeeded["source_ip"] == "203.0.113.7"
    assert succeeded["request_id"].startswith("req_")
    assert failed["outcome"]["result"] == "failure"
    assert failed["outcome"]["error_code"] == "validation_error"


def test_a_brief_outage_does_not_lose_the_audit_record(
    org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.store import audit
    from mailroom.store.errors import Contended, ServiceUnavailable

    monkeypatch.setattr(
        audit, "record", failing_first(audit.record, ServiceUnavailable("down"), Contended("busy"))
    )
    assert create(org.admin_token, "audited-anyway", name="ci").status == 201
    log = call("audit", "GET", "/api/v1/audit-log", token=org.admin_token).json()
    assert [entry["action"] for entry in log["data"]] == ["token.create"]
    # The idempotency completion rode in the same (retried) transaction: the retry replays.
    replayed = create(org.admin_token, "audited-anyway", name="ci")
    assert replayed.status == 201
    assert replayed.headers["idempotent-replayed"] == "true"


def test_audit_filters_by_action_actor_and_time(org: NewOrganization) -> None:
    helper = create(org.admin_token, "h", name="helper", scopes=["tokens:manage", "account:read"]).json()[
        "data"
    ]
    create(helper["token"], "h2", name="by-helper")
    victim = create(org.admin_token, "v", name="victim").json()["data"]
    call("tokens", "DELETE", f"/api/v1/tokens/{victim['id']}", token=org.admin_token)

    def audit(**query: Any) -> Any:
        return call("audit", "GET", "/api/v1/audit-log", token=org.admin_token, query=query).json()

    by_action = audit(action="token.revoke")
    assert [r["target"]["id"] for r in by_action["data"]] == [victim["id"]]
    assert by_action["meta"]["total"] is None
    by_actor = audit(actor=helper["id"])
    assert [r["target"]["name"] for r in by_actor["data"]] == ["by-helper"]
    assert audit(since="2999-01-01T00:00:00Z")["data"] == []
    assert len(audit(since="2000-01-01T00:00:00Z", until="2999-01-01T00:00:00Z")["data"]) == 4
    bad = call(
        "audit",
        "GET",
        "/api/v1/audit-log",
        token=org.admin_token,
        query={"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
    )
    assert bad.status == 422


def test_audit_log_needs_audit_read(org: NewOrganization) -> None:
    reader = create(org.admin_token, "r", name="r").json()["data"]["token"]
    assert call("audit", "GET", "/api/v1/audit-log", token=reader).error_code == "insufficient_scope"


# --- OpenAPI -----------------------------------------------------------------------------------------


def test_openapi_document_covers_every_router() -> None:
    response = call("openapi", "GET", "/api/openapi.json", public=True)
    assert response.status == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/api/v1/me",
        "/api/v1/account",
        "/api/v1/tokens",
        "/api/v1/tokens/{token_id}",
        "/api/v1/audit-log",
    ):
        assert path in spec["paths"], path
    assert spec["paths"]["/api/v1/tokens"]["post"]["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
