"""Who is calling: the principal of a token's claims (``mailroom.auth``), and scope checks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request

from mailroom.api.errors import ApiError
from mailroom.domain import plans
from mailroom.domain.principal import Principal
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.domain.tokens import TokenType

ACCESS_ATTRIBUTE = "mailroom_access"
"""Set on every dependency that checks a token: ``{token type: scopes it needs}``. The OpenAPI
document publishes it as ``x-mailroom-scopes`` so clients (the MCP server) know who may call what."""

_DENIAL_MESSAGES = {
    "malformed": "The bearer token is malformed.",
    "unknown": "Invalid or revoked API token.",
    "expired": "The API token has expired.",
}


def unauthenticated(message: str = "Invalid or expired API token") -> ApiError:
    return ApiError(
        401,
        "unauthenticated",
        message,
        hint="Send 'Authorization: Bearer <token>' with a token that is not revoked or expired.",
    )


def from_claims(context: dict[str, Any] | None, *, now: float | None = None) -> Principal:
    if not context:
        raise unauthenticated()
    denied = context.get("denied")
    if denied:
        raise unauthenticated(_DENIAL_MESSAGES.get(str(denied), "Invalid or expired API token"))
    expires = int(context.get("expires_at_epoch") or 0)
    # Claims are cached: an expiry that passed since must still be refused.
    if expires and expires <= (now if now is not None else time.time()):
        raise unauthenticated(_DENIAL_MESSAGES["expired"])
    try:
        token_type = TokenType(context["token_type"])
        # An API key is organization-wide: every ops scope, including scopes added after it was made.
        scopes = OPS_SCOPES if token_type is TokenType.API_KEY else str(context.get("scopes", "")).split()
        return Principal(
            org_id=str(context["org_id"]),
            token_id=str(context["token_id"]),
            token_type=token_type,
            token_name=str(context.get("token_name", "")),
            scopes=frozenset(scopes),
            mailbox_id=str(context.get("mailbox_id") or "") or None,
            mailbox_domain_id=str(context.get("mailbox_domain_id") or "") or None,
            mailbox_address=str(context.get("mailbox_address") or "") or None,
            rate_limit=int(context.get("rate_limit") or 0) or None,
        )
    except (KeyError, ValueError) as exc:
        raise unauthenticated() from exc


def token_blocked(blocked: list[str]) -> ApiError:
    return ApiError(
        403,
        "token_scope_blocked_by_plan",
        f"This token has scopes the organization's plan does not include: {', '.join(blocked)}.",
        hint="Revoke the token and create a new one with the scopes the plan allows (GET /api/v1/account "
        "names the plan).",
    )


def plan_disabled(scopes: list[str]) -> ApiError:
    return ApiError(
        403,
        "plan_api_disabled",
        f"The organization's plan does not include the scope(s): {', '.join(scopes)}.",
        hint="Ask the operator for a plan that includes them.",
    )


def under_plan(principal: Principal, allowed: frozenset[str], rate_limit: int | None) -> Principal:
    """The principal held to its organization's plan: an API key (organization-wide) holds the ops
    scopes the plan allows; any other token carrying a scope beyond the plan is refused (403
    token_scope_blocked_by_plan); a token's own rate limit is capped by the plan's."""
    org_wide = principal.token_type is TokenType.API_KEY
    scopes = OPS_SCOPES & allowed if org_wide else principal.scopes
    if not org_wide:
        blocked = plans.blocked_scopes(scopes, allowed)
        if blocked:
            raise token_blocked(blocked)
    limits = [limit for limit in (principal.rate_limit, rate_limit) if limit]
    return dataclasses.replace(
        principal, scopes=frozenset(scopes), plan_allowed=allowed, rate_limit=min(limits) if limits else None
    )


def current(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise unauthenticated()
    return principal  # type: ignore[no-any-return]


def acts_as(actual: TokenType, wanted: TokenType) -> bool:
    """An API key (``inai_``) is an organization-wide ops token: it is accepted wherever one is."""
    return actual is wanted or (actual is TokenType.API_KEY and wanted is TokenType.OPS)


def require(*scopes: str, token_type: TokenType = TokenType.OPS) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller, if it is a ``token_type`` token holding every scope named."""

    def dependency(request: Request) -> Principal:
        principal = current(request)
        if not acts_as(principal.token_type, token_type):
            raise ApiError(
                403,
                "wrong_token_type",
                f"This endpoint needs a {token_type.value} token.",
                hint="Ops tokens (mr_live_) and API keys (inai_) manage infrastructure; message tokens "
                "(mr_msg_) read and send mail.",
            )
        allowed = principal.plan_allowed if principal.plan_allowed is not None else plans.ALL_SCOPES
        verdict = plans.gate(org_wide=False, token_scopes=principal.scopes, allowed=allowed, required=scopes)
        if verdict is plans.Verdict.TOKEN_BLOCKED:
            raise token_blocked(plans.blocked_scopes(principal.scopes, allowed))
        if verdict is plans.Verdict.PLAN_DISABLED:
            raise plan_disabled([s for s in scopes if s not in allowed])
        missing = [s for s in scopes if not principal.has(s)]
        if missing:
            raise ApiError(
                403,
                "insufficient_scope",
                f"The token lacks the scope(s): {', '.join(missing)}.",
                hint="Create a token that carries the scopes this endpoint lists.",
            )
        return principal

    setattr(dependency, ACCESS_ATTRIBUTE, {token_type.value: sorted(scopes)})
    return dependency
