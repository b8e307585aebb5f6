"""A token's claims → principal contract, and error envelopes on both surfaces."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from mailroom.api.errors import ApiError, render
from mailroom.api.principal import from_claims
from mailroom.domain.tokens import TokenType
from mailroom.errors import UpstreamFailed

CONTEXT = {
    "org_id": "org_1",
    "token_id": "tok_1",
    "token_type": "ops",
    "token_name": "ci",
    "scopes": "account:read tokens:manage",
    "mailbox_id": "",
    "rate_limit": 0,
    "expires_at_epoch": 0,
}


def request_for(path: str) -> Request:
    request = Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""})
    request.state.request_id = "req_1"
    return request


def test_context_becomes_a_principal() -> None:
    principal = from_claims(CONTEXT)
    assert principal.token_type is TokenType.OPS
    assert principal.scopes == {"account:read", "tokens:manage"}
    assert principal.mailbox_id is None and principal.rate_limit is None


@pytest.mark.parametrize(
    "context",
    [
        None,
        {},
        {"denied": "unknown"},
        {**CONTEXT, "expires_at_epoch": 1},
        {**CONTEXT, "token_type": "root"},
        {k: v for k, v in CONTEXT.items() if k != "org_id"},
    ],
)
def test_unusable_contexts_are_unauthenticated(context: dict[str, object] | None) -> None:
    with pytest.raises(ApiError) as raised:
        from_claims(context)
    assert raised.value.status == 401 and raised.value.code == "unauthenticated"


def test_v1_envelope() -> None:
    response = render(request_for("/api/v1/x"), ApiError(409, "conflict", "taken", hint="h", retryable=False))
    assert response.status_code == 409
    assert json.loads(response.body) == {
        "error": {
            "code": "conflict",
            "message": "taken",
            "hint": "h",
            "request_id": "req_1",
            "retryable": False,
        }
    }


def test_v0_envelope() -> None:
    response = render(request_for("/api/v0/inboxes"), ApiError(404, "not_found", "Inbox not found"))
    assert json.loads(response.body) == {"name": "NotFoundError", "message": "Inbox not found"}


def test_v0_names_an_upstream_failure() -> None:
    failure = UpstreamFailed("ses_unavailable", "SES could not be reached; nothing was sent.", retryable=True)
    response = render(request_for("/api/v0/inboxes/mbx_1/messages/send"), failure)
    assert response.status_code == 502
    assert json.loads(response.body) == {
        "name": "BadGatewayError",
        "message": "SES could not be reached; nothing was sent.",
    }
