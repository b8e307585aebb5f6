"""The MCP server's plumbing that needs no stack: reading the API's error envelopes, where the
``/mcp`` function finds the API, how long a wait may block there, and the prompts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailroom.mcp_server.client import failure_of
from mailroom.mcp_server.resources import PROMPTS, prompt
from mailroom.mcp_server.transports import api_base_url, wait_budget


def answer(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_a_v1_error_keeps_its_code_message_hint_request_id_and_fields() -> None:
    failure = failure_of(
        answer(
            422,
            {
                "error": {
                    "code": "validation_error",
                    "message": "A field is not valid.",
                    "hint": "Fix the fields listed.",
                    "request_id": "req_1",
                    "retryable": False,
                    "fields": {"domain": "not a domain"},
                }
            },
        )
    )
    assert failure.as_dict() == {
        "status": 422,
        "code": "validation_error",
        "message": "A field is not valid.",
        "hint": "Fix the fields listed.",
        "request_id": "req_1",
        "retryable": False,
        "fields": {"domain": "not a domain"},
    }


def test_a_v0_error_and_the_gateway_s_own_are_read_too() -> None:
    v0 = failure_of(
        answer(404, {"name": "NotFoundError", "message": "Inbox not found"}, **{"x-request-id": "r"})
    )
    assert (v0.status, v0.code, v0.message, v0.request_id) == (404, "NotFoundError", "Inbox not found", "r")
    gateway = failure_of(answer(413, {"message": "Request Entity Too Large"}))
    assert (gateway.code, gateway.message) == ("http_error", "Request Entity Too Large")
    bare = failure_of(httpx.Response(502, text="<html>bad gateway</html>"))
    assert (bare.status, bare.code, bare.message) == (502, "http_error", "Bad Gateway")


def scope(domain: str | None, proto: str | None = None, host: str = "evil.example") -> dict[str, Any]:
    headers = [(b"host", host.encode())] + ([(b"x-forwarded-proto", proto.encode())] if proto else [])
    event = {"requestContext": {"domainName": domain}} if domain else {}
    return {"type": "http", "headers": headers, "aws.event": event}


def test_the_api_is_the_one_the_request_came_through_never_the_host_header() -> None:
    assert api_base_url(scope("abc.execute-api.eu-west-1.amazonaws.com", "https"), {}) == (
        "https://abc.execute-api.eu-west-1.amazonaws.com"
    )
    assert api_base_url(scope("127.0.0.1:8000", "http"), {}) == "http://127.0.0.1:8000"
    assert api_base_url(scope("api.example.com", "gopher"), {}) == "https://api.example.com"
    configured = {"MAILROOM_MCP_API_URL": "https://mail.example.com/"}
    assert api_base_url(scope("abc.example", "https"), configured) == "https://mail.example.com"
    with pytest.raises(LookupError):
        api_base_url(scope(None), {})


@dataclass
class Context:
    left_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms


def test_a_wait_over_http_ends_before_the_function_and_the_gateway_do() -> None:
    assert wait_budget({}) == 25.0
    assert wait_budget({"aws.context": Context(29_000)}) == 25.0
    assert wait_budget({"aws.context": Context(12_000)}) == 9.0
    assert wait_budget({"aws.context": Context(500)}) == 1.0


@pytest.mark.parametrize("name", [p.name for p in PROMPTS])
def test_prompts_name_the_tools_to_use_and_the_inbox(name: str) -> None:
    result = prompt(name, {"inbox_id": "inb_42"})
    text = result.messages[0].content.text  # type: ignore[union-attr]
    assert "inb_42" in text
    assert "get_thread_for_reply" in text or "list_inbox_messages" in text
