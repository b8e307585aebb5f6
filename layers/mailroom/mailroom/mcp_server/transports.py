"""The two ways to reach the server: stdio (``mailroom mcp``, one token for the process) and
streamable HTTP (the ``/mcp`` Lambda function: stateless, JSON responses, the caller's own token
per request).

Over HTTP nothing outlives a request: each one builds the server for the bearer token it carries
(checked by the API itself: a bad one is 401 before any MCP processing), runs the SDK's stateless
session manager for that one request, and lets it go. That is what lets it run on Lambda, where
no two requests need meet the same execution environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

from mailroom.mcp_server.agent_tools import HTTP_MAX_WAIT_SECONDS, STDIO_MAX_WAIT_SECONDS
from mailroom.mcp_server.client import ApiClient, ApiFailure
from mailroom.mcp_server.gates import Flags
from mailroom.mcp_server.server import MailroomMcp

API_URL_ENV = "MAILROOM_MCP_API_URL"
WAIT_MARGIN_SECONDS = 3.0  # for the last poll, fetching the message and answering


async def serve_stdio(url: str, token: str, flags: Flags) -> None:
    """Serve one client over stdin/stdout until it hangs up. The token and URL are checked first,
    so a misconfigured server fails at once with the API's reason instead of on the first call."""
    async with ApiClient(url, token) as api:
        mailroom = MailroomMcp(api, flags, max_wait=STDIO_MAX_WAIT_SECONDS)
        await mailroom.catalog()
        server = mailroom.server()
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])
    }


def api_base_url(scope: Scope, environ: Mapping[str, str]) -> str:
    """Where the API is: the configured URL, else the API this request came through. On API Gateway
    the host is ``requestContext.domainName`` (set by the gateway, not by the caller's Host header),
    so a caller cannot point the function's requests elsewhere."""
    configured = environ.get(API_URL_ENV, "").strip()
    if configured:
        return configured.rstrip("/")
    event = scope.get("aws.event") or {}
    domain = str((event.get("requestContext") or {}).get("domainName") or "")
    if not domain:
        raise LookupError(f"no API URL: set {API_URL_ENV}")
    proto = _headers(scope).get("x-forwarded-proto", "https")
    return f"{'http' if proto == 'http' else 'https'}://{domain}"


def wait_budget(scope: Scope) -> float:
    """How long ``wait_for_message`` may block in this request: 25 s at most, and less when the
    function has less time left (a cold start spent some of it), so the answer always gets back."""
    remaining = getattr(scope.get("aws.context"), "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return HTTP_MAX_WAIT_SECONDS
    left = float(remaining()) / 1000 - WAIT_MARGIN_SECONDS
    return max(1.0, min(HTTP_MAX_WAIT_SECONDS, left))


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> None:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class StreamableHttpApp:
    """The ASGI app of ``/mcp``: one stateless streamable-HTTP exchange per request."""

    def __init__(self, flags: Flags, environ: Mapping[str, str]) -> None:
        self.flags = flags
        self.environ = environ

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        authorization = _headers(scope).get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await _answer(
                send,
                401,
                _envelope(
                    "unauthenticated",
                    "No API token: the request has no Authorization header.",
                    "Send 'Authorization: Bearer <token>': an ops token, message token or API key.",
                ),
                {"www-authenticate": 'Bearer realm="mailroom"'},
            )
            return
        async with ApiClient(api_base_url(scope, self.environ), token.strip()) as api:
            mailroom = MailroomMcp(api, self.flags, max_wait=wait_budget(scope))
            try:
                await mailroom.catalog()
            except ApiFailure as failure:
                extra = {"www-authenticate": 'Bearer realm="mailroom"'} if failure.status == 401 else {}
                await _answer(send, failure.status, {"error": failure.as_dict()}, extra)
                return
            manager = StreamableHTTPSessionManager(mailroom.server(), json_response=True, stateless=True)
            async with manager.run():
                await manager.handle_request(scope, receive, send)


def _envelope(code: str, message: str, hint: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint, "retryable": False}}
