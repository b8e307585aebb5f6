"""Organization B cannot see or touch anything of organization A: every endpoint that takes an id
answers 404 for A's ids exactly as for ids that do not exist, and A's resources are unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from tests.support.lambda_api import call
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    create_mail_infrastructure,
    get,
    key,
    new_mailbox,
    ok,
    post,
)


@pytest.fixture
def a_world(
    org: NewOrganization, other_org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    bucket, queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_PURGE_QUEUE_URL", queue)
    monkeypatch.setenv("MAILROOM_DELETE_COOLDOWN_SECONDS", "0")
    get_settings.cache_clear()
    domain = add_domain(org, "example.com")
    add_domain(other_org, "globex.com")
    mailbox = new_mailbox(org, "alice")
    alias = ok(
        post(
            "aliases",
            org.admin_token,
            "/api/v1/aliases",
            {"address": "team@example.com", "goto": ["alice@example.com"]},
        ),
        201,
    )
    token = ok(
        post(
            "mailboxes",
            org.admin_token,
            f"/api/v1/mailboxes/{mailbox['id']}/message-tokens",
            {"name": "agent", "scopes": ["messages:read"]},
        ),
        201,
    )
    invite = ok(
        post(
            "mailboxes",
            org.admin_token,
            "/api/v1/mailboxes/invites",
            {"local_part": "bob", "domain": "example.com"},
        ),
        201,
    )
    intent = ok(post("mailboxes", org.admin_token, f"/api/v1/mailboxes/{mailbox['id']}:delete-intent"), 201)
    yield {
        "domain": domain,
        "mailbox": mailbox,
        "alias": alias,
        "token": token,
        "invite": invite,
        "intent": intent,
    }
    get_settings.cache_clear()


def endpoints(world: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    mbx, als = world["mailbox"]["id"], world["alias"]["id"]
    return [
        ("mailboxes", "GET", f"/api/v1/mailboxes/{mbx}", None),
        ("mailboxes", "PATCH", f"/api/v1/mailboxes/{mbx}", {"name": "pwned"}),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{mbx}/password", {"password": "Pwned-Password-1"}),
        ("mailboxes", "PATCH", f"/api/v1/mailboxes/{mbx}/note", {"note": "pwned"}),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{mbx}:pause", None),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{mbx}:resume", None),
        ("mailboxes", "GET", f"/api/v1/mailboxes/{mbx}/forwarding", None),
        ("mailboxes", "PUT", f"/api/v1/mailboxes/{mbx}/forwarding", {"targets": ["thief@gmail.com"]}),
        (
            "mailboxes",
            "POST",
            f"/api/v1/mailboxes/{mbx}/message-tokens",
            {"name": "x", "scopes": ["messages:read"]},
        ),
        ("mailboxes", "GET", f"/api/v1/mailboxes/{mbx}/message-tokens", None),
        ("mailboxes", "POST", f"/api/v1/mailboxes/{mbx}:delete-intent", None),
        ("mailboxes", "GET", f"/api/v1/mailboxes/invites/{world['invite']['id']}", None),
        ("mailboxes", "GET", f"/api/v1/mailboxes?domain_id={world['domain']['id']}", None),
        ("aliases", "GET", f"/api/v1/aliases/{als}", None),
        ("aliases", "PATCH", f"/api/v1/aliases/{als}", {"goto": ["thief@gmail.com"]}),
        ("aliases", "DELETE", f"/api/v1/aliases/{als}", None),
        ("aliases", "GET", f"/api/v1/aliases?domain_id={world['domain']['id']}", None),
        ("message_tokens", "DELETE", f"/api/v1/message-tokens/{world['token']['id']}", None),
        ("delete_intents", "GET", f"/api/v1/delete-intents/{world['intent']['id']}", None),
        ("delete_intents", "POST", f"/api/v1/delete-intents/{world['intent']['id']}:confirm", None),
    ]


def request(token: str, function: str, method: str, target: str, body: Any) -> Any:
    path, _, query = target.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    return call(function, method, path, token=token, json_body=body, headers=key(), query=params)


def test_every_id_of_organization_a_is_404_for_organization_b(
    org: NewOrganization, other_org: NewOrganization, a_world: dict[str, Any]
) -> None:
    checked = 0
    for function, method, target, body in endpoints(a_world):
        response = request(other_org.admin_token, function, method, target, body)
        assert response.status == 404, (method, target, response.status, response.body[:300])
        assert response.error_code == "not_found", target
        # Exactly what an id that never existed gets.
        made_up = target
        for real_id in (
            a_world["mailbox"]["id"],
            a_world["alias"]["id"],
            a_world["token"]["id"],
            a_world["invite"]["id"],
            a_world["intent"]["id"],
            a_world["domain"]["id"],
        ):
            made_up = made_up.replace(real_id, real_id[:4] + "01J0000000000000000000000")
        unknown = request(org.admin_token, function, method, made_up, body)
        assert (unknown.status, unknown.error_code) == (404, "not_found"), made_up
        assert unknown.json()["error"]["message"] == response.json()["error"]["message"]
        checked += 1
    assert checked == 20

    # Nothing of A changed.
    mailbox = ok(get("mailboxes", org.admin_token, f"/api/v1/mailboxes/{a_world['mailbox']['id']}"))
    assert (mailbox["name"], mailbox["note"], mailbox["paused"]) == (None, None, False)
    assert mailbox["forwarding"]["targets"] == [] and mailbox["message_token_count"] == 1
    alias = ok(get("aliases", org.admin_token, f"/api/v1/aliases/{a_world['alias']['id']}"))
    assert alias["goto"] == ["alice@example.com"]
    assert get("message_tokens", a_world["token"]["token"], "/api/v1/messages/_ping").status == 200
    intent = ok(get("delete_intents", org.admin_token, f"/api/v1/delete-intents/{a_world['intent']['id']}"))
    assert intent["status"] == "pending"
    signed_in = call(
        "mailbox_auth",
        "POST",
        "/api/v1/auth/mailbox-token",
        json_body={"address": "alice@example.com", "password": PASSWORD},
        public=True,
    )
    assert signed_in.status == 201  # the password was not changed


def test_lists_only_show_the_callers_organization(
    org: NewOrganization, other_org: NewOrganization, a_world: dict[str, Any]
) -> None:
    new_mailbox(other_org, "alice", "globex.com")
    theirs = get("mailboxes", other_org.admin_token, "/api/v1/mailboxes").json()
    assert [m["address"] for m in theirs["data"]] == ["alice@globex.com"] and theirs["meta"]["total"] == 1
    assert get("aliases", other_org.admin_token, "/api/v1/aliases").json()["data"] == []
    ours = get("mailboxes", org.admin_token, "/api/v1/mailboxes").json()
    assert [m["address"] for m in ours["data"]] == ["alice@example.com"]


def test_an_address_of_organization_a_is_unknown_to_organization_b(
    org: NewOrganization, other_org: NewOrganization, a_world: dict[str, Any]
) -> None:
    response = post(
        "aliases",
        other_org.admin_token,
        "/api/v1/aliases",
        {"address": "x@globex.com", "goto": ["alice@example.com"]},
    )
    assert response.status == 201  # example.com is not B's domain: for B it is an external address
    mailbox = post(
        "mailboxes",
        other_org.admin_token,
        "/api/v1/mailboxes",
        {"local_part": "eve", "domain": "example.com", "password": PASSWORD},
    )
    assert mailbox.status == 422 and mailbox.error_code == "unknown_domain"


def test_openapi_lists_the_mailbox_endpoints() -> None:
    spec = call("openapi", "GET", "/api/openapi.json", public=True).json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/mailboxes", "get"),
        ("/api/v1/mailboxes", "post"),
        ("/api/v1/mailboxes:bulk", "post"),
        ("/api/v1/mailboxes/{mailbox_id}", "patch"),
        ("/api/v1/mailboxes/{mailbox_id}/password", "post"),
        ("/api/v1/mailboxes/{mailbox_id}/note", "patch"),
        ("/api/v1/mailboxes/{mailbox_id}:pause", "post"),
        ("/api/v1/mailboxes/{mailbox_id}:resume", "post"),
        ("/api/v1/mailboxes/{mailbox_id}/forwarding", "put"),
        ("/api/v1/mailboxes/invites", "post"),
        ("/api/v1/mailboxes/invites:bulk", "post"),
        ("/api/v1/mailboxes/{mailbox_id}/message-tokens", "post"),
        ("/api/v1/message-tokens/{token_id}", "delete"),
        ("/api/v1/messages/_ping", "get"),
        ("/api/v1/mailboxes/{mailbox_id}:delete-intent", "post"),
        ("/api/v1/delete-intents/{intent_id}:confirm", "post"),
        ("/api/v1/aliases", "post"),
        ("/api/v1/aliases/{alias_id}", "delete"),
    ]:
        assert method in paths.get(path, {}), (path, method)
        assert paths[path][method]["security"] == [{"bearer": []}]
    for public_path in ("/api/v1/auth/mailbox-token", "/api/v1/auth/invites:redeem"):
        assert paths[public_path]["post"]["security"] == []
