"""The request pipeline every API function runs.

Request-wide steps live in the middleware (they apply even when no route matches):
request id → principal (401; 403 token_scope_blocked_by_plan: services/plans.py) → usage count (in
memory: services/request_meter.py) → rate limit (429; on a route marked ``admission.with_claim``, a
keyed mutation's count joins its idempotency claim: api/admission.py) → … → audit record → usage
flush (when due) → response headers. A mutation's idempotency completion is written in its audit
record's transaction.

The principal comes from the request's ``Authorization`` header (``mailroom.auth``: a lookup, then
an in-memory cache): API Gateway runs no authorizer, so a request without the header reaches the
function and gets ``401 unauthenticated`` in the documented envelope like any other bad token. Paths
of public routes skip it, whatever the method (a wrong one gets 405, not 401).

Route-specific steps live in ``MailroomRoute``, FastAPI's extension point for wrapping a matched
route: public routes skip the principal; mutating routes go through idempotency (422/409/replay);
the route's name becomes the audit action.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from mailroom import auth, clock, ids
from mailroom.api import admission, errors
from mailroom.api.errors import ApiError
from mailroom.api.principal import from_claims, unauthenticated, under_plan
from mailroom.domain.principal import Principal
from mailroom.errors import MailroomError
from mailroom.observability import logger, set_correlation_id
from mailroom.services import plans, request_meter
from mailroom.settings import get_settings
from mailroom.store import audit
from mailroom.store.errors import StoreError
from mailroom.store.idempotency import Claim, IdempotencyStore
from mailroom.store.retry import retried
from mailroom.store.table import Table

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_REQUIRED = frozenset({"POST", "PUT"})
PUBLIC_MARK = "x-mailroom-public"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = ("content-type", "location")

CallNext = Callable[[Request], Awaitable[Response]]
RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]

PUBLIC: dict[str, Any] = {PUBLIC_MARK: True}
"""``openapi_extra`` for a route callable without a token."""


def audit_target(request: Request, kind: str, target_id: str, **details: Any) -> None:
    """Name what a mutating endpoint acted on, for its audit record."""
    request.state.audit_target = {"type": kind, "id": target_id, **details}


def audit_public(request: Request, org_id: str, *, actor_type: str, actor_id: str, name: str) -> None:
    """Attribute a public (token-less) route's request to an organization and an actor, so it is
    audited like any other mutation (public routes have no principal to take them from)."""
    request.state.public_actor = (org_id, {"token_id": actor_id, "type": actor_type, "name": name})


def request_id_for(sent: str | None) -> str:
    """The request's id: the client's ``X-Request-Id`` when it is a plausible one, else a new one."""
    if sent and _REQUEST_ID_RE.match(sent):
        return sent
    return ids.new_id("req")


def _remaining_ms(request: Request) -> int | None:
    context = request.scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else None


async def _body_of(response: Response) -> bytes:
    body = getattr(response, "body", None)
    if isinstance(body, bytes):
        return body
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    return b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)


def _authenticate(request: Request, table: Table) -> Principal:
    authorization = request.headers.get("authorization")
    if not authorization:
        raise unauthenticated("No API token: the request has no Authorization header.")
    principal = from_claims(auth.authenticate(authorization, table))
    gate = plans.gate_of(table, principal.org_id)
    return under_plan(principal, gate.allowed, gate.rate_limit)


class Pipeline:
    """The middleware half of the pipeline (see the module docstring)."""

    def __init__(self, *routers: APIRouter) -> None:
        self._public = [
            route
            for router in routers
            for route in router.routes
            if isinstance(route, APIRoute) and (route.openapi_extra or {}).get(PUBLIC_MARK)
        ]
        self._with_claim = [
            route
            for router in routers
            for route in router.routes
            if isinstance(route, APIRoute) and admission.marked(route.endpoint)
        ]

    def _claims_with_count(self, request: Request) -> bool:
        """Whether the request's rate-limit count waits for its idempotency claim: a mutation with a
        well-formed Idempotency-Key on a route marked ``admission.with_claim``."""
        key = request.headers.get("idempotency-key")
        return (
            request.method in MUTATING
            and key is not None
            and IDEMPOTENCY_KEY_RE.match(key) is not None
            and any(route.matches(request.scope)[0] is Match.FULL for route in self._with_claim)
        )

    def _is_public(self, request: Request) -> bool:
        """Whether the path is a public route's, for any method (a wrong one is then 405, not 401)."""
        return any(route.matches(request.scope)[0] is not Match.NONE for route in self._public)

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        started = time.perf_counter()
        request_id = request_id_for(request.headers.get("x-request-id"))
        request.state.request_id = request_id
        set_correlation_id(request_id)
        extra_headers: dict[str, str] = {}
        principal: Principal | None = None
        table = Table()
        try:
            if not self._is_public(request):
                principal = _authenticate(request, table)
                request.state.principal = principal
                request_meter.count(principal.org_id)  # in memory: docs/billing.md
                # A mutation is audited below: its idempotency completion joins that transaction.
                request.state.audited = request.method in MUTATING
                if self._claims_with_count(request):
                    request.state.admission = admission.pending(table, principal)
                else:
                    extra_headers = admission.rate_limit(table, principal)
            response = await call_next(request)
        except MailroomError as error:
            response = errors.render(request, error)
            extra_headers |= errors.headers_of(error)
        except StoreError as failure:
            response = await errors.response_for(request, failure)
        except Exception:
            logger().exception("unhandled error")
            response = errors.render(request, errors.internal_error())

        if request.method in MUTATING:
            public_actor = getattr(request.state, "public_actor", None)
            if principal is not None:
                actor = {
                    "token_id": principal.token_id,
                    "type": principal.token_type.value,
                    "name": principal.token_name,
                }
                _audit(table, request, principal.org_id, actor, response)
            elif public_actor is not None:
                _audit(table, request, public_actor[0], public_actor[1], response)
        if principal is not None:
            request_meter.flush_if_due(table)
        counted_with_claim = admission.of(request)
        if counted_with_claim is not None:
            extra_headers |= counted_with_claim.headers()
        response.headers.update(extra_headers)
        response.headers["X-Request-Id"] = request_id
        logger().info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "org_id": principal.org_id if principal else None,
            },
        )
        return response


class MailroomRoute(APIRoute):
    """The route half of the pipeline: authentication requirement, idempotency, audit action."""

    def get_route_handler(self) -> RouteHandler:
        handle = super().get_route_handler()
        is_public = bool((self.openapi_extra or {}).get(PUBLIC_MARK))
        route_name = self.name

        async def route_handler(request: Request) -> Response:
            request.state.route_name = route_name
            principal: Principal | None = getattr(request.state, "principal", None)
            if not is_public and principal is None:
                raise unauthenticated()
            if principal is not None and request.method in MUTATING:
                return await _idempotent(request, handle, principal)
            return await handle(request)

        return route_handler


async def _run(request: Request, handle: RouteHandler) -> Response:
    """The route's response, errors included: idempotency stores what the client saw."""
    try:
        return await handle(request)
    except Exception as exc:  # rendered exactly as the app's exception handlers would
        return await errors.response_for(request, exc)


async def _idempotent(request: Request, handle: RouteHandler, principal: Principal) -> Response:
    key = request.headers.get("idempotency-key")
    if key is None:
        if request.method in KEY_REQUIRED and not errors.is_v0(request):
            raise ApiError(
                422,
                "missing_idempotency_key",
                "POST and PUT requests need an Idempotency-Key header.",
                hint="Send a unique 'Idempotency-Key' (up to 255 characters) per operation; "
                "retries reuse it.",
            )
        return await handle(request)
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise ApiError(
            422,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
        )
    fingerprint = {
        "token": principal.token_id,
        "key": key,
        "method": request.method,
        "path": request.url.path,
        "body_sha256": hashlib.sha256(await request.body()).hexdigest(),
    }
    store = IdempotencyStore(Table(), principal.org_id)
    counted_later = admission.of(request)
    if counted_later is not None:  # the rate-limit count and the claim: one transaction
        claim = admission.claim(counted_later, store, fingerprint, remaining_ms=_remaining_ms(request))
    else:
        claim = store.claim(fingerprint, remaining_ms=_remaining_ms(request))
    if claim.claim is Claim.MISMATCH:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request.",
            hint="Use a new key for a new operation.",
        )
    if claim.claim is Claim.IN_PROGRESS:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed.",
            hint="Retry shortly to get its result.",
            retryable=True,
        )
    if claim.claim is Claim.REPLAY and claim.stored is not None:
        stored = claim.stored
        request.state.replayed = True
        replay = Response(
            content=base64.b64decode(stored["body"]),
            status_code=int(stored["status"]),
            headers=dict(stored.get("headers") or {}),
        )
        replay.headers["Idempotent-Replayed"] = "true"
        return replay

    try:
        response = await _run(request, handle)
    except BaseException as exc:
        store.abandon(fingerprint, exc if isinstance(exc, Exception) else RuntimeError("aborted"))
        raise
    body = await _body_of(response)
    # 5xx and 429 mean "not done, try again": the retry with the same key must run, not replay.
    if response.status_code >= 500 or response.status_code == 429:
        _settle("abandon", lambda: store.abandon(fingerprint, RuntimeError(f"status {response.status_code}")))
    else:
        headers = {k: response.headers[k] for k in _REPLAYED_HEADERS if k in response.headers}
        stored = {"status": response.status_code, "headers": headers, "body": base64.b64encode(body).decode()}
        complete = Completion(
            store.completion_op(fingerprint, stored), lambda: store.complete(fingerprint, stored)
        )
        if getattr(request.state, "audited", False):
            request.state.completion = complete  # written with the audit record (``_audit``)
        else:
            _settle("complete", complete.alone)
    rebuilt = Response(content=body, status_code=response.status_code)
    rebuilt.raw_headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-length"]
    rebuilt.headers["content-length"] = str(len(body))
    return rebuilt


@dataclass(frozen=True, slots=True)
class Completion:
    """A request's idempotency completion: the operation for the audit record's transaction, and
    the same write alone, for when that transaction cannot be written."""

    op: dict[str, Any]
    alone: Callable[[], None]


def _settle(outcome: str, record: Callable[[], None]) -> None:
    """Record how the request ended, trying again through a brief outage: the response stands
    whatever happens here. A request that did its work must not answer 5xx because only its record
    failed (the client would retry it, and once the claim expires, do it twice); one that failed
    answers its own 5xx, and a retry meanwhile hears ``idempotency_in_progress`` until the claim
    expires with the invocation."""
    try:
        retried(record)
    except StoreError:
        logger().exception("idempotency record not updated", extra={"outcome": outcome})


def _audit(table: Table, request: Request, org_id: str, actor: dict[str, Any], response: Response) -> None:
    now = clock.utcnow()
    status = response.status_code
    state = request.state
    entry = {
        "id": ids.new_id("aud"),
        "org_id": org_id,
        "action": getattr(state, "route_name", None) or f"{request.method} {request.url.path}",
        "actor": actor,
        "target": getattr(state, "audit_target", None),
        "request_id": state.request_id,
        "source_ip": request.client.host if request.client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:256] or None,
        "method": request.method,
        "path": request.url.path,
        "outcome": {
            "status": status,
            "result": "success" if status < 400 else "failure",
            "error_code": getattr(state, "error_code", None),
            "replayed": bool(getattr(state, "replayed", False)),
        },
        "time": clock.isoformat(now),
        "time_epoch": int(now.timestamp()),
    }
    retention_days = get_settings().audit_retention_days
    completion: Completion | None = getattr(request.state, "completion", None)
    if completion is not None:
        # One transaction for both records of the request (one DynamoDB request instead of two).
        try:
            retried(lambda: audit.record(table, entry, retention_days=retention_days, also=[completion.op]))
            return
        except Exception:
            # E.g. the organization is gone (the audit count's condition): each on its own then,
            # the completion first (a client's retry must replay, not run again).
            logger().warning("audit and idempotency records not written together", exc_info=True)
            _settle("complete", completion.alone)
    try:
        retried(lambda: audit.record(table, entry, retention_days=retention_days))
    except Exception:
        # The action already happened; losing its record must be loud, not a second failure.
        logger().exception("audit record not written", extra={"audit": entry})
        from mailroom.observability import metrics

        metrics().add_metric(name="AuditWriteFailed", unit="Count", value=1)


def api_router(prefix: str, *, tags: list[str]) -> APIRouter:
    """An APIRouter whose routes run the route half of the pipeline. Every router is made here."""
    return APIRouter(prefix=prefix, tags=list(tags), route_class=MailroomRoute)
