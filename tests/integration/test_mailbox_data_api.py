"""Mailbox data through the API (``/api/v1/mailbox/{mailboxId}/data/``, Lambda events under moto):
documents created, replaced, merge-patched, listed with their sizes and deleted; the limits and the
key counters; who may read and write; both spellings of each path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.domain import mailbox_data as model
from mailroom.services.organizations import NewOrganization
from mailroom.store import keys
from mailroom.store.table import Table
from tests.support.lambda_api import LambdaContext, function_module, http_event
from tests.support.mailboxes import add_domain, delete, get, new_mailbox, ok, patch, post, put
from tests.support.sending import message_token

FUNCTION = "mailbox_data"


@pytest.fixture
def inbox(org: NewOrganization) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "inbox")


def path(mailbox: dict[str, Any], key: str | None = None) -> str:
    base = f"/api/v1/mailbox/{mailbox['id']}/data/"
    return base if key is None else f"{base}{key}/"


def counters(table: Table, org: NewOrganization, mailbox: dict[str, Any]) -> tuple[int, int]:
    item = table.get(keys.mailbox_pk(str(org.organization["id"]), mailbox["id"]), keys.MAILBOX_DATA_META_SK)
    return (int(item["keys"]), int(item["bytes"])) if item else (0, 0)


def test_documents_are_created_replaced_patched_listed_and_deleted(
    org: NewOrganization, table: Table, inbox: dict[str, Any]
) -> None:
    token = org.admin_token
    created = ok(put(FUNCTION, token, path(inbox, "vip"), {"value": ["boss@example.net"]}))
    assert created["key"] == "vip" and created["version"] == 1 and "value" not in created
    assert created["bytes"] == len(b'["boss@example.net"]')
    assert ok(get(FUNCTION, token, path(inbox, "vip")))["value"] == ["boss@example.net"]
    ok(put(FUNCTION, token, path(inbox, "settings"), {"value": {"mode": "work", "note": "  spaced  "}}))
    ok(put(FUNCTION, token, path(inbox, "a.first"), {"value": 1}))

    patched = ok(
        patch(FUNCTION, token, path(inbox, "settings"), {"value": {"mode": "holiday", "note": None}})
    )
    assert patched["version"] == 2
    assert ok(get(FUNCTION, token, path(inbox, "settings")))["value"] == {"mode": "holiday"}
    fresh = ok(patch(FUNCTION, token, path(inbox, "new"), {"value": {"a": {"b": 1}}}))
    assert fresh["version"] == 1
    assert ok(get(FUNCTION, token, path(inbox, "new")))["value"] == {"a": {"b": 1}}
    replaced = ok(put(FUNCTION, token, path(inbox, "vip"), {"value": "  kept as sent  "}))
    assert replaced["version"] == 2
    assert ok(get(FUNCTION, token, path(inbox, "vip")))["value"] == "  kept as sent  "

    first = get(FUNCTION, token, path(inbox), per_page=2)
    body = first.json()
    assert [d["key"] for d in body["data"]] == ["a.first", "new"] and body["meta"]["total"] == 4
    second = get(
        FUNCTION,
        token,
        path(inbox),
        per_page=2,
        cursor=body["links"]["next"].split("cursor=")[1].split("&")[0],
    )
    assert [d["key"] for d in ok(second)] == ["settings", "vip"]
    assert set(ok(second)[0]) == {"key", "bytes", "version", "updated_at"}  # no values in the list

    sizes = {d["key"]: d["bytes"] for d in [*body["data"], *ok(second)]}
    assert counters(table, org, inbox) == (4, sum(sizes.values()))
    assert delete(FUNCTION, token, path(inbox, "new")).status == 204
    assert get(FUNCTION, token, path(inbox, "new")).error_code == "not_found"
    assert delete(FUNCTION, token, path(inbox, "new")).error_code == "not_found"
    assert counters(table, org, inbox) == (3, sum(sizes.values()) - sizes["new"])


def test_limits_and_invalid_input(org: NewOrganization, table: Table, inbox: dict[str, Any]) -> None:
    token = org.admin_token
    too_large = put(FUNCTION, token, path(inbox, "big"), {"value": "x" * model.MAX_DOCUMENT_BYTES})
    assert (too_large.status, too_large.error_code) == (422, "document_too_large")
    largest = ok(put(FUNCTION, token, path(inbox, "big"), {"value": "x" * (model.MAX_DOCUMENT_BYTES - 2)}))
    assert largest["bytes"] == model.MAX_DOCUMENT_BYTES
    deep: Any = 1
    for _ in range(model.MAX_DEPTH + 1):
        deep = {"d": deep}
    assert put(FUNCTION, token, path(inbox, "deep"), {"value": deep}).error_code == "document_too_deep"
    assert patch(FUNCTION, token, path(inbox, "deep"), {"value": deep}).error_code == "document_too_deep"
    very_deep: Any = 1
    for _ in range(900):  # deeper than Python's recursion would go through a naive merge
        very_deep = {"d": very_deep}
    assert patch(FUNCTION, token, path(inbox, "deep"), {"value": very_deep}).status == 422
    assert put(FUNCTION, token, path(inbox, "bad key!"), {"value": 1}).status == 422
    assert put(FUNCTION, token, path(inbox, "x" * 129), {"value": 1}).status == 422
    assert put(FUNCTION, token, path(inbox, "k"), {"value": 1, "extra": 2}).status == 422
    assert put(FUNCTION, token, path(inbox, "k"), {}).status == 422

    # At the key limit: a new key is refused, an existing one still changes.
    table.update(
        keys.mailbox_pk(str(org.organization["id"]), inbox["id"]),
        keys.MAILBOX_DATA_META_SK,
        "SET #k = :max",
        names={"#k": "keys"},
        expression_values={":max": {"N": str(model.MAX_KEYS)}},
    )
    full = put(FUNCTION, token, path(inbox, "one-more"), {"value": 1})
    assert (full.status, full.error_code) == (422, "data_key_limit_reached")
    assert ok(put(FUNCTION, token, path(inbox, "big"), {"value": "small now"}))["version"] == 2


def test_who_may_read_and_write(
    org: NewOrganization, other_org: NewOrganization, inbox: dict[str, Any]
) -> None:
    ok(put(FUNCTION, org.admin_token, path(inbox, "k"), {"value": 1}))
    other = new_mailbox(org, "other")
    own = message_token(org, inbox["id"], ["messages:read", "messages:write"])
    reader = message_token(org, inbox["id"], ["messages:read"])
    assert ok(get(FUNCTION, own, path(inbox, "k")))["value"] == 1
    assert ok(put(FUNCTION, own, path(inbox, "k"), {"value": 2}))["version"] == 2
    assert ok(get(FUNCTION, reader, path(inbox)))[0]["key"] == "k"
    assert put(FUNCTION, reader, path(inbox, "k"), {"value": 3}).error_code == "insufficient_scope"
    # Another mailbox, with a message token: as if it did not exist.
    assert get(FUNCTION, own, path(other)).error_code == "not_found"
    assert put(FUNCTION, own, path(other, "k"), {"value": 1}).error_code == "not_found"
    # An ops token needs the automation scopes.
    limited = ok(
        post("tokens", org.admin_token, "/api/v1/tokens", {"name": "r", "scopes": ["automation:read"]}), 201
    )
    assert ok(get(FUNCTION, limited["token"], path(inbox, "k")))["value"] == 2
    assert put(FUNCTION, limited["token"], path(inbox, "k"), {"value": 9}).error_code == "insufficient_scope"
    # Another organization: its admin sees nothing, and unknown mailboxes look the same.
    assert get(FUNCTION, other_org.admin_token, path(inbox, "k")).error_code == "not_found"
    assert get(FUNCTION, other_org.admin_token, path(inbox)).error_code == "not_found"
    assert delete(FUNCTION, other_org.admin_token, path(inbox, "k")).error_code == "not_found"
    assert ok(get(FUNCTION, org.admin_token, path(inbox, "k")))["value"] == 2


def test_each_path_answers_without_its_trailing_slash(org: NewOrganization, inbox: dict[str, Any]) -> None:
    handler = function_module(FUNCTION).handler

    def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
        encoded = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json", "idempotency-key": f"slash-{method}-{url}"}
        event = http_event(method, url, token=org.admin_token, headers=headers, body=encoded)
        response = handler(event, LambdaContext(function_name=FUNCTION))
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    base = f"/api/v1/mailbox/{inbox['id']}/data"
    assert call("PUT", f"{base}/k", {"value": [1]})[0] == 200
    assert call("GET", f"{base}/k")[1]["data"]["value"] == [1]
    assert call("GET", base)[1]["data"][0]["key"] == "k"
    assert call("GET", f"{base}/")[1]["data"][0]["key"] == "k"
    assert call("DELETE", f"{base}/k")[0] == 204


def test_the_list_pages_through_documents_larger_than_a_query_reads(
    org: NewOrganization, inbox: dict[str, Any]
) -> None:
    """Four documents near the size limit are more than a Query's 1 MB: a page may hold fewer than
    asked, but it links to the rest, and every key is listed once."""
    big = "x" * (model.MAX_DOCUMENT_BYTES - 1_000)
    for key in ("d1", "d2", "d3", "d4"):
        ok(put(FUNCTION, org.admin_token, path(inbox, key), {"value": big}))
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(5):
        query: dict[str, Any] = {"per_page": 10, **({"cursor": cursor} if cursor else {})}
        page = get(FUNCTION, org.admin_token, path(inbox), **query).json()
        listed += page["data"]
        if page["links"]["next"] is None:
            break
        cursor = page["links"]["next"].split("cursor=")[1].split("&")[0]
    assert [d["key"] for d in listed] == ["d1", "d2", "d3", "d4"]
    assert {d["bytes"] for d in listed} == {len(big) + 2}
