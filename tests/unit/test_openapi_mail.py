"""The OpenAPI document of the mail routes (messages, threads, sending, webhooks) says precisely
what they take and answer: client generators and the MCP server are built from it, so a free-form
success body, an undocumented status or a binary body declared as JSON is a bug here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailroom.api.openapi import document

MAIL_TAGS = {"messages", "threads", "sending", "webhooks"}


def _spec() -> dict[str, Any]:
    return json.loads(json.dumps(document()))  # type: ignore[no-any-return]


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in _spec()["paths"].items()
        for method, operation in item.items()
        if MAIL_TAGS & set(operation.get("tags", []))
    ]


def _schema(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


def test_every_mail_operation_is_described_for_a_client_and_a_model() -> None:
    operations = _operations()
    assert len(operations) == 36
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert len(operation.get("description", "")) > 40, where
        assert operation["security"] == [{"bearer": []}], where


def test_every_json_success_has_a_named_schema() -> None:
    spec = _spec()
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            if not 200 <= int(status) < 300:
                continue
            content = response.get("content", {})
            if "application/json" not in content:
                assert status == "204" or path.endswith(("/raw", "/{index}")), f"{method} {path} {status}"
                continue
            schema = content["application/json"]["schema"]
            assert "$ref" in schema, f"{method.upper()} {path} {status}: free-form {schema}"
            assert _schema(spec, schema["$ref"])["properties"], f"{method.upper()} {path} {status}"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/api/v1/messages/{message_id}/raw", "message/rfc822"),
        ("/api/v1/messages/{message_id}/attachments/{index}", "*/*"),
    ],
)
def test_bytes_are_documented_as_bytes_with_the_redirect_for_large_ones(path: str, media_type: str) -> None:
    responses = _spec()["paths"][path]["get"]["responses"]
    assert responses["200"]["content"] == {media_type: {"schema": {"type": "string", "format": "binary"}}}
    assert responses["200"]["headers"]["Content-Disposition"]["required"] is True
    assert responses["302"]["headers"]["Location"]["required"] is True
    assert "content" not in responses["302"]


def test_bulk_documents_its_multi_status_and_the_message_delete_its_no_content() -> None:
    paths = _spec()["paths"]
    bulk = paths["/api/v1/messages:bulk"]["post"]["responses"]
    assert bulk["200"]["content"] == bulk["207"]["content"]
    assert bulk["207"]["content"]["application/json"]["schema"]["$ref"].endswith("/BulkResult")
    delete = paths["/api/v1/messages/{message_id}"]["delete"]["responses"]
    assert {"200", "204"} <= set(delete)


def test_own_error_statuses_carry_their_codes() -> None:
    paths = _spec()["paths"]
    create_folder = paths["/api/v1/messages/folders"]["post"]["responses"]
    assert "folder_exists" in create_folder["409"]["description"]
    assert "folder_limit_reached" in create_folder["422"]["description"]
    send = paths["/api/v1/messages/send"]["post"]["responses"]
    assert "mailbox_paused" in send["403"]["description"]
    assert "ses_unavailable" in send["502"]["description"]
    assert send["502"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert send["201"]["headers"]["Location"]["required"] is True
    retry = paths["/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}:retry"]["post"]["responses"]
    assert "event_expired" in retry["409"]["description"]


def test_request_schemas_state_the_enforced_rules() -> None:
    spec = _spec()
    listing = {p["name"]: p for p in spec["paths"]["/api/v1/messages"]["get"]["parameters"]}
    assert listing["thread"]["schema"]["anyOf"][0]["pattern"].startswith("^thr_")
    assert listing["since"]["schema"]["anyOf"][0]["format"] == "date-time"
    assert listing["per_page"]["schema"]["maximum"] == 100
    assert listing["cursor"]["schema"]["anyOf"][0]["maxLength"] == 2048
    bulk = _schema(spec, "BulkBody")
    assert bulk["properties"]["ids"]["maxItems"] == 100 and bulk["additionalProperties"] is False
    assert any(rule["then"]["required"] == ["folder"] for rule in bulk["allOf"])
    assert _schema(spec, "MessagePatch")["minProperties"] == 1
    create = _schema(spec, "WebhookCreate")
    assert "message.received" in create["properties"]["event_types"]["items"]["enum"]
    states = _schema(spec, "DeliveryView")["properties"]["state"]["enum"]
    assert states == ["pending", "succeeded", "failed"]


def test_folder_paths_with_slashes_match_their_operation() -> None:
    from tests.support.openapi_conformance import find

    for method in ("PATCH", "DELETE"):
        operation = find(method, "/api/v1/messages/folders/Projects/2026")
        assert operation is not None and operation.template == "/api/v1/messages/folders/{path}"
    assert find("POST", "/api/v1/messages/folders:empty").template == "/api/v1/messages/folders:empty"  # type: ignore[union-attr]
