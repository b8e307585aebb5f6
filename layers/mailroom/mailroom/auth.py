"""Who presents a bearer token: its claims (organization, token, type, scopes...) or why there are none.

Every API function authenticates its own requests (``api.pipeline``); API Gateway runs no
authorizer. An HTTP API authorizer with an identity source answers a request without that header
itself, with its bare ``401 {"message":"Unauthorized"}``, never the documented envelope; one without
identity sources may not cache, so it would cost a second Lambda invocation on every request. So
the function classifies the token, and keeps the answer in memory for ``MAILROOM_AUTH_CACHE_TTL``
seconds (the template's ``TokenCacheTtl``), as API Gateway's authorizer cache did: a revoked token
keeps working at most that long in an execution environment that has just seen it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mailroom.domain.tokens import bearer_token, hash_token, parse_token
from mailroom.observability import logger
from mailroom.store import tokens
from mailroom.store.errors import StoreError
from mailroom.store.retry import retried
from mailroom.store.table import Table

Claims = dict[str, Any]

# An unknown token is remembered briefly: long enough to absorb a client retrying a revoked token,
# short enough that a token used the moment it is created (the lookup index is eventually
# consistent) is not refused for long.
UNKNOWN_TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


def classify(authorization: str | None, table: Table, *, now: float | None = None) -> Claims:
    """The claims of an ``Authorization`` header value, or ``{"denied": reason}``; records the use."""
    candidate = bearer_token(authorization)
    if candidate is None:
        return {"denied": "malformed"}
    if parse_token(candidate) is None:
        # Checksum or shape wrong: rejected without a lookup.
        return {"denied": "malformed"}
    # A failed authorizer is API Gateway's own 500, not the envelope: a brief outage is waited out
    # (briefly: the authorizer has seconds, and botocore has already retried each call).
    item = retried(lambda: tokens.find_by_hash(table, hash_token(candidate)), attempts=3, base_delay=0.1)
    if item is None:
        return {"denied": "unknown"}
    expires = int(item.get("expires_at_epoch") or 0)
    if expires and expires <= (now if now is not None else time.time()):
        return {"denied": "expired"}
    try:
        tokens.touch(table, item["org_id"], item["id"], sk=item.get("SK"))
    except StoreError:
        # ``used_at`` is a convenience: never a reason to refuse a valid token.
        logger().warning("token use not recorded", extra={"token_id": item["id"]}, exc_info=True)
    return {
        "org_id": item["org_id"],
        "token_id": item["id"],
        "token_type": item["token_type"],
        "token_name": item["name"],
        "scopes": " ".join(item.get("scopes", [])),  # flat values: what api.principal reads
        "mailbox_id": item.get("mailbox_id") or "",
        "mailbox_domain_id": item.get("mailbox_domain_id") or "",
        "mailbox_address": item.get("mailbox_address") or "",
        "rate_limit": int(item.get("rate_limit_per_minute") or 0),
        "expires_at_epoch": expires,
    }


class TokenCache:
    """Claims by token hash (never the token), each kept for a while after its lookup.

    Safe to share between threads (the local stack runs every function in one process). Expiry of a
    token is checked again on every use of its cached claims (``api.principal``).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Claims]] = {}
        self._lock = threading.Lock()

    def claims(self, authorization: str | None, table: Table, *, ttl_seconds: float) -> Claims:
        candidate = bearer_token(authorization)
        if ttl_seconds <= 0 or candidate is None or parse_token(candidate) is None:
            return classify(authorization, table)  # malformed ones cost no lookup: nothing to save
        key = hash_token(candidate)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        found = classify(authorization, table)
        keep = min(ttl_seconds, UNKNOWN_TTL_SECONDS) if found.get("denied") == "unknown" else ttl_seconds
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= self._max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = (now + keep, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = TokenCache()


def authenticate(authorization: str | None, table: Table) -> Claims:
    """``classify``, through this process's cache (``MAILROOM_AUTH_CACHE_TTL`` seconds; 0: none)."""
    from mailroom.settings import get_settings

    return _cache.claims(authorization, table, ttl_seconds=get_settings().auth_cache_seconds)


def forget_all() -> None:
    """Empty this process's cache (tests that change the TTL or the tokens between requests)."""
    _cache.clear()
