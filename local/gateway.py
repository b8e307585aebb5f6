"""API Gateway (HTTP API, payload format 2.0) in front of the in-process functions.

The ASGI app turns each request into the event API Gateway would send, runs the route's Lambda
REQUEST authorizer (with its result cache), invokes the routed function and turns its result into
the HTTP response, including API Gateway's own error answers:

* no route: 404 ``{"message":"Not Found"}``;
* body over API Gateway's 10 MB, or an event over Lambda's 6 MB synchronous payload limit (a
  base64-encoded binary body counts a third more than it weighs): 413
  ``{"message":"Request Entity Too Large"}``, without invoking anything;
* an identity source missing: 401 ``{"message":"Unauthorized"}`` without calling the authorizer;
* the authorizer says no: 403 ``{"message":"Forbidden"}``; it fails: 500;
* the function fails: 500 ``{"message":"Internal Server Error"}``; the integration times out (30 s): 503.

Every request is logged once, like an access log line of API Gateway: method, path, the function,
status, latency, the request id the client got (``apigw-requestid``) and the invoked function's
request id (``$context.integration.requestId``, the ``function_request_id`` of its log lines), and
why the integration failed when it did.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from local.authcache import AuthorizerCache, AuthorizerResult
from local.routing import Match, RouteTable
from local.runtime import FunctionError, FunctionTimeout, new_invocation_id
from local.stack import AuthorizerSpec, FunctionSpec, HttpApiSpec, HttpRoute
from local.template import ACCOUNT_ID

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# Lambda's synchronous invocation payload limit: the error names it ("Request must be smaller than
# 6291456 bytes for the InvokeFunction operation"). It applies to the whole event, not just the body.
MAX_EVENT_BYTES = 6 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 30
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml")
_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, list[tuple[str, str]], bytes]


class Invoker(Protocol):
    def spec(self, ref: str) -> FunctionSpec: ...

    async def invoke_async(
        self, ref: str, event: Any, *, wait_at_most: float | None = None, request_id: str | None = None
    ) -> Any: ...


@dataclass(slots=True)
class Outcome:
    """One request's answer and what the access log line says about it."""

    response: Response
    target: str | None = None  # the function or authorizer that answered, if any
    integration_request_id: str | None = None  # that invocation's aws_request_id
    integration_error: str | None = None


def _error(status: int, message: str) -> Response:
    return status, [("content-type", "application/json")], json.dumps({"message": message}).encode()


def _too_large() -> Response:
    return _error(413, "Request Entity Too Large")


def event_size(event: Mapping[str, Any]) -> int:
    """Bytes of the event as sent to Lambda (compact JSON, UTF-8)."""
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def new_request_id() -> str:
    """Shaped like API Gateway's request ids (``apigw-requestid``)."""
    return base64.b64encode(os.urandom(10)).decode()


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text (anything else arrives base64-encoded)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def request_headers(raw: Sequence[tuple[bytes, bytes]]) -> tuple[dict[str, str], list[str]]:
    """Lower-cased headers, duplicates comma-joined, and the cookies API Gateway moves out of them."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers, cookies


def query_parameters(raw_query: str) -> dict[str, str]:
    """``a=1&a=2&b=`` → ``{"a": "1,2", "b": ""}`` (repeated names are comma-joined)."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def http_event(
    *,
    match: Match,
    method: str,
    path: str,
    raw_query: str,
    raw_headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    source_ip: str,
    protocol: str,
    api_id: str,
    request_id: str,
    account_id: str = ACCOUNT_ID,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload-format-2.0 event of one request."""
    now = now or datetime.now(UTC)
    headers, cookies = request_headers(raw_headers)
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": match.route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    params = query_parameters(raw_query)
    if params:
        event["queryStringParameters"] = params
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if body:
        text: str | None = None
        if is_text(headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = text
    return event


def authorizer_event(event: Mapping[str, Any], identity: list[str], route_arn: str) -> dict[str, Any]:
    """The REQUEST authorizer event (payload 2.0) for a request event."""
    copied = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
    return {**copied, "type": "REQUEST", "routeArn": route_arn, "identitySource": identity}


def lambda_response(result: Any) -> Response:
    """A function's result as API Gateway turns it into an HTTP response (format 2.0 rules)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return 200, [("content-type", "application/json")], body.encode()
    status = int(result["statusCode"])
    multi = {k.lower(): v for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers = [
        (k.lower(), str(v)) for k, v in (result.get("headers") or {}).items() if k.lower() not in multi
    ]
    headers += [(k, str(v)) for k, values in multi.items() for v in values]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
    headers = [(k, v) for k, v in headers if k not in _DROPPED_RESPONSE_HEADERS]
    text = str(result.get("body") or "")
    return status, headers, base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()


class Gateway:
    """The ASGI app. ``auth_ttl_override`` replaces every authorizer's ``ReauthorizeEvery``."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        apis: Mapping[str, HttpApiSpec],
        runtime: Invoker,
        *,
        region: str,
        account_id: str = ACCOUNT_ID,
        auth_ttl_override: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = RouteTable(routes)
        self._apis = dict(apis)
        self._runtime = runtime
        self._region = region
        self._account_id = account_id
        self._caches: dict[tuple[str, str], AuthorizerCache] = {}
        for api in self._apis.values():
            for name, spec in api.authorizers.items():
                ttl = spec.ttl_seconds if auth_ttl_override is None else auth_ttl_override
                self._caches[(api.logical_id, name)] = AuthorizerCache(ttl, clock=clock)
                if spec.payload_version != "2.0":
                    log.warning(
                        "authorizer %s uses payload %s; the local gateway sends 2.0 events",
                        name,
                        spec.payload_version,
                    )

    def cache_ttl(self, api: str, authorizer: str) -> float:
        return self._caches[(api, authorizer)].ttl_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = new_request_id()
        try:
            outcome = await self._handle(scope, receive, request_id)
        except Exception:
            log.exception(
                "the local gateway failed on %s %s (requestId %s)", scope["method"], scope["path"], request_id
            )
            outcome = Outcome(_error(500, "Internal Server Error"))
        status, headers, body = outcome.response
        headers = [*headers, ("content-length", str(len(body))), ("apigw-requestid", request_id)]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
        log.log(
            logging.WARNING if outcome.integration_error else logging.INFO,
            "%s %s -> %s %d (%.0f ms) requestId=%s integrationRequestId=%s%s",
            scope["method"],
            scope["path"],
            outcome.target or "-",
            status,
            (time.perf_counter() - started) * 1000,
            request_id,
            outcome.integration_request_id or "-",
            f" integrationError={outcome.integration_error}" if outcome.integration_error else "",
        )

    async def _handle(self, scope: Scope, receive: Receive, request_id: str) -> Outcome:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        body = await _read_body(scope, receive)
        if body is None:
            return Outcome(_too_large())
        match = self.table.match(scope["method"], raw_path)
        if match is None:
            return Outcome(_error(404, "Not Found"))
        route = match.route
        api = self._apis[route.api]
        client = scope.get("client") or ("127.0.0.1", 0)
        event = http_event(
            match=match,
            method=scope["method"],
            path=scope["path"],
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            raw_headers=scope["headers"],
            body=body,
            source_ip=client[0],
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
            api_id=api.api_id,
            request_id=request_id,
            account_id=self._account_id,
        )
        _add_forwarding_headers(event["headers"], scope, client[0])
        if route.authorizer is not None:
            denied = await self._authorize(api, api.authorizers[route.authorizer], event)
            if denied is not None:
                denied.target = f"authorizer {route.authorizer}"
                return denied
        # Lambda refuses the invocation (API Gateway answers 413): the function never runs.
        if event_size(event) > MAX_EVENT_BYTES:
            return Outcome(_too_large(), target=route.function)
        return await self._invoke(route, event)

    async def _authorize(
        self, api: HttpApiSpec, spec: AuthorizerSpec, event: dict[str, Any]
    ) -> Outcome | None:
        """None when the request may go on (the authorizer context is then in the event)."""
        identity = [event["headers"].get(h.lower(), "") for h in spec.identity_headers]
        params = event.get("queryStringParameters") or {}
        identity += [params.get(q, "") for q in spec.identity_query_strings]
        if any(value == "" for value in identity):
            return Outcome(_error(401, "Unauthorized"))
        cache = self._caches[(api.logical_id, spec.name)]
        key = tuple(identity)
        result = cache.get(key) if identity else None
        if result is None:
            method, path = event["requestContext"]["http"]["method"], event["rawPath"]
            route_arn = (
                f"arn:aws:execute-api:{self._region}:{self._account_id}:{api.api_id}/$default/{method}{path}"
            )
            invocation = new_invocation_id()
            try:
                answer = await self._runtime.invoke_async(
                    spec.function_arn, authorizer_event(event, identity, route_arn), request_id=invocation
                )
                result = _authorizer_result(answer, simple=spec.simple_responses)
            except (FunctionError, ValueError, TypeError, KeyError) as exc:
                return Outcome(
                    _error(500, "Internal Server Error"),
                    integration_request_id=invocation,
                    integration_error=f"authorizer {spec.name} failed: {exc}",
                )
            if identity:
                cache.put(key, result)
        if not result.authorized:
            return Outcome(_error(403, "Forbidden"))
        event["requestContext"]["authorizer"] = {"lambda": result.context or {}}
        return None

    async def _invoke(self, route: HttpRoute, event: dict[str, Any]) -> Outcome:
        invocation = new_invocation_id()

        def failed(status: int, message: str, error: str) -> Outcome:
            return Outcome(_error(status, message), route.function, invocation, error)

        try:
            result = await self._runtime.invoke_async(
                route.function, event, wait_at_most=INTEGRATION_TIMEOUT_SECONDS, request_id=invocation
            )
        except FunctionTimeout as exc:
            if self._runtime.spec(route.function).timeout >= INTEGRATION_TIMEOUT_SECONDS:
                return failed(503, "Service Unavailable", f"integration timed out: {exc.message}")
            return failed(500, "Internal Server Error", f"{exc.error_type}: {exc.message}")
        except FunctionError as exc:
            return failed(500, "Internal Server Error", f"{exc.error_type}: {exc.message}")
        try:
            return Outcome(lambda_response(result), route.function, invocation)
        except (ValueError, TypeError, binascii.Error) as exc:
            return failed(500, "Internal Server Error", f"a response API Gateway cannot use: {exc}")


def _authorizer_result(answer: Any, *, simple: bool) -> AuthorizerResult:
    if not isinstance(answer, dict):
        raise TypeError(f"authorizer response is not an object: {answer!r}")
    if simple and "isAuthorized" in answer:
        if not isinstance(answer["isAuthorized"], bool):
            raise TypeError("isAuthorized must be a boolean")
        return AuthorizerResult(answer["isAuthorized"], answer.get("context"))
    statements = (answer.get("policyDocument") or {}).get("Statement") or []
    effects = {str(s.get("Effect")) for s in statements if isinstance(s, dict)}
    if not effects:
        raise ValueError("authorizer response has neither isAuthorized nor a policyDocument")
    return AuthorizerResult("Allow" in effects and "Deny" not in effects, answer.get("context"))


def _add_forwarding_headers(headers: dict[str, str], scope: Scope, source_ip: str) -> None:
    """The headers API Gateway adds on the way to the integration."""
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    server = scope.get("server") or ("127.0.0.1", 80)
    headers["x-forwarded-port"] = str(server[1])
    headers["x-forwarded-proto"] = scope.get("scheme", "http")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}")


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The request body, or None when it exceeds API Gateway's 10 MB payload limit."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class HttpServer:
    """uvicorn serving an ASGI app on loopback from a background thread (the API gateway; with
    ``ws`` set, the WebSocket API too)."""

    def __init__(
        self,
        app: Any,
        *,
        port: int,
        host: str = "127.0.0.1",
        name: str = "api-gateway",
        what: str = "the API gateway",
        ws: str = "auto",
    ) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ws=ws,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._what = what
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._what} did not start (is the port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._what} did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
