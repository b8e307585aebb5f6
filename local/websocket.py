"""API Gateway's WebSocket API in front of the in-process functions, and its management API.

One loopback port (``MAILROOM_WS_PORT``, default 8001) plays both parts of a deployed WebSocket
API's stage, at the same paths:

* ``ws://127.0.0.1:<port>/<stage>``: the WebSocket endpoint (``wss://<api>.execute-api.<region>.
  amazonaws.com/<stage>`` when deployed). The handshake becomes a ``$connect`` event for the route's
  function: a 200 accepts it (with the ``Sec-WebSocket-Protocol`` the function answers), any other
  status refuses it with that status and body. Each text frame is routed by the API's
  ``RouteSelectionExpression`` (``$request.body.<field>``) to its route's function, or ``$default``;
  a route with a route response sends the function's ``body`` back as a frame. A closed connection
  becomes a ``$disconnect`` event.
* ``http://127.0.0.1:<port>/<stage>/@connections/<id>``: the management API
  (``apigatewaymanagementapi``, whose ``endpoint_url`` is the stage URL): ``POST`` sends the body to
  the connection as one frame, ``GET`` describes it, ``DELETE`` closes it; an unknown connection
  answers 410 ``GoneException``, as API Gateway does. Requests are not signature-checked.

Served by uvicorn with the ``websockets`` library's Sans-I/O protocol (the library clients use
too), from a background thread, like the HTTP API's gateway. Routes, integrations and stages are
read from ``template.yaml`` (``AWS::ApiGatewayV2::*``). Not emulated: API Gateway's two-hour
connection limit and ten-minute idle timeout, frame size limits, and authorizers (Mailroom's
functions authenticate).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from local.gateway import HttpServer
from local.runtime import FunctionError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
INTEGRATION_TIMEOUT_SECONDS = 29
_CONNECTIONS_PATH = re.compile(r"/@connections/(?P<id>[^/]+)")


class Invoker(Protocol):
    async def invoke_async(
        self, ref: str, event: Any, *, wait_at_most: float | None = None, request_id: str | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class WebSocketRoute:
    key: str  # $connect, $disconnect, $default or a value of the selection expression
    function: str  # the integration's function (ARN)
    two_way: bool  # has a route response: the function's body is sent back


@dataclass(frozen=True, slots=True)
class WebSocketApiSpec:
    logical_id: str
    api_id: str
    stage: str
    selection_field: str | None  # ``type`` for ``$request.body.type``
    routes: dict[str, WebSocketRoute]


def websocket_apis(template: Any) -> list[WebSocketApiSpec]:
    """The template's WebSocket APIs (``AWS::ApiGatewayV2::Api`` with ProtocolType WEBSOCKET), their
    routes' functions (through their AWS_PROXY integrations) and stage."""
    apis = []
    for logical_id in template.of_type("AWS::ApiGatewayV2::Api"):
        props = template.properties(logical_id)
        if str(props.get("ProtocolType")) != "WEBSOCKET":
            continue
        api_id = template.api_id(logical_id)
        selection = re.fullmatch(
            r"\$request\.body\.([A-Za-z0-9_]+)", str(props.get("RouteSelectionExpression"))
        )
        integrations: dict[str, str] = {}
        routes: dict[str, tuple[str, str]] = {}  # route physical name -> (key, integration)
        responses: set[str] = set()
        stage = ""
        for child in template.resources:
            kind = template.resources[child].get("Type")
            if kind not in (
                "AWS::ApiGatewayV2::Integration",
                "AWS::ApiGatewayV2::Route",
                "AWS::ApiGatewayV2::RouteResponse",
                "AWS::ApiGatewayV2::Stage",
            ):
                continue
            child_props = template.properties(child)
            if child_props.get("ApiId") != api_id:
                continue
            if kind == "AWS::ApiGatewayV2::Integration":
                uri = str(child_props.get("IntegrationUri", ""))
                found = re.search(r"functions/(?P<arn>.+)/invocations$", uri)
                if found:
                    # An alias-qualified ARN (SnapStart: the template integrates the "live" alias)
                    # names the function itself here, where there are no versions.
                    integrations[template.ref(child)] = _unqualified(found["arn"])
            elif kind == "AWS::ApiGatewayV2::Route":
                target = str(child_props.get("Target", "")).removeprefix("integrations/")
                routes[template.ref(child)] = (str(child_props["RouteKey"]), target)
            elif kind == "AWS::ApiGatewayV2::RouteResponse":
                responses.add(str(child_props.get("RouteId")))
            else:
                stage = str(child_props.get("StageName", ""))
        apis.append(
            WebSocketApiSpec(
                logical_id=logical_id,
                api_id=api_id,
                stage=stage,
                selection_field=selection[1] if selection else None,
                routes={
                    key: WebSocketRoute(
                        key=key, function=integrations[integration], two_way=name in responses
                    )
                    for name, (key, integration) in routes.items()
                    if integration in integrations
                },
            )
        )
    return apis


@dataclass
class _Connection:
    id: str
    send: Send
    connected_at: float
    source_ip: str
    user_agent: str
    last_active_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def new_connection_id() -> str:
    """Shaped like API Gateway's (``BFHPhfCWIAMCKlQ=``): 10 random bytes, base64."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


class WebSocketGateway:
    """The ASGI app: WebSocket connections of one API's stage, and its management API."""

    def __init__(self, api: WebSocketApiSpec, runtime: Invoker, *, domain: str) -> None:
        self.api = api
        self._runtime = runtime
        self._domain = domain
        self.connections: dict[str, _Connection] = {}

    # ------------------------------------------------------------------------- events

    def _event(self, connection: _Connection, route: str, event_type: str, **extra: Any) -> dict[str, Any]:
        now = time.time()
        request_id = base64.b64encode(secrets.token_bytes(10)).decode()
        context: dict[str, Any] = {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "connectedAt": int(connection.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": connection.source_ip},
            "requestId": request_id,
            "domainName": self._domain,
            "connectionId": connection.id,
            "apiId": self.api.api_id,
        }
        context.update(extra.pop("context", {}))
        return {**extra, "requestContext": context, "isBase64Encoded": False}

    async def _invoke(self, route: WebSocketRoute, event: dict[str, Any]) -> dict[str, Any] | None:
        """The function's answer, or None when it failed (API Gateway answers that itself)."""
        try:
            result = await self._runtime.invoke_async(
                route.function, event, wait_at_most=INTEGRATION_TIMEOUT_SECONDS
            )
        except FunctionError as exc:
            log.warning(
                "websocket %s: %s failed: %s: %s", route.key, route.function, exc.error_type, exc.message
            )
            return None
        return result if isinstance(result, dict) else {"statusCode": 200}

    # ------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._management(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        if scope.get("path") != f"/{self.api.stage}":
            await _deny(send, 403, {"message": "Forbidden"})
            return
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for raw_name, raw_value in scope.get("headers") or []:
            name = raw_name.decode("latin-1").title()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
            multi.setdefault(name, []).append(value)
        client = scope.get("client") or ("127.0.0.1", 0)
        now = time.time()
        connection = _Connection(
            id=new_connection_id(),
            send=send,
            connected_at=now,
            source_ip=str(client[0]),
            user_agent=headers.get("User-Agent", ""),
            last_active_at=now,
        )
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        connect = self.api.routes.get("$connect")
        if connect is not None:
            extra: dict[str, Any] = {"headers": headers, "multiValueHeaders": multi}
            if query:
                extra["queryStringParameters"] = query
            answer = await self._invoke(connect, self._event(connection, "$connect", "CONNECT", **extra))
            status = int((answer or {}).get("statusCode", 500))
            if answer is None or status != 200:
                body = (answer or {}).get("body") or json.dumps({"message": "Internal server error"})
                await _deny(send, status if answer is not None else 500, body)
                return
            chosen = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
            await send({"type": "websocket.accept", "subprotocol": chosen.get("sec-websocket-protocol")})
        else:
            await send({"type": "websocket.accept"})
        self.connections[connection.id] = connection
        close_code = 1005
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    close_code = int(message.get("code", 1005))
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8", "replace")
                connection.last_active_at = time.time()
                await self._message(connection, text or "")
        finally:
            self.connections.pop(connection.id, None)
            connection.closed.set()
            disconnect = self.api.routes.get("$disconnect")
            if disconnect is not None:
                event = self._event(
                    connection,
                    "$disconnect",
                    "DISCONNECT",
                    headers={"Host": self._domain},
                    multiValueHeaders={"Host": [self._domain]},
                    context={"disconnectStatusCode": close_code, "disconnectReason": ""},
                )
                await self._invoke(disconnect, event)

    def _select(self, text: str) -> WebSocketRoute | None:
        key = None
        if self.api.selection_field:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get(self.api.selection_field), str):
                key = body[self.api.selection_field]
        return self.api.routes.get(key or "") or self.api.routes.get("$default")

    async def _message(self, connection: _Connection, text: str) -> None:
        route = self._select(text)
        if route is None:
            await self._frame(connection, json.dumps({"message": "Forbidden", "connectionId": connection.id}))
            return
        event = self._event(
            connection, route.key, "MESSAGE", body=text, context={"messageId": new_connection_id()}
        )
        answer = await self._invoke(route, event)
        if answer is None:
            await self._frame(
                connection, json.dumps({"message": "Internal server error", "connectionId": connection.id})
            )
        elif route.two_way and answer.get("body") is not None:
            await self._frame(connection, str(answer["body"]))

    async def _frame(self, connection: _Connection, text: str) -> None:
        async with connection.lock:  # one frame at a time: pushes and answers interleave whole
            await connection.send({"type": "websocket.send", "text": text})

    # ------------------------------------------------------------------------- management API

    async def _management(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The raw path: a connection id is base64 and may hold "/" (sent as %2F), which the
        # decoded path would split into two segments.
        raw = scope.get("raw_path") or str(scope.get("path", "")).encode()
        path = raw.decode("latin-1").partition("?")[0]  # some servers leave the query on it
        found = _CONNECTIONS_PATH.fullmatch(path.removeprefix(f"/{self.api.stage}"))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if found is None:
            await _respond(send, 404, {"message": "Not Found"})
            return
        connection = self.connections.get(unquote(found["id"]))
        if connection is None:
            await _respond(send, 410, {"message": None}, error_type="GoneException")
            return
        method = scope.get("method")
        if method == "POST":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                async with connection.lock:
                    await connection.send({"type": "websocket.send", "bytes": body})
            else:
                await self._frame(connection, text)
            await _respond(send, 200, None)
        elif method == "GET":
            await _respond(
                send,
                200,
                {
                    "connectedAt": datetime.fromtimestamp(connection.connected_at, UTC).isoformat(),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                    "lastActiveAt": datetime.fromtimestamp(connection.last_active_at, UTC).isoformat(),
                },
            )
        elif method == "DELETE":
            async with connection.lock:
                await connection.send({"type": "websocket.close", "code": 1000})
            await _respond(send, 204, None)
        else:
            await _respond(send, 405, {"message": "Method Not Allowed"})


async def _deny(send: Send, status: int, body: Any) -> None:
    """Refuse a handshake with an HTTP answer (ASGI's websocket.http.response extension)."""
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": payload})


async def _respond(send: Send, status: int, body: Any, *, error_type: str | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if error_type:
        headers.append((b"x-amzn-errortype", error_type.encode()))
    payload = b"" if body is None else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class WebSocketServer(HttpServer):
    """uvicorn with the websockets library's protocol, serving one WebSocket API from a thread."""

    def __init__(self, app: WebSocketGateway, *, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(
            app, port=port, host=host, name="websocket-api", what="the WebSocket API", ws="websockets-sansio"
        )


def _unqualified(function_arn: str) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>]`` without the qualifier."""
    parts = function_arn.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 and parts[5] == "function" else function_arn
