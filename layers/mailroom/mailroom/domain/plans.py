"""Plans: which scopes an organization's tokens may use, and its limits. Pure data and rules.

A plan is data (stored in DynamoDB, edited by operators with ``mailroom admin plans``); this module
holds its shape, its validation, the default set modelled on trekmail-api-overview.txt ("Nano plans
can use the Email Verifier API. Starter plans add read-only infrastructure scopes plus verifier.
Pro and Agency plans get full read/write access"; message tokens on Pro and Agency only) and
trekmail-migrations-api.txt (rows per batch and concurrency: 100/2, 300/5, 1000/10), and the
gating decision the request pipeline applies (``gate``).

A plan's ``scopes`` are scope names, or ``"*"`` for every scope of the catalogue, including scopes
added to Mailroom later: the full plans keep their meaning as the API grows, the narrow ones grant
nothing they did not name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mailroom.domain.scopes import MESSAGE_SCOPES, OPS_SCOPES

ALL_SCOPES: frozenset[str] = OPS_SCOPES | MESSAGE_SCOPES
EVERY_SCOPE = "*"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")

# Limit name → what it bounds. Every plan states each one, except the optional ones (absent: the
# deployment's default, MAILROOM_RATE_LIMIT_PER_MINUTE).
LIMITS: dict[str, str] = {
    "domains": "domains of the organization",
    "mailboxes": "mailboxes of the organization",
    "aliases": "aliases of the organization",
    "storage_mb": "the storage pool mailbox quotas and dedicated allocations draw on (MB)",
    "message_tokens": "managed message tokens per mailbox",
    "migration_batch_rows": "rows per bulk migration batch",
    "migration_concurrency": "migrations running at once for the organization",
    "rate_limit_per_minute": "requests per minute per token (absent: the deployment's default)",
    "verify_credits": "verifications per UTC month (absent: the deployment's default)",
}
OPTIONAL_LIMITS = frozenset({"rate_limit_per_minute", "verify_credits"})
REQUIRED_LIMITS = frozenset(LIMITS) - OPTIONAL_LIMITS
MAX_LIMIT = 10**9
MAX_PRICE_CENTS = 10**9  # USD cents per month


class InvalidPlan(ValueError):
    """A plan (or a change to one) that cannot be stored; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    description: str
    scopes: tuple[str, ...]
    limits: Mapping[str, int]
    version: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)
    price_cents: int = 0  # the plan's monthly price in USD cents (what an invoice charges)

    @property
    def allowed_scopes(self) -> frozenset[str]:
        return allowed_scopes(self.scopes)

    @property
    def message_tokens(self) -> bool:
        """Whether the plan lets message tokens do anything (they carry message scopes only)."""
        return bool(self.allowed_scopes & MESSAGE_SCOPES)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "scopes": list(self.scopes),
            "limits": dict(self.limits),
            "version": self.version,
            "price_cents": self.price_cents,
        }


def allowed_scopes(plan_scopes: Iterable[str]) -> frozenset[str]:
    """The concrete scopes a plan's scope list grants (``"*"``: the whole catalogue)."""
    listed = frozenset(plan_scopes)
    return ALL_SCOPES if EVERY_SCOPE in listed else listed & ALL_SCOPES


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidPlan(
            f"plan name {name!r} must be 1 to 32 lowercase letters, digits or '-', starting with a letter"
        )
    return name


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    listed = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    if not listed:
        raise InvalidPlan("a plan needs at least one scope (or '*' for every scope)")
    unknown = [s for s in listed if s != EVERY_SCOPE and s not in ALL_SCOPES]
    if unknown:
        raise InvalidPlan(f"unknown scope(s): {', '.join(unknown)}")
    return (EVERY_SCOPE,) if EVERY_SCOPE in listed else tuple(sorted(listed))


def validate_limits(limits: Mapping[str, Any], *, complete: bool = True) -> dict[str, int]:
    """Known names, whole numbers from 0 to 1e9 (0: none allowed); ``complete``: every required one."""
    checked: dict[str, int] = {}
    for name, value in limits.items():
        if name not in LIMITS:
            raise InvalidPlan(f"unknown limit {name!r} (known: {', '.join(sorted(LIMITS))})")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
            raise InvalidPlan(f"limit {name} must be a whole number from 0 to {MAX_LIMIT}, got {value!r}")
        if name == "rate_limit_per_minute" and value < 1:
            raise InvalidPlan("limit rate_limit_per_minute must be at least 1")
        checked[name] = value
    missing = sorted(REQUIRED_LIMITS - set(checked)) if complete else []
    if missing:
        raise InvalidPlan(f"missing limit(s): {', '.join(missing)}")
    return checked


def validate_price(price_cents: Any) -> int:
    whole = isinstance(price_cents, int) and not isinstance(price_cents, bool)
    if not whole or not 0 <= price_cents <= MAX_PRICE_CENTS:
        raise InvalidPlan(f"price must be whole cents from 0 to {MAX_PRICE_CENTS}, got {price_cents!r}")
    return int(price_cents)


def build(
    name: str,
    *,
    description: str,
    scopes: Iterable[str],
    limits: Mapping[str, Any],
    version: int = 1,
    price_cents: int = 0,
) -> Plan:
    description = description.strip()
    if len(description) > 200:
        raise InvalidPlan("description must be at most 200 characters")
    return Plan(
        name=validate_name(name),
        description=description,
        scopes=validate_scopes(scopes),
        limits=validate_limits(limits),
        version=version,
        price_cents=validate_price(price_cents),
    )


def from_item(item: Mapping[str, Any]) -> Plan:
    return Plan(
        name=str(item["name"]),
        description=str(item.get("description") or ""),
        scopes=tuple(str(s) for s in item.get("scopes") or ()),
        limits={str(k): int(v) for k, v in (item.get("limits") or {}).items()},
        version=int(item.get("version") or 1),
        price_cents=int(item.get("price_cents") or 0),
    )


def effective_limits(plan: Plan, overrides: Mapping[str, Any] | None) -> dict[str, int]:
    """What the organization is held to: the plan's limits, with the organization's own overrides
    (set by the operator for that organization alone) on top."""
    return {**plan.limits, **{k: int(v) for k, v in (overrides or {}).items()}}


# ----------------------------------------------------------------------------- gating


class Verdict(Enum):
    ALLOWED = "allowed"
    # The token carries a scope the plan excludes (issued before a downgrade, or by an operator):
    # every request with it is refused until it is replaced (trekmail's quick fix: revoke, recreate).
    TOKEN_BLOCKED = "token_scope_blocked_by_plan"  # noqa: S105 - an error code, not a secret
    # The endpoint needs a scope the plan excludes, whatever the token holds.
    PLAN_DISABLED = "plan_api_disabled"
    # The plan allows it, the token does not hold it.
    INSUFFICIENT = "insufficient_scope"


def blocked_scopes(token_scopes: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """The token's scopes the plan does not allow, sorted."""
    return sorted(set(token_scopes) - allowed)


def gate(
    *, org_wide: bool, token_scopes: frozenset[str], allowed: frozenset[str], required: Iterable[str]
) -> Verdict:
    """The decision for one request. ``org_wide`` tokens (API keys) hold whatever the plan allows,
    so they are never blocked; other tokens hold exactly their scopes."""
    if not org_wide and blocked_scopes(token_scopes, allowed):
        return Verdict.TOKEN_BLOCKED
    needed = set(required)
    if needed - allowed:
        return Verdict.PLAN_DISABLED
    held = allowed & OPS_SCOPES if org_wide else token_scopes
    if needed - held:
        return Verdict.INSUFFICIENT
    return Verdict.ALLOWED


# ----------------------------------------------------------------------------- the default set

# Every plan can manage its own tokens, read its account and audit log: "all plans have API access",
# and a downgraded organization must be able to replace its blocked tokens itself.
_ACCOUNT: tuple[str, ...] = ("account:read", "audit:read", "tokens:manage", "billing:read")
# Support tickets too: an organization reaches the operator whatever its plan (docs/tickets.md).
_ACCOUNT += ("tickets:read", "tickets:write")
_VERIFIER = ("verify:read", "verify:write")
_READ_ONLY_INFRASTRUCTURE = (
    "domains:read",
    "domains:dns:read",
    "mailboxes:read",
    "mailboxes:forwarding:read",
    "mailboxes:rules:read",
    "mailboxes:auto-reply:read",
    "webhooks:read",
    "smtp:read",
    "cloudflare:read",
    "route53:read",
)
_MIGRATIONS = ("migrations:read", "migrations:write")


def _defaults() -> dict[str, Plan]:
    plans = [
        build(
            "nano",
            description="Email Verifier API only",
            scopes=(*_ACCOUNT, *_VERIFIER),
            limits={
                "domains": 1,
                "mailboxes": 1,
                "aliases": 5,
                "storage_mb": 1024,
                "message_tokens": 0,
                "migration_batch_rows": 0,
                "migration_concurrency": 0,
                "rate_limit_per_minute": 60,
                "verify_credits": 100,
            },
            price_cents=900,
        ),
        build(
            "starter",
            description="Read-only infrastructure, the verifier and migrations",
            scopes=(*_ACCOUNT, *_VERIFIER, *_READ_ONLY_INFRASTRUCTURE, *_MIGRATIONS),
            limits={
                "domains": 3,
                "mailboxes": 10,
                "aliases": 50,
                "storage_mb": 10240,
                "message_tokens": 0,
                "migration_batch_rows": 100,
                "migration_concurrency": 2,
                "rate_limit_per_minute": 120,
                "verify_credits": 500,
            },
            price_cents=2900,
        ),
        build(
            "pro",
            description="Full read/write access, message tokens included",
            scopes=(EVERY_SCOPE,),
            limits={
                "domains": 10,
                "mailboxes": 50,
                "aliases": 500,
                "storage_mb": 51200,
                "message_tokens": 50,
                "migration_batch_rows": 300,
                "migration_concurrency": 5,
            },
            price_cents=9900,
        ),
        build(
            "agency",
            description="Full read/write access for many client domains",
            scopes=(EVERY_SCOPE,),
            limits={
                "domains": 100,
                "mailboxes": 1000,
                "aliases": 5000,
                "storage_mb": 512000,
                "message_tokens": 50,
                "migration_batch_rows": 1000,
                "migration_concurrency": 10,
            },
            price_cents=29900,
        ),
    ]
    return {plan.name: plan for plan in plans}


DEFAULT_PLANS: dict[str, Plan] = _defaults()
DEFAULT_PLAN = "pro"
