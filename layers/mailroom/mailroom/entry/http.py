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
    Another method gets 405 ``method_not_allowed`` in the envelope, as on every other path."""
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")).upper()
    if method not in ("GET", "HEAD"):
        return _method_not_allowed(event, allow="GET, HEAD")

    from mailroom.api.openapi import document

    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "public, max-age=300"},
        "body": json.dumps(document()),
    }


def _method_not_allowed(event: dict[str, Any], *, allow: str) -> Response:
    from mailroom.api.pipeline import request_id_for

    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    request_id = request_id_for(headers.get("x-request-id"))
    error = {
        "code": "method_not_allowed",
        "message": "Method Not Allowed",
        "hint": f"This path answers {allow}.",
        "request_id": request_id,
        "retryable": False,
    }
    return {
        "statusCode": 405,
        "headers": {"content-type": "application/json", "allow": allow, "x-request-id": request_id},
        "body": json.dumps({"error": error}),
    }
