"""The MCP server's view of the API: an HTTP client holding the caller's token, the document, and
who the token is.

The server is a client of the API like any other: it calls the same HTTPS endpoints with the token
it was given, so the API's own checks (scopes, tenancy, rate limits, idempotency, audit) apply to
every tool call unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

MESSAGE_TOKEN_PREFIX = "mr_msg_"  # noqa: S105 - a prefix, not a secret
DOCUMENT_PATH = "/api/openapi.json"
DOCUMENT_TTL_SECONDS = 300.0  # the openapi function's own Cache-Control max-age
REQUEST_TIMEOUT_SECONDS = 30.0
USER_AGENT = "mailroom-mcp"


class ApiFailure(Exception):
    """The API answered with an error (or could not be reached): its code, message and hint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.request_id = request_id
        self.details = dict(details or {})

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.hint:
            error["hint"] = self.hint
        if self.request_id:
            error["request_id"] = self.request_id
        error.update({k: v for k, v in self.details.items() if k not in error})
        return error


def failure_of(response: httpx.Response) -> ApiFailure:
    """The error a non-2xx answer carries: v1's envelope, v0's ``{name, message}``, or the gateway's."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    request_id = response.headers.get("x-request-id")
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        extra = {k: v for k, v in error.items() if k not in ("code", "message", "hint", "request_id")}
        return ApiFailure(
            response.status_code,
            str(error.get("code") or "error"),
            str(error.get("message") or response.reason_phrase),
            hint=error.get("hint"),
            request_id=error.get("request_id") or request_id,
            details=extra,
        )
    if isinstance(payload, dict) and "name" in payload:  # /api/v0
        return ApiFailure(
            response.status_code,
            str(payload["name"]),
            str(payload.get("message") or response.reason_phrase),
            request_id=request_id,
        )
    message = payload.get("message") if isinstance(payload, dict) else None
    return ApiFailure(
        response.status_code, "http_error", str(message or response.reason_phrase), request_id=request_id
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the token is: ``ops``, ``api_key`` or ``message`` (bound to ``mailbox_id``), its scopes."""

    kind: str  # ops, api_key or message
    scopes: frozenset[str]
    mailbox_id: str | None = None
    mailbox_address: str | None = None

    def may_call(self, access: Mapping[str, list[str]] | None) -> bool:
        """Whether the token may call an operation of this ``x-mailroom-scopes`` (None: public)."""
        if access is None:
            return True
        kinds = [self.kind]
        if self.kind == "api_key":
            kinds.append("ops")  # an API key is accepted wherever an ops token is
        return any(kind in access and set(access[kind]) <= self.scopes for kind in kinds)


@dataclass(slots=True)
class _CachedDocument:
    document: dict[str, Any]
    fetched_at: float


_DOCUMENTS: dict[str, _CachedDocument] = {}


@dataclass(slots=True)
class ApiClient:
    base_url: str
    token: str
    transport: httpx.AsyncBaseTransport | None = None
    _http: httpx.AsyncClient | None = field(default=None, init=False)

    async def __aenter__(self) -> ApiClient:
        self._http = httpx.AsyncClient(
            base_url=self.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT},
            timeout=REQUEST_TIMEOUT_SECONDS,
            # Large raw messages and attachments answer with a redirect to a pre-signed URL; httpx
            # drops the Authorization header when a redirect leaves the API's origin.
            follow_redirects=True,
            transport=self.transport,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("ApiClient used outside `async with`")
        return self._http

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        has_body: bool = False,
    ) -> httpx.Response:
        """One request; raises ``ApiFailure`` for an error answer or an unreachable API."""
        try:
            response = await self.http.request(
                method,
                path,
                params={k: _query_value(v) for k, v in (params or {}).items() if v is not None},
                content=json.dumps(body).encode() if has_body else None,
                headers={**({"Content-Type": "application/json"} if has_body else {}), **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise ApiFailure(
                503,
                "api_unreachable",
                f"Could not reach the Mailroom API at {self.base_url}: {exc}",
                hint="Check MAILROOM_URL and that the API is up; the call can be retried as is.",
            ) from exc
        if response.status_code >= 400:
            raise failure_of(response)
        return response

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.send("GET", path, params=params)).json()

    async def document(self) -> dict[str, Any]:
        """The running API's OpenAPI document (public; cached per process for its max-age)."""
        cached = _DOCUMENTS.get(self.base_url)
        if cached is not None and time.monotonic() - cached.fetched_at < DOCUMENT_TTL_SECONDS:
            return cached.document
        try:
            response = await self.http.get(DOCUMENT_PATH)
        except httpx.HTTPError as exc:
            raise ApiFailure(503, "api_unreachable", f"Could not reach {self.base_url}: {exc}") from exc
        if response.status_code != 200:
            raise failure_of(response)
        document: dict[str, Any] = response.json()
        _DOCUMENTS[self.base_url] = _CachedDocument(document, time.monotonic())
        return document

    async def identity(self) -> Identity:
        """Who the token is, from the API itself (a bad token fails here with 401)."""
        if self.token.startswith(MESSAGE_TOKEN_PREFIX):
            ping = (await self.get_json("/api/v1/messages/_ping"))["data"]
            return Identity(
                "message",
                frozenset(ping["token"]["scopes"]),
                mailbox_id=ping["mailbox"]["id"],
                mailbox_address=ping["mailbox"]["address"],
            )
        me = (await self.get_json("/api/v1/me"))["data"]
        return Identity(str(me["type"]), frozenset(me["scopes"]))


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
