"""Token classification, shared by the Lambda authorizer and the tests.

The authorizer never answers "deny": a denied HTTP API authorizer can only produce API Gateway's
own 403 body, not the documented error envelope. Instead it returns the principal (or why there is
none) as authorizer context, and the function renders 401 ``unauthenticated`` itself. The function
never trusts anything but this context.
"""

from __future__ import annotations

import time
from typing import Any

from mailroom.domain.tokens import bearer_token, hash_token, parse_token
from mailroom.observability import logger
from mailroom.store import tokens
from mailroom.store.errors import StoreError
from mailroom.store.retry import retried
from mailroom.store.table import Table


def classify(authorization: str | None, table: Table, *, now: float | None = None) -> dict[str, Any]:
    """Authorizer context for an ``Authorization`` header value."""
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
        # Authorizer context values must be scalars: scopes travel space-separated.
        "scopes": " ".join(item.get("scopes", [])),
        "mailbox_id": item.get("mailbox_id") or "",
        "rate_limit": int(item.get("rate_limit_per_minute") or 0),
        "expires_at_epoch": expires,
    }
