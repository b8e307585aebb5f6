"""Authenticating the operator's support pipeline (``/api/v1/support/...``, docs/tickets.md).

A request is accepted when it is signed with the stack's support secret (domain/tickets.py says
how), its timestamp is within five minutes of now, and its signature was not used before (each
signature is recorded for longer than the window, so a captured request cannot be replayed within
it). Anything else is ``401 unauthenticated``, with one message whatever the reason: the reason is
logged for the operator, not told to the caller.
"""

from __future__ import annotations

import time

from mailroom.domain import tickets as rules
from mailroom.errors import Unauthenticated
from mailroom.observability import logger
from mailroom.settings import get_settings
from mailroom.store import tickets as store
from mailroom.store.table import Table


def _refused(reason: rules.Refusal) -> Unauthenticated:
    logger().warning("support request refused", extra={"reason": reason.value})
    return Unauthenticated(
        "unauthenticated",
        "The request is not signed with the support secret, or its signature is stale or used.",
        hint=f"Sign '<timestamp>.<METHOD>.<path>.<body>' with HMAC-SHA256 and send "
        f"{rules.TIMESTAMP_HEADER} and {rules.SIGNATURE_HEADER}: v1=<hex> (docs/tickets.md).",
    )


def authenticate(
    table: Table,
    *,
    timestamp: str | None,
    signature: str | None,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
) -> None:
    moment = time.time() if now is None else now
    try:
        digest = rules.verify(
            get_settings().support_hmac_secret,
            timestamp=timestamp,
            signature=signature,
            method=method,
            path=path,
            body=body,
            now=moment,
        )
    except rules.SignatureRefused as refused:
        raise _refused(refused.reason) from None
    if not store.use_nonce(table, digest, now=moment):
        raise _refused(rules.Refusal.REPLAYED)
