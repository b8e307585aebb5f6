"""Admitting an authenticated request: its rate-limit window (429 ``rate_limited``) and, on routes
that ask for it, a mutation's idempotency claim in the same DynamoDB request.

Every request counts against its token's window for the minute (store/ratelimits.py): one atomic
ADD whose answer gives the ``X-RateLimit-*`` headers. A mutation with an ``Idempotency-Key`` then
claims the key (store/idempotency.py), a second write. On a route marked ``@with_claim`` (the send
endpoints, whose first read can carry the window back) the two are one TransactWriteItems instead,
both conditional:

* the window's ADD only if it has room (``hits < limit``): a transaction returns no values, so the
  condition decides what the ADD's count decided before; cancelled on it → 429 exactly as before
  (the window as it was comes back with the cancellation), and nothing is claimed;
* the claim, with Powertools' own condition: cancelled on it (the key was used before) → the request
  is counted on its own, as every request is, and the claim as it was (returned with the
  cancellation) decides between replay, ``idempotency_in_progress`` and ``idempotency_key_reused``,
  exactly as ``IdempotencyStore.claim`` does.

After a successful transaction the window's count is read back by the route's first read
(``window_to_read``/``window_read``), or by a GetItem when the request ended before it: the headers
then say how much room the window had left when the request was answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from mailroom.api.errors import ApiError
from mailroom.domain.principal import Principal
from mailroom.observability import logger
from mailroom.settings import get_settings
from mailroom.store import ratelimits
from mailroom.store.errors import ConditionFailed, StoreError
from mailroom.store.idempotency import Claim, ClaimResult, IdempotencyStore
from mailroom.store.ratelimits import Window
from mailroom.store.retry import retried
from mailroom.store.table import Item, Table, deserialize

MARK = "mailroom_claim_with_rate_limit"
F = TypeVar("F", bound=Callable[..., Any])


def with_claim(endpoint: F) -> F:
    """Mark a mutating endpoint whose idempotency claim is written with its rate-limit count; its
    first read should carry the window back (``window_to_read``)."""
    setattr(endpoint, MARK, True)
    return endpoint


def marked(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, MARK, False))


@dataclass(slots=True)
class Pending:
    """A request whose count waits for its idempotency claim (``request.state.admission``)."""

    table: Table
    org_id: str
    bucket: str  # the token id
    limit: int
    now: float
    used: int | None = None  # the window's count, once known

    @property
    def key(self) -> tuple[str, str]:
        return ratelimits.window_key(self.org_id, self.bucket, now=self.now)

    def window(self, used: int) -> Window:
        return Window(limit=self.limit, used=used, resets_at=int(self.key[1]) + ratelimits.WINDOW_SECONDS)

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers (the count read back now if no read carried it)."""
        if self.used is None:
            try:
                item = retried(lambda: self.table.get(*self.key))
            except StoreError:
                logger().warning("rate-limit window not read back", exc_info=True)
                window = self.window(0)
                return {"X-RateLimit-Limit": str(window.limit), "X-RateLimit-Reset": str(window.resets_at)}
            self.used = max(int((item or {}).get("hits", 1)), 1)
        return _headers(self.window(self.used))


def _limit(principal: Principal) -> int:
    return principal.rate_limit or get_settings().rate_limit_per_minute


def _headers(window: Window) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(window.limit),
        "X-RateLimit-Remaining": str(window.remaining),
        "X-RateLimit-Reset": str(window.resets_at),
    }


def _refuse_if_exceeded(window: Window, now: float) -> None:
    if window.exceeded:
        retry_after = max(1, window.resets_at - int(now))
        raise ApiError(
            429,
            "rate_limited",
            f"Rate limit of {window.limit} requests per minute exceeded.",
            hint=f"Retry after {retry_after} seconds.",
            retryable=True,
            headers={**_headers(window), "Retry-After": str(retry_after)},
        )


def rate_limit(table: Table, principal: Principal) -> dict[str, str]:
    """Count the request on its own (one UpdateItem): its headers, or 429."""
    now = time.time()
    window = ratelimits.hit(table, principal.org_id, principal.token_id, limit=_limit(principal), now=now)
    _refuse_if_exceeded(window, now)
    return _headers(window)


def pending(table: Table, principal: Principal) -> Pending:
    """Count the request later, with its idempotency claim (``claim``)."""
    return Pending(table, principal.org_id, principal.token_id, _limit(principal), time.time())


def claim(
    admission: Pending, store: IdempotencyStore, request: dict[str, Any], *, remaining_ms: int | None
) -> ClaimResult:
    """Count the request and claim its key in one TransactWriteItems (see the module docstring)."""
    hit = ratelimits.hit_op(admission.org_id, admission.bucket, limit=admission.limit, now=admission.now)
    try:
        admission.table.transact([hit, store.claim_op(request, remaining_ms=remaining_ms)])
    except ConditionFailed as failed:
        if failed.failed(0):
            # The window was full: this request would have made it one more than the limit.
            was = failed.old_item(0)
            used = int(deserialize(was).get("hits", admission.limit)) if was else admission.limit
            admission.used = max(used, admission.limit) + 1
            _refuse_if_exceeded(admission.window(admission.used), admission.now)
        if not failed.failed(1):
            raise
        # The key was claimed before; the request still counts, as every request does.
        window = ratelimits.hit(
            admission.table, admission.org_id, admission.bucket, limit=admission.limit, now=admission.now
        )
        admission.used = window.used
        _refuse_if_exceeded(window, admission.now)
        return store.refused(request, failed.old_item(1))
    return ClaimResult(Claim.NEW)


def of(request: Request) -> Pending | None:
    found = getattr(request.state, "admission", None)
    return found if isinstance(found, Pending) else None


def window_to_read(request: Request) -> tuple[str, str] | None:
    """The key of the request's rate-limit window if its count is still to be read back."""
    admission = of(request)
    return admission.key if admission is not None and admission.used is None else None


def window_read(request: Request, item: Item | None) -> None:
    """The window item as the route's read found it (after this request was counted in it)."""
    admission = of(request)
    if admission is not None and admission.used is None and item is not None:
        admission.used = max(int(item.get("hits", 1)), 1)
