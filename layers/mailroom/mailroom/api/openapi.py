"""The OpenAPI 3.1 document of every endpoint, built from all routers on first request.

Routes declare their success models and their own error statuses (``api.models.errors``); what
every operation of a kind can answer is added here, once, with the envelope of its surface (v1
``{"error": {...}}``, v0 ``{name, message}``): 401/403/429 where a token is needed, 404 where the
path names something, 422 where there are parameters or a body, 409 for a reused Idempotency-Key,
413 from API Gateway over its payload limit, 500 and 503 everywhere. The Idempotency-Key header
and the response headers are declared as the pipeline reads and sets them. FastAPI's own
``{"detail": ...}`` 422 never appears.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from mailroom.api.pipeline import IDEMPOTENCY_KEY_RE, KEY_REQUIRED, MUTATING, PUBLIC_MARK
from mailroom.api.principal import ACCESS_ATTRIBUTE

REF = "#/components/schemas/"
SCOPES_EXTENSION = "x-mailroom-scopes"

# Any token-authenticated request may meet its organization's plan (docs/plans.md).
PLAN_403 = (
    "plan_api_disabled: the organization's plan excludes a scope this endpoint needs; "
    "token_scope_blocked_by_plan: the token carries scopes the plan excludes (revoke it, create one "
    "with the allowed scopes)."
)

COMMON_ERRORS: dict[int, str] = {
    400: "bad_request: the body is not JSON (it could not be parsed at all).",
    401: "unauthenticated: no token, or a malformed, unknown, revoked or expired one.",
    403: "insufficient_scope or wrong_token_type: the token may not call this endpoint. " + PLAN_403,
    404: "not_found: nothing with this id for this caller (another organization's is not found too).",
    409: "idempotency_key_reused or idempotency_in_progress: the Idempotency-Key was used for another "
    "request, or that request is still running.",
    413: "Payload too large: API Gateway refuses request bodies over 6 MB (Lambda's payload limit).",
    422: "validation_error: a parameter or a field of the body is not valid; `fields` names each.",
    429: "rate_limited: over the token's requests per minute; Retry-After says when to retry.",
    500: "internal_error: a bug on our side (retryable; quote the request_id).",
    503: "service_unavailable: a dependency is busy or down; retry with the same Idempotency-Key.",
}

_HEADER_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "X-Request-Id": ("The request id: the one sent, or a new one.", {"type": "string"}),
    "X-RateLimit-Limit": ("Requests per minute this token may make.", {"type": "integer"}),
    "X-RateLimit-Remaining": ("Requests left in the current minute.", {"type": "integer"}),
    "X-RateLimit-Reset": ("Epoch second at which the minute's count resets.", {"type": "integer"}),
    "Retry-After": ("Seconds to wait before retrying.", {"type": "integer"}),
}


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _header_components() -> dict[str, Any]:
    return {
        name: {"description": description, "required": True, "schema": schema}
        for name, (description, schema) in _HEADER_SCHEMAS.items()
    }


def _statuses(path: str, method: str, operation: dict[str, Any], secured: bool) -> list[int]:
    statuses = [500, 503]
    if secured:
        statuses += [401, 403, 429]
    if "{" in path:
        statuses.append(404)
    upper = method.upper()
    if operation.get("parameters") or operation.get("requestBody") or (upper in KEY_REQUIRED and secured):
        statuses.append(422)  # a v1 POST/PUT without an Idempotency-Key is a 422 too
    if upper in MUTATING and secured:
        statuses.append(409)
    if operation.get("requestBody"):
        statuses += [400, 413]
    return statuses


def _document_errors(path: str, method: str, operation: dict[str, Any], secured: bool) -> None:
    envelope = "V0Error" if path.startswith("/api/v0/") else "ErrorEnvelope"
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for common in _statuses(path, method, operation, secured):
        responses.setdefault(str(common), {"description": COMMON_ERRORS[common]})
    own_403 = responses.get("403")
    if secured and own_403 is not None and "plan_api_disabled" not in own_403.get("description", ""):
        own_403["description"] = f"{own_403.get('description', '').rstrip('. ')}. {PLAN_403}"
    if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's wording
        responses["422"]["description"] = COMMON_ERRORS[422]
    for status, response in responses.items():
        if not str(status).isdigit() or int(status) < 400:
            continue
        code = int(status)
        schema = "GatewayError" if code == 413 else envelope
        # FastAPI's {"detail": ...} 422 is never what the API answers: every error gets the envelope,
        # unless the route declared a model of its own (an envelope with more, e.g. a batch's rows).
        declared = ((response.get("content") or {}).get("application/json") or {}).get("schema") or {}
        if str(declared.get("$ref", "")).removeprefix(REF) in ("", "HTTPValidationError"):
            response["content"] = {"application/json": {"schema": {"$ref": REF + schema}}}
        if code != 413:  # API Gateway's own answer carries none of the pipeline's headers
            headers = ["X-Request-Id"]
            if code == 429:
                headers += ["Retry-After"]
            response["headers"] = {name: _header(name) for name in headers}


def _document_idempotency_key(path: str, method: str, operation: dict[str, Any], secured: bool) -> None:
    """The ``Idempotency-Key`` header the pipeline reads: required on v1 POST/PUT, optional on the
    other mutating operations (and on v0, whose reference has none: a key that is sent is honoured)."""
    upper = method.upper()
    if upper not in MUTATING or not secured:
        return
    required = upper in KEY_REQUIRED and not path.startswith("/api/v0/")
    described = (
        "Unique per operation; a retry reuses it. The same key with the same request replays the first "
        "answer (`Idempotent-Replayed: true`) without doing it again; with another request it is 409 "
        "idempotency_key_reused. Kept 24 hours per token."
    )
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    parameters.append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": required,
            "description": described if required else f"Optional. {described}",
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_RE.pattern, "maxLength": 255},
        }
    )


def _document_success_headers(operation: dict[str, Any], secured: bool) -> None:
    names = ["X-Request-Id"]
    if secured:
        names += ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    for status, response in operation.get("responses", {}).items():
        if str(status).isdigit() and int(status) < 400:
            response.setdefault("headers", {}).update({name: _header(name) for name in names})


def _token_checks(call: Any, depth: int = 0) -> Iterator[dict[str, list[str]]]:
    """The token checks a dependency makes: its own, or those of the checks it closes over (routers
    wrap ``require(scope)`` in loaders such as ``mailbox_with(scope)`` that call it themselves)."""
    access = getattr(call, ACCESS_ATTRIBUTE, None)
    if access is not None:
        yield access
        return
    if depth < 3:
        for cell in getattr(call, "__closure__", None) or ():
            contents = cell.cell_contents
            if callable(contents):
                yield from _token_checks(contents, depth + 1)


def _route_access(dependant: Any) -> dict[str, list[str]] | None:
    """Who may call a route: the token types every check accepts, with the union of their scopes."""
    checks: list[dict[str, list[str]]] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is not None:
            checks.extend(_token_checks(current.call))
        pending.extend(current.dependencies)
    if not checks:
        return None
    kinds = set(checks[0]).intersection(*checks[1:])
    return {kind: sorted({scope for check in checks for scope in check[kind]}) for kind in sorted(kinds)}


def _document_access(spec: dict[str, Any], routes: list[Any]) -> None:
    """``x-mailroom-scopes`` on every operation whose route checks a token (public ones check none)."""
    for route in routes:
        access = _route_access(route.dependant)
        for method in route.methods:
            operation = spec.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is not None and access is not None:
                operation[SCOPES_EXTENSION] = access


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import APIRoute
    from pydantic import TypeAdapter

    from mailroom.api.app import DESCRIPTION, create_app
    from mailroom.api.models import ErrorEnvelope, GatewayError, V0Error
    from mailroom.api.routers import all_routers

    app = create_app(*all_routers())
    spec = get_openapi(title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Ops token (mr_live_...), message token (mr_msg_...) or API key (inai_...).",
    }
    components["headers"] = _header_components()
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for model in (ErrorEnvelope, V0Error, GatewayError):
        generated = TypeAdapter(model).json_schema(ref_template=REF + "{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas[model.__name__] = generated
    _document_access(
        spec, [route for router in all_routers() for route in router.routes if isinstance(route, APIRoute)]
    )
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            secured = not operation.pop(PUBLIC_MARK, False)
            operation["security"] = [{"bearer": []}] if secured else []
            _document_idempotency_key(path, method, operation, secured)
            _document_errors(path, method, operation, secured)
            _document_success_headers(operation, secured)
    return spec
