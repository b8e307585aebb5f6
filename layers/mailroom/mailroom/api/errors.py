"""Errors and their envelopes.

v1 (trekmail-api-overview.txt): ``{"error": {"code", "message", "hint", "request_id", "retryable"}}``.
v0 (agentmail-v0-api.txt): ``{"name", "message"}``. The surface is chosen by the request path.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailroom.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    LimitReached,
    MailroomError,
    NotFound,
    PaymentRequired,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
)
from mailroom.store.errors import StoreError
from mailroom.store.table import InvalidCursor


class ApiError(MailroomError):
    """An error only HTTP has (a method not allowed, a missing Idempotency-Key header, a rate
    limit with its headers), with its status code. Everything else raises ``mailroom.errors``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool = False,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, hint=hint, retryable=retryable, fields=fields)
        self.status = status
        self.headers = headers or {}


# The status of each kind of product error; the most derived kind that matches wins.
STATUS_OF_KIND: dict[type[MailroomError], int] = {
    Invalid: 422,
    LimitReached: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooManyRequests: 429,
    PaymentRequired: 402,
    UpstreamFailed: 502,
    Unavailable: 503,
}


def status_of(error: MailroomError) -> int:
    if isinstance(error, ApiError):
        return error.status
    for kind in type(error).__mro__:
        status = STATUS_OF_KIND.get(kind)  # type: ignore[call-overload]
        if status is not None:
            return status
    return 500


def headers_of(error: MailroomError) -> dict[str, str]:
    headers = dict(error.headers) if isinstance(error, ApiError) else {}
    if error.retry_after is not None:
        headers.setdefault("Retry-After", str(error.retry_after))
    return headers


V0_NAMES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    402: "PaymentRequiredError",
    403: "ForbiddenError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    422: "ValidationError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
}


def is_v0(request: Request) -> bool:
    return request.url.path.startswith("/api/v0/")


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def render(request: Request, error: MailroomError) -> JSONResponse:
    request.state.error_code = error.code
    status = status_of(error)
    body: dict[str, Any]
    if is_v0(request):
        body = {"name": V0_NAMES.get(status, "Error"), "message": error.message}
        if error.fields:
            body["errors"] = error.fields
    else:
        payload: dict[str, Any] = {
            "code": error.code,
            "message": error.message,
            "hint": error.hint,
            "request_id": request_id_of(request),
            "retryable": error.retryable,
        }
        if error.fields:
            payload["fields"] = error.fields
        body = {"error": payload}
    return JSONResponse(body, status_code=status, headers=headers_of(error))


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailroomError)
    return render(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    error = ApiError(
        422,
        "validation_error",
        f"The request is not valid: {summary}",
        fields=fields,
        hint="Fix the listed fields and send the request again.",
    )
    return render(request, error)


# What FastAPI raises (400) for a body it cannot even decode (not UTF-8): the same mistake as a
# body that is not JSON, which it answers 422 json_invalid; one documented answer for both.
_UNDECODABLE_BODY = "There was an error parsing the body"


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.detail == _UNDECODABLE_BODY:
        message = "The request body is not JSON text in UTF-8."
        return render(
            request,
            ApiError(
                422,
                "validation_error",
                message,
                fields=[{"field": "body", "message": message}],
                hint="Send a JSON body encoded in UTF-8.",
            ),
        )
    code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(status, "http_error")
    message = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    if status == 404 and message == "Not Found":
        message = "No such endpoint"
    return render(request, ApiError(status, code, message, headers=dict(exc.headers or {})))


def internal_error() -> ApiError:
    return ApiError(
        500,
        "internal_error",
        "Something went wrong on our side.",
        retryable=True,
        hint="Retry later; quote the request_id if it persists.",
    )


def store_failure(exc: StoreError) -> MailroomError:
    """An AWS failure nobody below handled: 503 when a retry can pass (throttling, an outage), else
    a bug or a misconfiguration (500). Neither says more about AWS than that."""
    if exc.retryable:
        return Unavailable(
            "service_unavailable",
            "A service Mailroom depends on is busy or unavailable; nothing was done.",
            hint="Retry shortly with the same Idempotency-Key.",
            retry_after=1,
        )
    return internal_error()


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    from mailroom.observability import logger

    assert isinstance(exc, StoreError)
    logger().warning(
        "AWS call failed",
        extra={"aws_code": exc.code, "service": exc.service, "operation": exc.operation},
        exc_info=not exc.retryable,
    )
    return render(request, store_failure(exc))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    from mailroom.observability import logger

    logger().exception("unhandled error")
    return render(request, internal_error())


def invalid_cursor(exc: Exception) -> ApiError:
    return ApiError(
        422,
        "invalid_cursor",
        str(exc),
        fields=[{"field": "cursor", "message": str(exc)}],
        hint="Use links.next or links.prev exactly as returned, with the same filters.",
    )


async def _on_invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
    # A cursor is refused wherever it is decoded (the store), so every list endpoint answers alike.
    return render(request, invalid_cursor(exc))


async def response_for(request: Request, exc: Exception) -> JSONResponse:
    """Render any exception as its registered handler would (used where a response must be captured)."""
    if isinstance(exc, InvalidCursor):
        return await _on_invalid_cursor(request, exc)
    if isinstance(exc, MailroomError):
        return await _on_api_error(request, exc)
    if isinstance(exc, StoreError):
        return await _on_store_error(request, exc)
    if isinstance(exc, RequestValidationError):
        return await _on_validation_error(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return await _on_http_error(request, exc)
    return await _on_unexpected(request, exc)


def install(app: Any) -> None:
    app.add_exception_handler(MailroomError, _on_api_error)
    app.add_exception_handler(InvalidCursor, _on_invalid_cursor)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
