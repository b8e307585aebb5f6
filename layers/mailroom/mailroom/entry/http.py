"""API Gateway HTTP API events: each API function is a FastAPI app of its routers behind Mangum;
the OpenAPI document is served by a function of its own."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from mailroom.api.app import create_app
from mailroom.entry.runtime import Handler, lambda_entry

Response = dict[str, Any]


def api_handler(*routers: APIRouter) -> Handler[Response]:
    """The ``handler`` of an API function: Mangum over the app built from ``routers``."""
    from mangum import Mangum

    adapter = Mangum(create_app(*routers), lifespan="off")

    def handle(event: dict[str, Any], context: Any) -> Response:
        return dict(adapter(event, context))

    return lambda_entry(handle)


@lambda_entry
def openapi(event: dict[str, Any], context: Any) -> Response:
    """``GET /api/openapi.json`` (no token): the document of every router, built once per process.
    Another method gets 405 ``method_not_allowed`` in the envelope, as on every other path. The
    API's ``$default`` route comes here too: a path no route matches is 404 ``not_found`` in the
    envelope of its surface, not API Gateway's bare ``{"message": "Not Found"}``."""
    if event.get("routeKey") == "$default":
        return _error(event, 404, "not_found", "No such endpoint", hint="See GET /api/openapi.json.")
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")).upper()
    if method not in ("GET", "HEAD"):
        return _error(
            event,
            405,
            "method_not_allowed",
            "Method Not Allowed",
            hint="This path answers GET, HEAD.",
            headers={"allow": "GET, HEAD"},
        )

    from mailroom.api.openapi import document

    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "public, max-age=300"},
        "body": json.dumps(document()),
    }


def _error(
    event: dict[str, Any],
    status: int,
    code: str,
    message: str,
    *,
    hint: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error rendered as the API renders it (v1 envelope, or v0's ``{name, message}``), for the
    answers this function gives without an app."""
    from mailroom.api.errors import V0_NAMES
    from mailroom.api.pipeline import request_id_for

    sent = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    request_id = request_id_for(sent.get("x-request-id"))
    path = str(event.get("rawPath") or "")
    body: dict[str, Any]
    if path.startswith("/api/v0/"):
        body = {"name": V0_NAMES.get(status, "Error"), "message": message}
    else:
        body = {
            "error": {
                "code": code,
                "message": message,
                "hint": hint,
                "request_id": request_id,
                "retryable": False,
            }
        }
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-request-id": request_id, **(headers or {})},
        "body": json.dumps(body),
    }
