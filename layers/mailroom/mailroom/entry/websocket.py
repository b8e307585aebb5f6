"""The WebSocket API (API Gateway, one function for every route): ``$connect`` authenticates the
token and records the connection, ``$disconnect`` forgets it, ``subscribe``/``unsubscribe`` (and
``$default``, for anything else) answer with one frame, sent back by the routes' route response.
Events reach connections from the stream consumer (``services.realtime_fanout``), not from here.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mailroom.entry.runtime import lambda_entry
from mailroom.observability import append_keys, logger


def _answer(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": status}
    if body is not None:
        response["body"] = json.dumps(body, separators=(",", ":"))
    if headers:
        response["headers"] = headers
    return response


@lambda_entry
def websocket(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services import realtime
    from mailroom.store.table import Table

    request = event.get("requestContext") or {}
    route, connection_id = request.get("routeKey"), str(request.get("connectionId") or "")
    append_keys(connection_id=connection_id, route_key=route)
    table = Table()
    if route == "$connect":
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        handshake = realtime.handshake(event.get("queryStringParameters"), headers)
        try:
            connection = realtime.connect(table, connection_id, handshake.token)
        except realtime.Refused as refused:
            logger().info("websocket refused", extra={"status": refused.status, "code": refused.code})
            return _answer(
                refused.status, {"type": "error", "code": refused.code, "message": refused.message}
            )
        logger().info(
            "websocket connected",
            extra={"org_id": connection["org_id"], "token_id": connection["token_id"]},
        )
        # Offered a subprotocol, the client needs it chosen in the answer or it drops the connection.
        chosen = {"Sec-WebSocket-Protocol": handshake.subprotocol} if handshake.subprotocol else None
        return _answer(200, headers=chosen)
    if route == "$disconnect":
        realtime.disconnect(table, connection_id)
        return _answer(200)
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return _answer(200, realtime.answer(table, connection_id, body))
