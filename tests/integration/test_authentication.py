"""Authentication in the API functions themselves (API Gateway runs no authorizer): a request without
a token gets the documented 401, public paths take none, and a token's lookup is reused for
``MAILROOM_AUTH_CACHE_TTL`` seconds within one process (``mailroom.auth``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom import auth
from mailroom.domain.tokens import hash_token
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import tokens
from mailroom.store.table import Table
from tests.support.lambda_api import call


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch, moto_env: None) -> Iterator[None]:
    """The template's default: lookups reused for 30 seconds."""
    monkeypatch.setenv("MAILROOM_AUTH_CACHE_TTL", "30")
    get_settings.cache_clear()
    auth.forget_all()
    yield
    auth.forget_all()
    get_settings.cache_clear()


def new_token(org: NewOrganization, key: str) -> dict[str, Any]:
    created = call(
        "tokens",
        "POST",
        "/api/v1/tokens",
        token=org.admin_token,
        json_body={"name": key, "scopes": ["account:read"]},
        headers={"Idempotency-Key": key},
    )
    assert created.status == 201, created.body
    return created.json()["data"]  # type: ignore[no-any-return]


def revoke(org: NewOrganization, token_id: str) -> None:
    assert call("tokens", "DELETE", f"/api/v1/tokens/{token_id}", token=org.admin_token).status == 204


def test_no_authorization_header_is_401_in_the_envelope(org: NewOrganization) -> None:
    response = call("account", "GET", "/api/v1/me", headers={"X-Request-Id": "no-token-1"})
    assert response.status == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "No API token: the request has no Authorization header.",
            "hint": "Send 'Authorization: Bearer <token>' with a token that is not revoked or expired.",
            "request_id": "no-token-1",
            "retryable": False,
        }
    }
    assert response.headers["x-request-id"] == "no-token-1"


def test_an_empty_authorization_header_is_the_same_401(org: NewOrganization) -> None:
    response = call("tokens", "GET", "/api/v1/tokens", headers={"Authorization": ""})
    assert response.status == 401
    assert response.error_code == "unauthenticated"


def test_no_authorization_header_on_v0_is_its_401(org: NewOrganization) -> None:
    response = call("agent_api_keys", "GET", "/api/v0/api-keys")
    assert response.status == 401
    assert response.json()["name"] == "UnauthorizedError"


def test_public_paths_take_no_token_for_any_method(org: NewOrganization) -> None:
    path = "/api/v1/auth/mailbox-token"
    # A token that would be refused does not matter on a public path: the body is checked.
    sent = call(
        "mailbox_auth", "POST", path, json_body={}, headers={"Authorization": "Bearer nope"}, public=True
    )
    assert (sent.status, sent.error_code) == (422, "validation_error")
    wrong = call("mailbox_auth", "GET", path, public=True)
    assert (wrong.status, wrong.error_code) == (405, "method_not_allowed")
    assert wrong.json()["error"]["request_id"] == wrong.headers["x-request-id"]


def test_a_revoked_token_works_until_its_cached_lookup_expires(
    org: NewOrganization, table: Table, cached: None
) -> None:
    created = new_token(org, "cached-1")
    assert call("account", "GET", "/api/v1/me", token=created["token"]).status == 200
    revoke(org, created["id"])
    # This process looked the token up less than 30 s ago: like API Gateway's authorizer cache did.
    assert call("account", "GET", "/api/v1/me", token=created["token"]).status == 200
    auth.forget_all()  # what 30 s (or another execution environment) brings
    refused = call("account", "GET", "/api/v1/me", token=created["token"])
    assert (refused.status, refused.error_code) == (401, "unauthenticated")


def test_without_a_cache_a_revoked_token_is_refused_at_once(org: NewOrganization) -> None:
    assert get_settings().auth_cache_seconds == 0  # no MAILROOM_AUTH_CACHE_TTL: every request looks up
    created = new_token(org, "uncached-1")
    assert call("account", "GET", "/api/v1/me", token=created["token"]).status == 200
    revoke(org, created["id"])
    assert call("account", "GET", "/api/v1/me", token=created["token"]).status == 401


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each token hash is looked up in the table (the real lookup runs; it is only counted)."""
    seen: Counter[str] = Counter()
    real = tokens.find_by_hash

    def counted(table: Table, token_hash: str) -> Any:
        seen[token_hash] += 1
        return real(table, token_hash)

    monkeypatch.setattr(tokens, "find_by_hash", counted)
    return seen


def test_the_cache_keeps_claims_for_the_ttl_and_unknown_tokens_briefly(
    org: NewOrganization, table: Table, lookups: Counter[str]
) -> None:
    clock = Clock()
    cache = auth.TokenCache(clock=clock)
    created = new_token(org, "clocked-1")
    header, token_hash = f"Bearer {created['token']}", hash_token(created["token"])
    claims = cache.claims(header, table, ttl_seconds=30)
    assert claims["token_id"] == created["id"]
    assert lookups[token_hash] == 1

    revoke(org, created["id"])
    clock.now += 29.9
    assert cache.claims(header, table, ttl_seconds=30) is claims
    assert lookups[token_hash] == 1  # none within the TTL
    clock.now += 0.1
    assert cache.claims(header, table, ttl_seconds=30) == {"denied": "unknown"}
    assert lookups[token_hash] == 2

    # A refusal is kept only briefly: a token used the moment it was made is not refused for long.
    clock.now += auth.UNKNOWN_TTL_SECONDS - 0.1
    cache.claims(header, table, ttl_seconds=30)
    assert lookups[token_hash] == 2
    clock.now += 0.1
    cache.claims(header, table, ttl_seconds=30)
    assert lookups[token_hash] == 3

    # Malformed tokens cost no lookup, cached or not.
    before = sum(lookups.values())
    assert cache.claims("Bearer mr_live_short", table, ttl_seconds=30) == {"denied": "malformed"}
    assert sum(lookups.values()) == before


def test_the_cache_holds_a_bounded_number_of_tokens(
    org: NewOrganization, table: Table, lookups: Counter[str]
) -> None:
    cache = auth.TokenCache(clock=Clock(), max_entries=2)
    plaintexts = [new_token(org, f"bounded-{i}")["token"] for i in range(3)]
    for plaintext in plaintexts:
        cache.claims(f"Bearer {plaintext}", table, ttl_seconds=30)
    oldest, newest = hash_token(plaintexts[0]), hash_token(plaintexts[2])
    cache.claims(f"Bearer {plaintexts[2]}", table, ttl_seconds=30)
    assert lookups[newest] == 1  # still there
    cache.claims(f"Bearer {plaintexts[0]}", table, ttl_seconds=30)
    assert lookups[oldest] == 2  # it made room for the newest
