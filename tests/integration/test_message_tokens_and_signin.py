"""Message tokens (bound to one mailbox) and the mailbox sign-in that issues short-lived ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mailroom import clock
from mailroom.api.errors import status_of
from mailroom.domain.tokens import parse_token
from mailroom.services.mailbox_policy import send_blocked
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys, message_tokens
from mailroom.store.table import Table
from tests.support.lambda_api import call
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    delete,
    get,
    key,
    new_mailbox,
    ok,
    patch,
    post,
    public,
)
from tests.support.plans import put_on_plan


@pytest.fixture
def boxes(org: NewOrganization) -> dict[str, dict[str, Any]]:
    add_domain(org, "example.com")
    return {"alice": new_mailbox(org, "alice"), "bob": new_mailbox(org, "bob")}


def create_token(org: NewOrganization, mailbox_id: str, scopes: list[str] | None = None, **extra: Any) -> Any:
    body = {
        "name": "agent",
        "scopes": ["messages:read", "messages:send"] if scopes is None else scopes,
        **extra,
    }
    return post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox_id}/message-tokens", body)


def ping(token: str) -> Any:
    return get("message_tokens", token, "/api/v1/messages/_ping")


def sign_in(address: str, password: str = PASSWORD) -> Any:
    return public("mailbox_auth", "/api/v1/auth/mailbox-token", {"address": address, "password": password})


# --- managed message tokens --------------------------------------------------------------------------


def test_create_list_use_and_revoke(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], table: Table
) -> None:
    alice = boxes["alice"]
    created = ok(create_token(org, alice["id"]), 201)
    plaintext = created["token"]
    assert plaintext.startswith("mr_msg_") and parse_token(plaintext) is not None
    assert created["id"].startswith("mtk_") and created["type"] == "message" and created["kind"] == "managed"
    assert created["scopes"] == ["messages:read", "messages:send"] and created["mailbox_id"] == alice["id"]
    stored = message_tokens.get(table, org.organization["id"], created["id"])
    assert stored is not None and plaintext not in str(stored)

    pong = ok(ping(plaintext))
    assert pong["mailbox"] == {
        "id": alice["id"],
        "address": "alice@example.com",
        "active": True,
        "paused": False,
    }
    assert pong["token"]["id"] == created["id"] and pong["can_send"] is True

    path = f"/api/v1/mailboxes/{alice['id']}/message-tokens"
    listed = get("mailboxes", org.admin_token, path).json()
    assert [t["id"] for t in listed["data"]] == [created["id"]] and listed["meta"]["total"] == 1
    assert "token" not in listed["data"][0] and listed["data"][0]["used_at"] is not None
    assert (
        ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{alice['id']}"))["message_token_count"] == 1
    )
    assert (
        get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{boxes['bob']['id']}/message-tokens").json()[
            "data"
        ]
        == []
    )

    assert delete("message_tokens", org.admin_token, f"/api/v1/message-tokens/{created['id']}").status == 204
    assert ping(plaintext).status == 401
    assert delete("message_tokens", org.admin_token, f"/api/v1/message-tokens/{created['id']}").status == 404
    assert (
        ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{alice['id']}"))["message_token_count"] == 0
    )
    assert get("mailboxes", org.admin_token, path).json()["meta"]["total"] == 0


def test_only_message_scopes_and_future_expiry(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    mailbox_id = boxes["alice"]["id"]
    assert create_token(org, mailbox_id, ["mailboxes:read"]).error_code == "validation_error"
    assert create_token(org, mailbox_id, []).error_code == "validation_error"
    assert create_token(org, mailbox_id, expires_at="2001-01-01T00:00:00Z").error_code == "validation_error"
    assert create_token(org, "mbx_missing").status == 404


def test_a_message_token_only_ever_reaches_its_own_mailbox(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    alice, bob = boxes["alice"], boxes["bob"]
    alice_token = ok(
        create_token(org, alice["id"], ["messages:read", "messages:write", "messages:send"]), 201
    )["token"]
    bob_token = ok(create_token(org, bob["id"]), 201)["token"]
    assert ok(ping(alice_token))["mailbox"]["id"] == alice["id"]
    assert ok(ping(bob_token))["mailbox"]["id"] == bob["id"]
    # No ops endpoint accepts it, whatever mailbox it names.
    for function, method, path in [
        ("mailboxes", "GET", f"/api/v1/mailboxes/{bob['id']}"),
        ("mailboxes", "GET", f"/api/v1/mailboxes/{alice['id']}"),
        ("mailboxes", "GET", "/api/v1/mailboxes"),
        ("mailboxes", "PATCH", f"/api/v1/mailboxes/{bob['id']}"),
        ("mailboxes", "GET", f"/api/v1/mailboxes/{bob['id']}/forwarding"),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{bob['id']}/message-tokens"),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{bob['id']}:delete-intent"),
        ("message_tokens", "DELETE", "/api/v1/message-tokens/mtk_x"),
        ("aliases", "GET", "/api/v1/aliases"),
        ("account", "GET", "/api/v1/me"),
    ]:
        response = call(function, method, path, token=alice_token, json_body={}, headers=key())
        assert response.status == 403, (path, response.status)
        assert response.error_code == "wrong_token_type", path
    # Ops tokens cannot act as a mailbox.
    assert ping(org.admin_token).error_code == "wrong_token_type"


def test_ping_needs_messages_read(org: NewOrganization, boxes: dict[str, dict[str, Any]]) -> None:
    send_only = ok(create_token(org, boxes["alice"]["id"], ["messages:send"]), 201)["token"]
    response = ping(send_only)
    assert response.status == 403 and response.error_code == "insufficient_scope"


def test_a_paused_mailbox_cannot_send(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], table: Table
) -> None:
    alice = boxes["alice"]
    token = ok(create_token(org, alice["id"]), 201)["token"]
    post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{alice['id']}:pause")
    pong = ok(ping(token))
    assert pong["can_send"] is False and pong["send_blocked_reason"] == "mailbox_paused"
    from mailroom.store import mailboxes

    stored = mailboxes.get(table, org.organization["id"], alice["id"])
    assert stored is not None
    blocked = send_blocked(stored)
    assert blocked is not None and (status_of(blocked), blocked.code) == (403, "mailbox_paused")
    post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{alice['id']}:resume")
    assert ok(ping(token))["can_send"] is True


def test_token_count_per_mailbox_is_capped(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], table: Table
) -> None:
    put_on_plan(table, org.organization["id"], message_tokens=2)
    mailbox_id = boxes["alice"]["id"]
    assert create_token(org, mailbox_id).status == 201
    assert create_token(org, mailbox_id).status == 201
    third = create_token(org, mailbox_id)
    assert third.status == 422 and third.error_code == "message_token_limit_reached"


# --- sign-in -----------------------------------------------------------------------------------------


def test_sign_in_issues_a_one_hour_message_token(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    response = sign_in("Alice@EXAMPLE.com")
    data = ok(response, 201)
    assert data["token"].startswith("mr_msg_") and data["token_type"] == "message"
    assert data["mailbox_id"] == boxes["alice"]["id"] and data["address"] == "alice@example.com"
    assert data["scopes"] == ["messages:read", "messages:send", "messages:write"]
    assert 3590 <= data["expires_in"] <= 3600
    assert ok(ping(data["token"]))["mailbox"]["id"] == boxes["alice"]["id"]
    # Sign-in tokens are not among the managed tokens.
    listed = get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{boxes['alice']['id']}/message-tokens")
    assert listed.json()["data"] == []


def test_failures_do_not_tell_whether_the_address_exists(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    wrong = sign_in("alice@example.com", "Wrong-Password-1")
    unknown = sign_in("nobody@example.com")
    foreign = sign_in("alice@not-hosted.com")
    malformed = sign_in("no-at-sign")
    for response in (wrong, unknown, foreign, malformed):
        assert response.status == 401
        error = response.json()["error"]
        assert (error["code"], error["message"]) == (
            "invalid_credentials",
            "The address or the password is wrong.",
        )


def test_repeated_failures_lock_the_address_out(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = clock.utcnow()  # one window for the whole test, wherever the wall clock is
    monkeypatch.setattr(clock, "utcnow", lambda: frozen)
    limit = get_settings().signin_max_failures
    for _ in range(limit):
        assert sign_in("alice@example.com", "Wrong-Password-1").status == 401
    locked = sign_in("alice@example.com")  # even the right password
    assert locked.status == 429 and locked.error_code == "too_many_attempts"
    assert 1 <= int(locked.headers["retry-after"]) <= get_settings().signin_window_seconds
    # Other addresses are not affected; unknown addresses are throttled the same way.
    assert sign_in("bob@example.com").status == 201
    for _ in range(limit):
        assert sign_in("ghost@example.com").status == 401
    assert sign_in("ghost@example.com").status == 429
    # The next window lets the owner in again.
    later = frozen + timedelta(seconds=get_settings().signin_window_seconds)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert sign_in("alice@example.com").status == 201


def test_a_success_clears_earlier_failures(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = clock.utcnow()
    monkeypatch.setattr(clock, "utcnow", lambda: frozen)
    limit = get_settings().signin_max_failures
    for _ in range(limit - 1):
        sign_in("alice@example.com", "Wrong-Password-1")
    assert sign_in("alice@example.com").status == 201
    for _ in range(limit - 1):
        assert sign_in("alice@example.com", "Wrong-Password-1").status == 401
    assert sign_in("alice@example.com").status == 201


def test_force_pw_update_and_inactive_mailboxes(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    new_mailbox(org, "carol", force_pw_update=True)
    required = sign_in("carol@example.com")
    assert required.status == 403 and required.error_code == "password_change_required"
    assert "/password" in required.json()["error"]["hint"]
    assert sign_in("carol@example.com", "Wrong-Password-1").status == 401  # the flag only shows to the owner
    listed = get("mailboxes", org.admin_token, "/api/v1/mailboxes").json()["data"]
    carol_id = next(m["id"] for m in listed if m["local_part"] == "carol")
    post(
        "mailboxes",
        org.admin_token,
        f"/api/v1/mailboxes/{carol_id}/password",
        {"password": "Brand-New-Secret-3"},
    )
    assert sign_in("carol@example.com", "Brand-New-Secret-3").status == 201
    patch("mailboxes", org.admin_token, f"/api/v1/mailboxes/{carol_id}", {"active": False})
    inactive = sign_in("carol@example.com", "Brand-New-Secret-3")
    assert inactive.status == 403 and inactive.error_code == "mailbox_inactive"


def test_a_password_change_revokes_sign_in_tokens_only(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    alice = boxes["alice"]
    session = ok(sign_in("alice@example.com"), 201)["token"]
    managed = ok(create_token(org, alice["id"]), 201)["token"]
    post(
        "mailboxes",
        org.admin_token,
        f"/api/v1/mailboxes/{alice['id']}/password",
        {"password": "Brand-New-Secret-3"},
    )
    assert ping(session).status == 401
    assert ping(managed).status == 200
    assert sign_in("alice@example.com").status == 401
    assert sign_in("alice@example.com", "Brand-New-Secret-3").status == 201


def test_an_expired_sign_in_token_is_refused(
    org: NewOrganization, boxes: dict[str, dict[str, Any]], table: Table
) -> None:
    data = ok(sign_in("alice@example.com"), 201)
    table.update(
        keys.org_pk(org.organization["id"]),
        keys.message_token_sk(data["token_id"]),
        "SET expires_at_epoch = :past",
        expression_values={":past": {"N": "1000"}},
    )
    response = ping(data["token"])
    assert response.status == 401 and response.error_code == "unauthenticated"


def test_sign_ins_are_audited_in_the_mailbox_organization(
    org: NewOrganization, boxes: dict[str, dict[str, Any]]
) -> None:
    sign_in("alice@example.com", "Wrong-Password-1")
    token_id = ok(sign_in("alice@example.com"), 201)["token_id"]
    sign_in("nobody@example.com")  # no organization to attribute it to
    log = get("audit", org.admin_token, "/api/v1/audit-log", action="mailbox.sign_in").json()["data"]
    assert [(r["outcome"]["status"], r["outcome"]["error_code"]) for r in reversed(log)] == [
        (401, "invalid_credentials"),
        (201, None),
    ]
    assert all(
        r["actor"] == {"token_id": boxes["alice"]["id"], "type": "mailbox", "name": "alice@example.com"}
        for r in log
    )
    assert log[0]["target"]["token_id"] == token_id
